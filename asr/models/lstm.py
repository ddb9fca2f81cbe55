"""Bi-LSTM encoder: the recurrent baseline of Katharopoulos et al. (2020), WSJ experiments.

Same front end as the transformer (so subsampling and input handling match), then a stack of
bidirectional LSTMs that padding never reaches: the forward direction runs on the padded batch
(padding only follows a sequence's last step), the backward direction on every sequence reversed
within its length. This gives what packed sequences give, without leaving the fast LSTM kernel:
on CPU a packed batch with unequal lengths runs several times slower than an equal-length one.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from asr.models.config import EncoderConfig
from asr.models.encoder import lengths_to_padding_mask, make_front_end


class BiLSTMEncoder(nn.Module):
    """Front end -> Bi-LSTM (``lstm.n_layers`` x ``lstm.hidden_size`` per direction); output
    dim ``2 * hidden_size``."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        lstm = cfg.lstm
        assert lstm is not None  # EncoderConfig fills the selected section
        self.front_end = make_front_end(cfg, cfg.d_model)
        self.lstm = nn.LSTM(
            cfg.d_model,
            lstm.hidden_size,
            num_layers=lstm.n_layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout if lstm.n_layers > 1 else 0.0,
        )
        self.output_dropout = nn.Dropout(cfg.dropout)
        self.output_dim = 2 * lstm.hidden_size

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.front_end.output_lengths(lengths)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, F)``, ``(B,)`` -> ``(B, T', 2*hidden)`` (padding zeroed), ``(B,)``."""
        x, lengths = self.front_end(features, lengths)
        padding = lengths_to_padding_mask(lengths, x.size(1))[..., None]
        y = self.output_dropout(self._bidirectional(x.masked_fill(padding, 0.0), lengths))
        return y.masked_fill(padding, 0.0), lengths

    def _bidirectional(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``self.lstm`` over ``(B, T, d_model)`` layer by layer and direction by direction, with
        its own weights; the steps past each length come out as garbage for the caller to mask."""
        reverse = reversal_index(lengths.to(x.device), x.size(1))
        for layer in range(self.lstm.num_layers):
            if layer > 0:  # nn.LSTM's dropout between layers
                x = nn.functional.dropout(x, self.lstm.dropout, self.training)
            forward = self._direction(x, f"l{layer}")
            backward = self._direction(reverse_within(x, reverse), f"l{layer}_reverse")
            x = torch.cat([forward, reverse_within(backward, reverse)], dim=-1)
        return x

    def _direction(self, x: torch.Tensor, suffix: str) -> torch.Tensor:
        weights = [
            getattr(self.lstm, f"{name}_{suffix}")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        ]
        h0 = x.new_zeros(1, x.size(0), self.lstm.hidden_size)
        # torch.lstm is what nn.LSTM calls on an unpacked batch: one layer, one direction here.
        out, _, _ = torch.lstm(x, (h0, h0), weights, True, 1, 0.0, self.training, False, True)
        return out

    def forward_packed(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The same encoder over packed sequences: the reference :meth:`forward` must equal."""
        x, lengths = self.front_end(features, lengths)
        t = x.size(1)
        x = x.masked_fill(lengths_to_padding_mask(lengths, t)[..., None], 0.0)
        # pack needs lengths >= 1 on the CPU; empty outputs are masked back to zero below.
        packed = pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        y, _ = self.lstm(packed)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=t)
        y = self.output_dropout(y)
        return y.masked_fill(lengths_to_padding_mask(lengths, t)[..., None], 0.0), lengths


def reversal_index(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B, max_len)`` time index that reverses steps ``0..length-1`` of each sequence and leaves
    its padding in place (its own inverse)."""
    steps = torch.arange(max_len, device=lengths.device)
    index = lengths[:, None] - 1 - steps[None, :]
    return torch.where(index >= 0, index, steps[None, :])


def reverse_within(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``(B, T, C)`` with each sequence reversed within its length (``index`` from
    :func:`reversal_index`)."""
    return x.gather(1, index[..., None].expand(-1, -1, x.size(2)))
