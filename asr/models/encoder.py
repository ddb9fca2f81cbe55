"""Acoustic encoder: convolutional front end + pre-norm transformer with pluggable attention.

Sits between features and the CTC head: ``(B, T, F)`` filterbanks with lengths in,
``(B, T', d_model)`` frames with exact output lengths out. Padding never changes an utterance's
output: padded frames are zeroed before every convolution that reads them (so a padded batch
sees the same zeros a lone utterance sees at its edges) and attention ignores padded keys.

A streaming encoder (``transformer.streaming``) swaps in causal variants: front-end convs of
stride 1 and the conv positional encoding pad on the left only, attention is causal or
chunk-causal (:mod:`asr.models.causal_attention`). Each of its parts has a ``step`` that takes
the next frames and a carried state; :mod:`asr.models.streaming` strings them together.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from asr.attention import AttentionLayer, RecurrentState
from asr.models.causal_attention import StreamingLinearAttention
from asr.models.config import EncoderConfig, TransformerConfig


def lengths_to_padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Bool ``(B, max_len)``, True marks padding (the ``nn.MultiheadAttention`` convention)."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps[None, :] >= lengths[:, None]


def _conv_out(n: torch.Tensor | int, kernel: int, stride: int, padding: int) -> torch.Tensor | int:
    return (n + 2 * padding - kernel) // stride + 1


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` (4-d) with channels-last strides, copied unless it has them (differentiable)."""
    if x.size(1) > 1 and x.is_contiguous(memory_format=torch.channels_last):
        return x
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    return out.copy_(x)


class Conv2dSubsampling(nn.Module):
    """Two Conv2d(3x3)+ReLU layers over (time, freq), then a linear map to ``d_model``.

    Like ESPnet's Conv2dSubsampling: stride-2 layers have no padding; stride-1 layers pad by one
    so 1x keeps the length. Frames past each utterance's length are zeroed before every conv
    that pads time (and in the input), so a padded batch gives each utterance what it gets alone.

    ``causal``: stride-1 layers pad time by two frames on the left instead of one on each side
    (same lengths and weights), so no layer reads ahead by padding; the stride-2 layers read
    ahead by their kernel as before: :meth:`lookahead_frames` input frames past an output
    frame's own span (3 at 4x subsampling).
    """

    KERNEL = 3

    def __init__(
        self, input_dim: int, channels: int, d_model: int, subsampling: int, causal: bool = False
    ) -> None:
        super().__init__()
        strides = {1: (1, 1), 2: (2, 1), 4: (2, 2)}[subsampling]
        self.strides = strides
        self.subsampling = subsampling
        self.causal = causal
        self.pads = tuple(0 if s == 2 else 1 for s in strides)
        # time frames of zeros before the first frame, per layer (causal: all padding is there)
        self.left_pads = tuple(2 * p if causal else p for p in self.pads)
        self.convs = nn.ModuleList()
        in_ch, freq = 1, input_dim
        for s, p in zip(strides, self.pads, strict=True):
            padding = (0, p) if causal else p  # causal: time padded by hand, on the left
            self.convs.append(nn.Conv2d(in_ch, channels, self.KERNEL, stride=s, padding=padding))
            in_ch, freq = channels, _conv_out(freq, self.KERNEL, s, p)
        if freq < 1:
            raise ValueError(f"input_dim={input_dim} is too small for the conv front end")
        self.out = nn.Linear(channels * freq, d_model)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for s, p in zip(self.strides, self.pads, strict=True):
            lengths = torch.clamp(_conv_out(lengths, self.KERNEL, s, p), min=0)
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # masked_fill, not multiply: NaN/inf in padding must not survive (NaN * 0 = NaN).
        x = x.masked_fill(lengths_to_padding_mask(lengths, x.size(1))[..., None], 0.0)
        x = x.unsqueeze(1)  # (B, 1, T, F)
        for i, (conv, s, p) in enumerate(zip(self.convs, self.strides, self.pads, strict=True)):
            # Only a layer that pads time reads past an utterance's last frame: zero what it
            # reads there. Unpadded layers' real outputs never see padding (a stride-2,
            # kernel-3 window ends inside the input), so their padded outputs are left as they
            # are and zeroed at the end, sparing a pass over the largest tensors.
            if p and i > 0:
                pad = lengths_to_padding_mask(lengths, x.size(2))
                x = x.masked_fill(pad[:, None, :, None], 0.0)
            if self.causal and p:
                x = nn.functional.pad(x, (0, 0, 2 * p, 0))
            x = torch.relu_(self._conv(conv, x))  # the conv keeps its input, not its output
            lengths = torch.clamp(_conv_out(lengths, self.KERNEL, s, p), min=0)
        b, c, t, f = x.shape
        return self.out(x.transpose(1, 2).reshape(b, t, c * f)), lengths

    @staticmethod
    def _conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        """``conv(x)``, on CPU in channels-last layout, where oneDNN's convolutions and their
        backward run much faster than in the default layout (BENCHMARKS.md). A one-channel
        tensor's layout is ambiguous, so input and weight are laid out explicitly."""
        if x.device.type != "cpu":
            return conv(x)
        return nn.functional.conv2d(
            _channels_last(x), _channels_last(conv.weight), conv.bias, conv.stride, conv.padding
        )

    def lookahead_frames(self) -> int:
        """Input frames an output frame reads past its own ``subsampling`` frames."""
        first, last = 0, 0  # input frames read by output frame 0, relative to padded input
        for s, lp in zip(reversed(self.strides), reversed(self.left_pads), strict=True):
            first, last = first * s - lp, last * s + self.KERNEL - 1 - lp
        return last - (self.subsampling - 1)

    def initial_state(self, batch: int, like: torch.Tensor) -> list[torch.Tensor]:
        """Per layer, the input rows not yet consumed: at the start, the left padding."""
        state, channels, freq = [], 1, like.shape[-1]
        for conv, lp in zip(self.convs, self.left_pads, strict=True):
            state.append(like.new_zeros(batch, channels, lp, freq))
            channels = conv.out_channels
            freq = _conv_out(freq, self.KERNEL, conv.stride[1], conv.padding[1])
        return state

    def step(
        self, x: torch.Tensor, state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Next feature frames ``(B, n, F)`` -> the output frames they complete ``(B, n', d)``.

        Each layer keeps the rows it has not consumed yet; the same windows as :meth:`forward`
        over the whole input (a causal front end; the non-causal one only at 4x, where no
        layer pads time).
        """
        if not self.causal and any(self.pads):
            raise ValueError("step() needs a causal front end (or 4x subsampling)")
        h = x.unsqueeze(1)  # (B, 1, n, F)
        new_state = []
        for conv, s, buf in zip(self.convs, self.strides, state, strict=True):
            h = torch.cat([buf, h], dim=2)
            n_out = (h.size(2) - self.KERNEL) // s + 1 if h.size(2) >= self.KERNEL else 0
            new_state.append(h[:, :, n_out * s :])
            h = torch.relu(conv(h[:, :, : (n_out - 1) * s + self.KERNEL])) if n_out else None
            if h is None:
                b = x.size(0)
                out = x.new_zeros(b, 0, self.out.out_features)
                return out, new_state + state[len(new_state) :]
        b, c, t, f = h.shape
        return self.out(h.transpose(1, 2).reshape(b, t, c * f)), new_state


class LinearFrontEnd(nn.Module):
    """No convolutions (``conv_channels=0``): a per-frame projection, subsampling by frame stacking."""

    def __init__(self, input_dim: int, d_model: int, subsampling: int) -> None:
        super().__init__()
        self.subsampling = subsampling
        self.out = nn.Linear(input_dim * subsampling, d_model)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths // self.subsampling

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # NaN/inf in padding would reach the weight gradient (0 * NaN = NaN): zero it first.
        x = x.masked_fill(lengths_to_padding_mask(lengths, x.size(1))[..., None], 0.0)
        b, t, f = x.shape
        t2 = t // self.subsampling
        x = x[:, : t2 * self.subsampling].reshape(b, t2, f * self.subsampling)
        return self.out(x), self.output_lengths(lengths)

    def lookahead_frames(self) -> int:
        return 0

    def initial_state(self, batch: int, like: torch.Tensor) -> list[torch.Tensor]:
        return [like.new_zeros(batch, 0, like.shape[-1])]

    def step(
        self, x: torch.Tensor, state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Next frames -> the stacked frames they complete; leftover frames wait in the state."""
        x = torch.cat([state[0], x], dim=1)
        b, t, f = x.shape
        used = t // self.subsampling * self.subsampling
        out = self.out(x[:, :used].reshape(b, used // self.subsampling, f * self.subsampling))
        return out, [x[:, used:]]


def make_front_end(cfg: EncoderConfig, d_model: int) -> nn.Module:
    if cfg.conv_channels > 0:
        causal = cfg.streaming
        return Conv2dSubsampling(cfg.input_dim, cfg.conv_channels, d_model, cfg.subsampling, causal)
    return LinearFrontEnd(cfg.input_dim, d_model, cfg.subsampling)


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sin/cos positions (Vaswani et al.), computed on the fly for any length."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        t = x.size(1)
        pos = torch.arange(t, device=x.device, dtype=torch.float32)[:, None]
        return x + self.encoding(pos).to(x.dtype)

    def encoding(self, pos: torch.Tensor) -> torch.Tensor:
        """``(..., 1)`` float positions -> ``(..., d_model)`` encodings."""
        div = torch.exp(
            torch.arange(0, self.d_model, 2, device=pos.device, dtype=torch.float32)
            * (-math.log(10000.0) / self.d_model)
        )
        pe = torch.zeros(*pos.shape[:-1], self.d_model, device=pos.device)
        pe[..., 0::2] = torch.sin(pos * div)
        pe[..., 1::2] = torch.cos(pos * div[: self.d_model // 2])
        return pe

    def step(self, x: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """Frames ``(B, n, d)`` whose first positions are ``first (B,)``."""
        steps = torch.arange(x.size(1), device=x.device)
        pos = (first[:, None] + steps[None, :]).to(torch.float32)[..., None]
        return x + self.encoding(pos).to(x.dtype)


class ConvPositionalEncoding(nn.Module):
    """Relative positions from a depthwise conv (wav2vec 2.0 style); padding is zeroed first."""

    def __init__(self, d_model: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2, groups=d_model)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        x = x.masked_fill(pad_mask[..., None], 0.0)
        return x + nn.functional.gelu(self.conv(x.transpose(1, 2)).transpose(1, 2))


class CausalConvPositionalEncoding(nn.Module):
    """:class:`ConvPositionalEncoding` padded on the left only: frame t sees frames t-k+1..t."""

    def __init__(self, d_model: int, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(d_model, d_model, kernel, groups=d_model)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        x = x.masked_fill(pad_mask[..., None], 0.0)
        h = nn.functional.pad(x.transpose(1, 2), (self.kernel - 1, 0))
        return x + nn.functional.gelu(self.conv(h).transpose(1, 2))

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """The last ``kernel - 1`` inputs, ``(B, d, k-1)``: zeros (the left padding) at first."""
        return like.new_zeros(batch, like.shape[-1], self.kernel - 1)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([state, x.transpose(1, 2)], dim=2)
        out = x + nn.functional.gelu(self.conv(h).transpose(1, 2))
        return out, h[:, :, h.size(2) - (self.kernel - 1) :]


class NoPositionalEncoding(nn.Module):
    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        return x


def make_positional(cfg: TransformerConfig, d_model: int) -> nn.Module:
    if cfg.positional == "sinusoidal":
        return SinusoidalPositionalEncoding(d_model)
    if cfg.positional == "conv" and cfg.streaming:
        return CausalConvPositionalEncoding(d_model, cfg.conv_pos_kernel)
    if cfg.positional == "conv":
        return ConvPositionalEncoding(d_model, cfg.conv_pos_kernel)
    return NoPositionalEncoding()


class TransformerLayer(nn.Module):
    """Pre-norm block: x + Attn(LN(x)); x + FFN(LN(x)).

    :param chunk: attention chunk in frames of a streaming layer (0 = frame-causal).
    """

    def __init__(
        self, d_model: int, cfg: TransformerConfig, dropout: float, chunk: int = 0
    ) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(d_model)
        self.attn: nn.Module
        if cfg.streaming:
            self.attn = StreamingLinearAttention(
                d_model,
                cfg.n_heads,
                chunk=chunk,
                feature_map=cfg.feature_map,
                dropout=cfg.attention_dropout,
            )
        else:
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

    def step(
        self, x: torch.Tensor, state: RecurrentState | None
    ) -> tuple[torch.Tensor, RecurrentState]:
        """Next frames (whole attention chunks) after ``state`` (a streaming layer)."""
        a, state = self.attn.step(self.norm_attn(x), state)
        x = x + self.drop(a)
        return x + self.drop(self.ff(self.norm_ff(x))), state


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
        self.chunk_frames = cfg.chunk_frames()
        self.layers = nn.ModuleList(
            TransformerLayer(cfg.d_model, layers, cfg.dropout, self.chunk_frames)
            for _ in range(layers.n_layers)
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
