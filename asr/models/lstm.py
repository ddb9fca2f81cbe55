"""Bi-LSTM encoder: the recurrent baseline of Katharopoulos et al. (2020), WSJ experiments.

Same front end as the transformer (so subsampling and input handling match), then a stack of
bidirectional LSTMs over packed sequences, so padding never reaches the recurrence.
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
