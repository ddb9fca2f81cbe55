"""Causal and chunk-causal linear attention that continues from a carried state.

The streaming encoder's attention (``encoder.transformer.streaming``). Causal linear attention is
an RNN whose state is ``S = sum phi(k) v^T`` and ``z = sum phi(k)`` (:class:`RecurrentState`);
:func:`stateful_linear_attention` computes a whole block of frames at once *given* the state of
everything before the block, and returns the state after it. So training runs it once over the
utterance (no state) and streaming runs it block by block; both compute the same function.

Chunk-causal (``chunk`` > 1 frames): frame i of chunk c attends to every frame of chunks < c
(through the state) and to all frames of chunk c, its own future included. Chunk boundaries are
counted from the first frame of the call, so a streaming caller passes whole chunks.

Built on the public :mod:`asr.attention` API (feature maps, :func:`causal_product`,
:func:`linear_attention`, :class:`RecurrentState`); a chunk-causal kind and a block step with
state belong in :mod:`asr.attention` eventually.
"""

from __future__ import annotations

import torch
from torch import nn

from asr.attention import (
    FavorFeatureMap,
    FeatureMap,
    RecurrentState,
    causal_product,
    linear_self_attention,
    make_feature_map,
)
from asr.attention.layer import QKVProjections

_HALF_DTYPES = (torch.float16, torch.bfloat16)


def _features(feature_map: FeatureMap, q: torch.Tensor, k: torch.Tensor) -> tuple:
    if isinstance(feature_map, FavorFeatureMap):  # queries and keys are stabilised differently
        return feature_map.features(q, is_query=True), feature_map.features(k, is_query=False)
    return feature_map(q), feature_map(k)


def stateful_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    state: RecurrentState | None,
    *,
    feature_map: FeatureMap,
    chunk: int = 0,
    key_padding_mask: torch.Tensor | None = None,
    eps: float = 1e-6,
    return_state: bool = True,
) -> tuple[torch.Tensor, RecurrentState | None]:
    """Causal (``chunk`` <= 1) or chunk-causal linear attention after ``state``.

    :param q: ``(B, H, N, D)``; ``k`` the same; ``v`` ``(B, H, N, M)``.
    :param state: the sums over every earlier key, or ``None`` at the start.
    :param key_padding_mask: bool ``(B, N)``, True = padding: such keys add nothing (to the
        outputs or to the returned state).
    :param return_state: compute the state after the block (streaming) or skip it (training).
    :returns: ``(B, H, N, M)`` in the input dtype, and the new state (float32 or better).
    """
    dtype = q.dtype
    work = torch.float32 if dtype in _HALF_DTYPES else dtype
    phi_q, phi_k = _features(feature_map, q.to(work), k.to(work))
    v = v.to(work)
    if key_padding_mask is not None:
        phi_k = phi_k.masked_fill(key_padding_mask[:, None, :, None], 0.0)
    b, h, n, f = phi_q.shape
    m = v.shape[-1]
    numerator = causal_product(phi_q, phi_k, v)
    denominator = (phi_q * phi_k.cumsum(dim=2)).sum(-1)
    if chunk > 1:
        # Add what causal attention leaves out: the keys after a frame within its own chunk,
        # a masked (chunk x chunk) product per chunk.
        pad = (-n) % chunk
        nc = (n + pad) // chunk
        qc, kc, vc = (
            nn.functional.pad(t, (0, 0, 0, pad)).view(b, h, nc, chunk, t.shape[-1])
            for t in (phi_q, phi_k, v)
        )
        ahead = (qc @ kc.transpose(-1, -2)).triu(diagonal=1)  # [i, j]: j after i, same chunk
        numerator = numerator + (ahead @ vc).reshape(b, h, nc * chunk, m)[:, :, :n]
        denominator = denominator + ahead.sum(-1).reshape(b, h, nc * chunk)[:, :, :n]
    if state is not None:
        numerator = numerator + phi_q @ state.S.to(work)
        denominator = denominator + (phi_q * state.z.to(work).unsqueeze(2)).sum(-1)
    out = (numerator / (denominator.unsqueeze(-1) + eps)).to(dtype)
    if not return_state:
        return out, None
    kv_total = phi_k.transpose(-1, -2) @ v
    z_total = phi_k.sum(dim=2)
    if state is not None:
        kv_total = state.S + kv_total
        z_total = state.z + z_total
    return out, RecurrentState(S=kv_total, z=z_total)


class StreamingLinearAttention(QKVProjections):
    """Multi-head causal or chunk-causal linear attention that can be stepped block by block.

    Offline, ``forward(x, key_padding_mask)`` as :class:`asr.attention.AttentionLayer`; when
    streaming, ``step(x, state)`` takes the next frames (whole chunks for ``chunk`` > 1) and
    returns their outputs and the state after them. Parameter names match ``AttentionLayer``.

    :param chunk: frames per attention chunk; 0 = frame-causal.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        chunk: int = 0,
        feature_map: str = "elu",
        dropout: float = 0.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(d_model, n_heads)
        self.chunk, self.eps = chunk, eps
        self.dropout = nn.Dropout(dropout)
        self.feature_map = make_feature_map(feature_map, self.head_dim)

    def _attend(
        self, x: torch.Tensor, state: RecurrentState | None, mask: torch.Tensor | None, keep: bool
    ) -> tuple[torch.Tensor, RecurrentState | None]:
        qkv = self._project_qkv(x)
        b, n = x.shape[:2]
        if self.chunk <= 1 and state is None and not keep:
            # training, frame-causal: the library's causal linear attention (its fast kernels)
            out = linear_self_attention(
                qkv, causal=True, feature_map=self.feature_map, key_padding_mask=mask, eps=self.eps
            )
        else:
            out, state = stateful_linear_attention(
                *self._heads(qkv),
                state,
                feature_map=self.feature_map,
                chunk=self.chunk,
                key_padding_mask=mask,
                eps=self.eps,
                return_state=keep,
            )
            out = out.transpose(1, 2)
        return self.out_proj(self.dropout(out).reshape(b, n, self.d_model)), state

    def forward(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, N, d_model)`` -> ``(B, N, d_model)`` over whole utterances (training)."""
        if self.training:
            self.feature_map.on_training_step()
        return self._attend(x, None, key_padding_mask, keep=False)[0]

    def step(
        self, x: torch.Tensor, state: RecurrentState | None
    ) -> tuple[torch.Tensor, RecurrentState]:
        """The next frames ``(B, n, d_model)`` after ``state`` -> outputs and the new state."""
        out, new_state = self._attend(x, state, None, keep=True)
        assert new_state is not None
        return out, new_state
