"""``AttentionLayer``: multi-head attention block (projections + attention + output projection).

One class for all attention kinds so encoders switch between linear and softmax attention by a
config string: ``"linear"``, ``"causal-linear"``, ``"softmax"``, ``"causal-softmax"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .feature_maps import FeatureMap, make_feature_map
from .linear import RecurrentState, linear_attention_step, linear_self_attention
from .softmax import softmax_attention

KINDS = ("linear", "causal-linear", "softmax", "causal-softmax")


@dataclass
class SoftmaxCache:
    """Keys and values seen so far, for stepping causal softmax attention (O(t) per token)."""

    k: torch.Tensor  # (B, H, t, D)
    v: torch.Tensor  # (B, H, t, D)


class QKVProjections(nn.Module):
    """The q, k, v and output projections of multi-head attention, q, k, v computed as one GEMM.

    Shared by :class:`AttentionLayer` and the streaming encoder's attention
    (:class:`asr.models.causal_attention.StreamingLinearAttention`).
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        if n_heads < 1 or d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be a positive multiple of n_heads={n_heads}")
        self.d_model, self.n_heads = d_model, n_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    #: below this many rows (B x N) joining the weights costs more than the two GEMM calls it
    #: saves (a streaming step's few frames)
    PACKED_GEMM_MIN_ROWS = 16

    def _project_qkv(self, x: torch.Tensor) -> torch.Tensor:
        """q, k, v packed as ``(B, N, 3, H, D)``: one GEMM against the three projections' weights
        side by side (the same parameters as three ``nn.Linear`` calls, one pass over x); for a
        few rows, three GEMMs stacked."""
        b, n, _ = x.shape
        projections = (self.q_proj, self.k_proj, self.v_proj)
        if b * n < self.PACKED_GEMM_MIN_ROWS:
            qkv = torch.stack([p(x) for p in projections], dim=2)
        else:
            weight = torch.cat([p.weight for p in projections])
            bias = torch.cat([p.bias for p in projections])
            qkv = F.linear(x, weight, bias)
        return qkv.view(b, n, 3, self.n_heads, self.head_dim)

    @staticmethod
    def _heads(qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v ``(B, H, N, D)`` views of the packed projection. ``unbind`` rather than three
        selects: its backward stacks the three gradients in one copy, where each select's
        backward zero-fills a full-size buffer and they are summed."""
        q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))
        return q, k, v


class AttentionLayer(QKVProjections):
    """Multi-head attention with a pluggable kind and feature map.

    :param d_model: model width; must be divisible by ``n_heads``.
    :param kind: one of ``KINDS``.
    :param feature_map: registry name for the linear kinds (ignored by softmax kinds).
    :param dropout: softmax kinds drop attention weights; linear kinds (which never form the
        weights) drop the attention output before the output projection.
    :param feature_map_kwargs: passed to the feature map factory (e.g. FAVOR ``n_features``).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        kind: str = "linear",
        feature_map: str = "elu",
        dropout: float = 0.0,
        eps: float = 1e-6,
        feature_map_kwargs: dict | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        super().__init__(d_model, n_heads)
        self.kind = kind
        self.causal = kind.startswith("causal")
        self.eps = eps
        self.dropout_p = dropout
        self.dropout = nn.Dropout(dropout)
        self.feature_map: FeatureMap | None = None
        if kind.endswith("linear"):
            self.feature_map = make_feature_map(
                feature_map, self.head_dim, **(feature_map_kwargs or {})
            )

    def _check_x(self, x: torch.Tensor, ndim: int, name: str) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != ndim or x.shape[-1] != self.d_model:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            want = "(B, N, d_model)" if ndim == 3 else "(B, d_model)"
            raise ValueError(f"{name} must be {want} with d_model={self.d_model}, got {shape}")

    def forward(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x (B, N, d_model)`` -> ``(B, N, d_model)``; ``key_padding_mask`` bool (B, N), True = pad."""
        self._check_x(x, 3, "x")
        qkv = self._project_qkv(x)
        b, n = x.shape[:2]
        if self.feature_map is not None:
            if self.training:
                self.feature_map.on_training_step()
            out = linear_self_attention(
                qkv,
                causal=self.causal,
                feature_map=self.feature_map,
                key_padding_mask=key_padding_mask,
                eps=self.eps,
            )
            out = self.dropout(out)
        else:
            out = softmax_attention(
                *self._heads(qkv),
                causal=self.causal,
                key_padding_mask=key_padding_mask,
                dropout_p=self.dropout_p if self.training else 0.0,
            ).transpose(1, 2)
        return self.out_proj(out.reshape(b, n, self.d_model))

    def step(
        self, x_t: torch.Tensor, state: RecurrentState | SoftmaxCache | None = None
    ) -> tuple[torch.Tensor, RecurrentState | SoftmaxCache]:
        """One token ``x_t (B, d_model)`` of a causal kind -> ``(y_t (B, d_model), new_state)``.

        Equals ``forward`` on the whole sequence at that position (in eval mode). Linear kinds
        are O(1) per token; causal softmax keeps a key/value cache (O(t)).
        """
        if not self.causal:
            raise ValueError(f"step() needs a causal kind, this layer is kind={self.kind!r}")
        self._check_x(x_t, 2, "x_t")
        b = x_t.shape[0]
        shape = (b, self.n_heads, self.head_dim)
        q = self.q_proj(x_t).view(shape)
        k = self.k_proj(x_t).view(shape)
        v = self.v_proj(x_t).view(shape)
        if self.feature_map is not None:
            if state is not None and not isinstance(state, RecurrentState):
                raise TypeError(f"state must be a RecurrentState, got {type(state).__name__}")
            out, state = linear_attention_step(
                q, k, v, state, feature_map=self.feature_map, eps=self.eps
            )
        else:
            if state is not None and not isinstance(state, SoftmaxCache):
                raise TypeError(f"state must be a SoftmaxCache, got {type(state).__name__}")
            k_all = k.unsqueeze(2) if state is None else torch.cat([state.k, k.unsqueeze(2)], 2)
            v_all = v.unsqueeze(2) if state is None else torch.cat([state.v, v.unsqueeze(2)], 2)
            state = SoftmaxCache(k=k_all, v=v_all)
            out = softmax_attention(q.unsqueeze(2), k_all, v_all, causal=False).squeeze(2)
        out = self.dropout(out)
        return self.out_proj(out.reshape(b, self.d_model)), state
