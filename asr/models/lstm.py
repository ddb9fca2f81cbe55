"""Bi-LSTM encoder: the recurrent baseline of Katharopoulos et al. (2020), WSJ experiments.

Same front end as the transformer (so subsampling and input handling match), then a stack of
bidirectional LSTMs over packed sequences, so padding never reaches the recurrence.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from asr.models.encoder import EncoderConfig, lengths_to_padding_mask, make_front_end


class BiLSTMEncoder(nn.Module):
    """Front end -> Bi-LSTM (``lstm_layers`` x ``lstm_hidden`` per direction); dim ``2*hidden``."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.front_end = make_front_end(cfg, cfg.d_model)
        self.lstm = nn.LSTM(
            cfg.d_model,
            cfg.lstm_hidden,
            num_layers=cfg.lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout if cfg.lstm_layers > 1 else 0.0,
        )
        self.output_dropout = nn.Dropout(cfg.dropout)
        self.output_dim = 2 * cfg.lstm_hidden

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
