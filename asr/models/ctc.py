"""CTC acoustic model: an encoder (transformer or Bi-LSTM) plus a linear head over tokens.

Token 0 is the CTC blank (as in every :mod:`asr.data` tokenizer). Log-probabilities are returned
in float32 even under bf16 autocast, because CTC's forward-backward and greedy decoding are
sensitive to precision.
"""

from __future__ import annotations

import torch
from torch import nn

from asr.models.config import EncoderConfig
from asr.models.encoder import TransformerEncoder
from asr.models.lstm import BiLSTMEncoder


def build_encoder(cfg: EncoderConfig) -> nn.Module:
    """The encoder module ``cfg.encoder_type`` names."""
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


def compile_layers(model: nn.Module) -> int:
    """``torch.compile`` each transformer layer of ``model`` in place (where an encoder's time
    goes); returns how many. The front end stays eager: inductor (torch 2.14) fails on its
    convolutions once the input length turns dynamic. Parameter names and results (to float
    rounding) are unchanged; a Bi-LSTM encoder has nothing to compile (0)."""
    layers = getattr(getattr(model, "encoder", model), "layers", None)
    if not isinstance(layers, nn.ModuleList):
        return 0
    for layer in layers:
        layer.compile()
    return len(layers)
