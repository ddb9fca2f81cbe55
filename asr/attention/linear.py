"""Normalised linear attention (Katharopoulos et al. 2020), parallel and recurrent forms.

    out_i = phi(q_i)^T sum_j phi(k_j) v_j^T / (phi(q_i) . sum_j phi(k_j) + eps)

Non-causal: two matmuls. Causal: :func:`causal_product` for the numerator and a cumulative sum for
the normaliser. The recurrent form carries ``S = sum phi(k) v^T`` and ``z = sum phi(k)`` and gives
the same result one token at a time in O(1) per token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._validation import check_key_padding_mask, check_qkv, check_same_dtype_device, check_tensor
from .feature_maps import EluFeatureMap, FeatureMap, apply_feature_map
from .fused import fused_linear_attention, fused_self_attention
from .kernel import causal_product

FeatureMapLike = str | FeatureMap | Callable[[torch.Tensor], torch.Tensor]
_HALF_DTYPES = (torch.float16, torch.bfloat16)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # Half-precision sums over thousands of keys lose too much; accumulate in float32.
    return torch.float32 if dtype in _HALF_DTYPES else dtype


def _is_elu_plus_one(feature_map: FeatureMapLike) -> bool:
    """The feature map the fused kernels implement."""
    return feature_map == "elu" or type(feature_map) is EluFeatureMap


def _check_eps(eps: float) -> None:
    if not eps > 0:
        raise ValueError(f"eps must be > 0 (it guards the normaliser against 0), got {eps}")


def linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    feature_map: FeatureMapLike = "elu",
    key_padding_mask: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Kernelised attention over q, k ``(B, H, N, D)`` and v ``(B, H, N, M)``.

    :param causal: position i attends to j <= i only (then q and k must have equal length).
    :param feature_map: registry name (``"elu"``, ``"relu"``, ``"favor"``; a name draws fresh
        random features each call), a :class:`FeatureMap` or any callable.
    :param key_padding_mask: bool ``(B, N)``, True marks padded keys; they get zero features and
        so contribute nothing (an utterance's output does not depend on its batch's padding).
    :returns: ``(B, H, N_q, M)`` in the input dtype. With elu+1 (``"elu"`` or an
        :class:`EluFeatureMap`) this runs the fused kernel (:mod:`asr.attention.fused`) where one
        serves the device; the result may then be a strided view.
    """
    check_qkv(q, k, v, same_length=causal)
    check_key_padding_mask(key_padding_mask, k)
    _check_eps(eps)
    if _is_elu_plus_one(feature_map):
        out = fused_linear_attention(
            q, k, v, causal=causal, key_padding_mask=key_padding_mask, eps=eps
        )
        if out is not None:
            return out
    return composite_linear_attention(
        q, k, v, causal=causal, feature_map=feature_map, key_padding_mask=key_padding_mask, eps=eps
    )


def linear_self_attention(
    qkv: torch.Tensor,
    *,
    causal: bool,
    feature_map: FeatureMapLike = "elu",
    key_padding_mask: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """:func:`linear_attention` of q, k, v packed as ``qkv (B, N, 3, H, D)`` (one projection's
    output) -> ``(B, N, H, D)``. With elu+1 the fused kernel takes the packed tensor and returns
    its gradient packed the same way (:func:`asr.attention.fused.fused_self_attention`)."""
    if _is_elu_plus_one(feature_map):
        out = fused_self_attention(qkv, causal=causal, key_padding_mask=key_padding_mask, eps=eps)
        if out is not None:
            return out
    q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))
    return linear_attention(
        q, k, v, causal=causal, feature_map=feature_map, key_padding_mask=key_padding_mask, eps=eps
    ).transpose(1, 2)


def composite_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    feature_map: FeatureMapLike = "elu",
    key_padding_mask: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """:func:`linear_attention` from PyTorch ops and :func:`causal_product` (any feature map).

    The form every feature map other than elu+1 takes, and elu+1's fallback where no fused
    kernel serves the device; autograd keeps its intermediates.
    """
    dtype = q.dtype
    work = _compute_dtype(dtype)
    phi_q, phi_k = apply_feature_map(feature_map, q.to(work), k.to(work))
    v = v.to(work)
    if key_padding_mask is not None:
        phi_k = phi_k.masked_fill(key_padding_mask[:, None, :, None], 0.0)
    if causal:
        numerator = causal_product(phi_q, phi_k, v)
        denominator = (phi_q * phi_k.cumsum(dim=2)).sum(-1)
    else:
        kv = phi_k.transpose(-1, -2) @ v  # (B, H, F, M)
        numerator = phi_q @ kv
        denominator = phi_q @ phi_k.sum(dim=2).unsqueeze(-1)
        denominator = denominator.squeeze(-1)
    return (numerator / (denominator.unsqueeze(-1) + eps)).to(dtype)


@dataclass
class RecurrentState:
    """State of causal linear attention after t tokens.

    :param S: ``(B, H, F, M)`` running sum of phi(k_j) v_j^T.
    :param z: ``(B, H, F)`` running sum of phi(k_j) (the normaliser).
    """

    S: torch.Tensor
    z: torch.Tensor

    @classmethod
    def zeros(
        cls,
        batch: int,
        heads: int,
        n_features: int,
        value_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> RecurrentState:
        """The state before the first token."""
        dtype = _compute_dtype(dtype)
        return cls(
            S=torch.zeros(batch, heads, n_features, value_dim, dtype=dtype, device=device),
            z=torch.zeros(batch, heads, n_features, dtype=dtype, device=device),
        )


def linear_attention_step(
    q_t: torch.Tensor,
    k_t: torch.Tensor,
    v_t: torch.Tensor,
    state: RecurrentState | None,
    *,
    feature_map: FeatureMapLike = "elu",
    eps: float = 1e-6,
) -> tuple[torch.Tensor, RecurrentState]:
    """One token of causal linear attention: q_t, k_t ``(B, H, D)``, v_t ``(B, H, M)``.

    Returns ``(out_t (B, H, M), new_state)``; the input state is not modified. Feeding tokens
    0..N-1 reproduces ``linear_attention(..., causal=True)``.
    """
    for name, t in (("q_t", q_t), ("k_t", k_t), ("v_t", v_t)):
        check_tensor(name, t, 3)
    check_same_dtype_device(q_t=q_t, k_t=k_t, v_t=v_t)
    if q_t.shape != k_t.shape or v_t.shape[:2] != q_t.shape[:2]:
        raise ValueError(
            f"step shapes q_t {tuple(q_t.shape)}, k_t {tuple(k_t.shape)}, v_t {tuple(v_t.shape)}; "
            "expected q_t, k_t (B, H, D) and v_t (B, H, M)"
        )
    _check_eps(eps)
    dtype = q_t.dtype
    work = _compute_dtype(dtype)
    phi_q, phi_k = apply_feature_map(feature_map, q_t.to(work), k_t.to(work))
    v_t = v_t.to(work)
    b, h, f = phi_k.shape
    if state is None:
        state = RecurrentState.zeros(b, h, f, v_t.shape[-1], dtype=work, device=q_t.device)
    elif state.S.shape != (b, h, f, v_t.shape[-1]) or state.z.shape != (b, h, f):
        raise ValueError(
            f"state has S {tuple(state.S.shape)}, z {tuple(state.z.shape)}; this step needs "
            f"S {(b, h, f, v_t.shape[-1])}, z {(b, h, f)}"
        )
    s_new = state.S + phi_k.unsqueeze(-1) * v_t.unsqueeze(-2)
    z_new = state.z + phi_k
    numerator = (phi_q.unsqueeze(-2) @ s_new).squeeze(-2)
    denominator = (phi_q * z_new).sum(-1, keepdim=True)
    out = numerator / (denominator + eps)
    return out.to(dtype), RecurrentState(S=s_new, z=z_new)
