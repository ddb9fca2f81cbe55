"""Acoustic encoder: convolutional front end + pre-norm transformer with pluggable attention.

Sits between features and the CTC head: ``(B, T, F)`` filterbanks with lengths in,
``(B, T', d_model)`` frames with exact output lengths out. Padding never changes an utterance's
output: padded frames are zeroed before every convolution (so a padded batch sees the same
zeros a lone utterance sees at its edges) and attention ignores padded keys.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from asr.attention import AttentionLayer
from asr.models.config import EncoderConfig, TransformerConfig


def lengths_to_padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Bool ``(B, max_len)``, True marks padding (the ``nn.MultiheadAttention`` convention)."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps[None, :] >= lengths[:, None]


def _conv_out(n: torch.Tensor | int, kernel: int, stride: int, padding: int) -> torch.Tensor | int:
    return (n + 2 * padding - kernel) // stride + 1


class Conv2dSubsampling(nn.Module):
    """Two Conv2d(3x3)+ReLU layers over (time, freq), then a linear map to ``d_model``.

    Like ESPnet's Conv2dSubsampling: stride-2 layers have no padding; stride-1 layers pad by one
    so 1x keeps the length. Frames past each utterance's length are zeroed before every conv.
    """

    KERNEL = 3

    def __init__(self, input_dim: int, channels: int, d_model: int, subsampling: int) -> None:
        super().__init__()
        strides = {1: (1, 1), 2: (2, 1), 4: (2, 2)}[subsampling]
        self.strides = strides
        self.pads = tuple(0 if s == 2 else 1 for s in strides)
        self.convs = nn.ModuleList()
        in_ch, freq = 1, input_dim
        for s, p in zip(strides, self.pads, strict=True):
            self.convs.append(nn.Conv2d(in_ch, channels, self.KERNEL, stride=s, padding=p))
            in_ch, freq = channels, _conv_out(freq, self.KERNEL, s, p)
        if freq < 1:
            raise ValueError(f"input_dim={input_dim} is too small for the conv front end")
        self.out = nn.Linear(channels * freq, d_model)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for s, p in zip(self.strides, self.pads, strict=True):
            lengths = torch.clamp(_conv_out(lengths, self.KERNEL, s, p), min=0)
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.unsqueeze(1)  # (B, 1, T, F)
        for conv, s, p in zip(self.convs, self.strides, self.pads, strict=True):
            # masked_fill, not multiply: NaN/inf in padding must not survive (NaN * 0 = NaN).
            pad = lengths_to_padding_mask(lengths, x.size(2))
            x = x.masked_fill(pad[:, None, :, None], 0.0)
            x = torch.relu(conv(x))
            lengths = torch.clamp(_conv_out(lengths, self.KERNEL, s, p), min=0)
        b, c, t, f = x.shape
        return self.out(x.transpose(1, 2).reshape(b, t, c * f)), lengths


class LinearFrontEnd(nn.Module):
    """No convolutions (``conv_channels=0``): a per-frame projection, subsampling by frame stacking."""

    def __init__(self, input_dim: int, d_model: int, subsampling: int) -> None:
        super().__init__()
        self.subsampling = subsampling
        self.out = nn.Linear(input_dim * subsampling, d_model)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths // self.subsampling

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, f = x.shape
        t2 = t // self.subsampling
        x = x[:, : t2 * self.subsampling].reshape(b, t2, f * self.subsampling)
        return self.out(x), self.output_lengths(lengths)


def make_front_end(cfg: EncoderConfig, d_model: int) -> nn.Module:
    if cfg.conv_channels > 0:
        return Conv2dSubsampling(cfg.input_dim, cfg.conv_channels, d_model, cfg.subsampling)
    return LinearFrontEnd(cfg.input_dim, d_model, cfg.subsampling)


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sin/cos positions (Vaswani et al.), computed on the fly for any length."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        t = x.size(1)
        pos = torch.arange(t, device=x.device, dtype=torch.float32)[:, None]
        div = torch.exp(
            torch.arange(0, self.d_model, 2, device=x.device, dtype=torch.float32)
            * (-math.log(10000.0) / self.d_model)
        )
        pe = torch.zeros(t, self.d_model, device=x.device)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div[: self.d_model // 2])
        return x + pe.to(x.dtype)


class ConvPositionalEncoding(nn.Module):
    """Relative positions from a depthwise conv (wav2vec 2.0 style); padding is zeroed first."""

    def __init__(self, d_model: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2, groups=d_model)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        x = x.masked_fill(pad_mask[..., None], 0.0)
        return x + nn.functional.gelu(self.conv(x.transpose(1, 2)).transpose(1, 2))


class NoPositionalEncoding(nn.Module):
    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        return x


def make_positional(cfg: TransformerConfig, d_model: int) -> nn.Module:
    if cfg.positional == "sinusoidal":
        return SinusoidalPositionalEncoding(d_model)
    if cfg.positional == "conv":
        return ConvPositionalEncoding(d_model, cfg.conv_pos_kernel)
    return NoPositionalEncoding()


class TransformerLayer(nn.Module):
    """Pre-norm block: x + Attn(LN(x)); x + FFN(LN(x))."""

    def __init__(self, d_model: int, cfg: TransformerConfig, dropout: float) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(d_model)
        self.attn = AttentionLayer(
            d_model,
            cfg.n_heads,
            kind=cfg.attention,
            feature_map=cfg.feature_map,
            dropout=cfg.attention_dropout,
        )
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, cfg.d_ff),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(cfg.d_ff, d_model),
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm_attn(x), key_padding_mask=pad_mask))
        return x + self.drop(self.ff(self.norm_ff(x)))


class TransformerEncoder(nn.Module):
    """Front end -> positions -> N pre-norm layers -> LayerNorm; ``output_dim == d_model``."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.front_end = make_front_end(cfg, cfg.d_model)
        layers = cfg.transformer
        assert layers is not None  # EncoderConfig fills the selected section
        self.positional = make_positional(layers, cfg.d_model)
        self.input_dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(cfg.d_model, layers, cfg.dropout) for _ in range(layers.n_layers)
        )
        self.final_norm = nn.LayerNorm(cfg.d_model)
        self.output_dim = cfg.d_model

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.front_end.output_lengths(lengths)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, F)``, ``(B,)`` -> ``(B, T', d_model)`` (padding zeroed), ``(B,)``."""
        x, lengths = self.front_end(features, lengths)
        pad_mask = lengths_to_padding_mask(lengths, x.size(1))
        x = x.masked_fill(pad_mask[..., None], 0.0)
        x = self.input_dropout(self.positional(x, pad_mask))
        recompute = self.cfg.transformer.checkpoint_layers and torch.is_grad_enabled()
        for layer in self.layers:
            if recompute:  # dropout masks are replayed: the same result as without
                x = checkpoint(layer, x, pad_mask, use_reentrant=False)
            else:
                x = layer(x, pad_mask)
        x = self.final_norm(x)
        return x.masked_fill(pad_mask[..., None], 0.0), lengths
