"""CTC acoustic model: an encoder (transformer or Bi-LSTM) plus a linear head over tokens.

Token 0 is the CTC blank (as in every :mod:`asr.data` tokenizer). Log-probabilities are returned
in float32 even under bf16 autocast, because CTC's forward-backward and greedy decoding are
sensitive to precision.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from asr.models.encoder import EncoderConfig, TransformerEncoder
from asr.models.lstm import BiLSTMEncoder

# Named sizes. ``wsj`` follows the paper's WSJ transformer (9 layers, 6 heads); the paper does not
# pin d_model in the main text, so we take 6 heads x 64 = 384 (400 is not divisible by 6) and a
# 4x feed-forward (~18.5M parameters with 80 mel bins). ``wsj-lstm`` is the Bi-LSTM baseline
# (3 bidirectional layers) with its hidden size chosen to match that parameter count.
PRESETS: dict[str, EncoderConfig] = {
    "tiny": EncoderConfig(
        input_dim=80,
        subsampling=4,
        conv_channels=8,
        d_model=32,
        n_layers=2,
        n_heads=2,
        d_ff=64,
        dropout=0.0,
        lstm_hidden=16,
        lstm_layers=1,
    ),
    "small": EncoderConfig(
        input_dim=80,
        subsampling=4,
        conv_channels=128,
        d_model=192,
        n_layers=6,
        n_heads=4,
        d_ff=768,
        dropout=0.1,
    ),
    "wsj": EncoderConfig(
        input_dim=80,
        subsampling=4,
        conv_channels=256,
        d_model=384,
        n_layers=9,
        n_heads=6,
        d_ff=1536,
        dropout=0.1,
    ),
    "wsj-lstm": EncoderConfig(
        encoder_type="lstm",
        input_dim=80,
        subsampling=4,
        conv_channels=256,
        d_model=384,
        lstm_hidden=512,
        lstm_layers=3,
        dropout=0.1,
    ),
}


def encoder_preset(name: str, **overrides: object) -> EncoderConfig:
    """A named size with optional field overrides, e.g. ``encoder_preset("wsj", attention="softmax")``."""
    if name not in PRESETS:
        raise ValueError(f"unknown encoder preset {name!r}; choose from {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def build_encoder(cfg: EncoderConfig) -> nn.Module:
    if cfg.encoder_type == "lstm":
        return BiLSTMEncoder(cfg)
    return TransformerEncoder(cfg)


class CTCModel(nn.Module):
    """Encoder + linear CTC head. ``forward(features, lengths) -> (log_probs float32, out_lengths)``."""

    def __init__(self, config: EncoderConfig, vocab_size: int) -> None:
        super().__init__()
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (blank + one token), got {vocab_size}")
        self.config = config
        self.vocab_size = vocab_size
        self.encoder = build_encoder(config)
        self.head = nn.Linear(self.encoder.output_dim, vocab_size)

    @property
    def subsampling(self) -> int:
        return self.config.subsampling

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder.output_lengths(lengths)

    def forward(
        self, features: torch.Tensor, feature_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, F)`` float, ``(B,)`` long -> ``(B, T', V)`` float32 log-probs, ``(B,)``."""
        if features.dim() != 3 or features.size(-1) != self.config.input_dim:
            raise ValueError(
                f"features must be (B, T, {self.config.input_dim}), got {tuple(features.shape)}; "
                "check EncoderConfig.input_dim against the feature config"
            )
        x, out_lengths = self.encoder(features, feature_lengths)
        logits = self.head(x)
        return logits.float().log_softmax(dim=-1), out_lengths
