"""Decoder-only causal transformer for the paper's autoregressive experiments.

Tokens in, per-token distribution parameters out: the copy task's symbols, or the 256 grey
levels (or RGB sub-pixels) of an image read in raster order. Attention is ``causal-linear``
(trains with the causal-product kernel, generates as an RNN) or ``causal-softmax`` (SDPA in
training, a key/value cache in generation), everything else identical, so the two compare at
the same size. Training runs :meth:`CausalTransformer.forward` over whole sequences; generation
runs the same weights one token at a time through :mod:`asr.autoregressive.incremental`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from asr.attention import AttentionLayer

ATTENTION_KINDS = ("causal-linear", "causal-softmax")
OUTPUT_KINDS = ("categorical", "logistic_mixture")


@dataclass
class ARConfig:
    """Every model hyperparameter in one place (stored in checkpoints and packages).

    :param vocab_size: number of token values (12 for the copy task, 256 for 8-bit pixels).
    :param max_len: longest sequence the learned positions cover (784 for MNIST, 3072 for CIFAR-10).
    :param attention: ``causal-linear`` or ``causal-softmax``.
    :param output: ``categorical`` (a softmax over ``vocab_size``) or ``logistic_mixture``
        (a mixture of ``n_mixtures`` discretised logistics over the ``vocab_size`` levels, as in
        the paper's image models; needs ``vocab_size`` >= 2).
    """

    vocab_size: int = 256
    max_len: int = 784
    d_model: int = 256
    n_layers: int = 8
    n_heads: int = 8
    d_ff: int = 1024
    attention: str = "causal-linear"
    feature_map: str = "elu"
    dropout: float = 0.0
    output: str = "logistic_mixture"
    n_mixtures: int = 10

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(
                f"attention must be one of {ATTENTION_KINDS} (a generative model is causal), "
                f"got {self.attention!r}"
            )
        if self.output not in OUTPUT_KINDS:
            raise ValueError(f"output must be one of {OUTPUT_KINDS}, got {self.output!r}")
        for name in ("vocab_size", "max_len", "d_model", "n_layers", "n_heads", "d_ff"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}")
        if self.output == "logistic_mixture" and (self.n_mixtures < 1 or self.vocab_size < 2):
            raise ValueError("logistic_mixture needs n_mixtures >= 1 and vocab_size >= 2")

    @property
    def output_dim(self) -> int:
        """Numbers the head emits per position: logits, or (weight, mean, log-scale) per component."""
        return self.vocab_size if self.output == "categorical" else 3 * self.n_mixtures

    @property
    def bos(self) -> int:
        """Index of the start token: one embedding row past the data's values."""
        return self.vocab_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ARConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ARConfig keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


class DecoderLayer(nn.Module):
    """Pre-norm block: x + Attn(LN(x)); x + FFN(LN(x)) (the encoder's block, causal)."""

    def __init__(self, cfg: ARConfig) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(cfg.d_model)
        self.attn = AttentionLayer(
            cfg.d_model, cfg.n_heads, kind=cfg.attention, feature_map=cfg.feature_map
        )
        self.norm_ff = nn.LayerNorm(cfg.d_model)
        self.ff_in = nn.Linear(cfg.d_model, cfg.d_ff)
        self.ff_out = nn.Linear(cfg.d_ff, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm_attn(x)))
        hidden = self.drop(nn.functional.gelu(self.ff_in(self.norm_ff(x))))
        return x + self.drop(self.ff_out(hidden))


class CausalTransformer(nn.Module):
    """Predicts token t from tokens < t: ``forward(tokens (B, N)) -> (B, N, output_dim)``.

    The input is the sequence shifted right behind a start token, so position 0 predicts the
    first token from nothing and every token of the sequence is scored.
    """

    def __init__(self, cfg: ARConfig) -> None:
        super().__init__()
        self.config = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size + 1, cfg.d_model)  # + start token
        self.position_embedding = nn.Embedding(cfg.max_len, cfg.d_model)
        self.input_dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_layers))
        self.final_norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.output_dim)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.02)

    def shift_right(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[bos, x_0, ..., x_{N-2}]``: what position t sees when it predicts x_t."""
        bos = torch.full_like(tokens[:, :1], self.config.bos)
        return torch.cat([bos, tokens[:, :-1]], dim=1)

    def check_tokens(self, tokens: torch.Tensor) -> None:
        cfg = self.config
        if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32, torch.uint8):
            raise ValueError(f"tokens must be an integer (B, N) tensor, got {tuple(tokens.shape)}")
        if tokens.shape[1] > cfg.max_len:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds max_len={cfg.max_len}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= cfg.vocab_size):
            raise ValueError(f"token values must lie in [0, {cfg.vocab_size})")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Distribution parameters for every position of ``tokens`` (teacher forcing)."""
        self.check_tokens(tokens)
        return self.forward_inputs(self.shift_right(tokens.long()))

    def forward_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """Run on already-shifted inputs (start token included); used by prefix recomputation."""
        n = inputs.shape[1]
        positions = torch.arange(n, device=inputs.device)
        x = self.token_embedding(inputs) + self.position_embedding(positions)
        x = self.input_dropout(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.final_norm(x))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
