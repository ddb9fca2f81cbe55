"""Argument checks shared by the attention entry points.

Every public function in :mod:`asr.attention` validates its inputs here so a bad call fails with a
``ValueError``/``TypeError`` naming the argument, instead of a kernel crash or a silent broadcast.
"""

from __future__ import annotations

import torch

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensor(name: str, x: object, ndim: int) -> torch.Tensor:
    """Check that ``x`` is a floating tensor of rank ``ndim`` with a supported dtype."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(
            f"{name} has dtype {x.dtype}; supported: float16, bfloat16, float32, float64"
        )
    return x


def check_same_dtype_device(**tensors: torch.Tensor) -> None:
    """Check that all named tensors share one dtype and one device (no silent casts)."""
    items = list(tensors.items())
    first_name, first = items[0]
    for name, t in items[1:]:
        if t.dtype != first.dtype:
            raise TypeError(
                f"{name} has dtype {t.dtype} but {first_name} has {first.dtype}; cast them to one dtype"
            )
        if t.device != first.device:
            raise ValueError(
                f"{name} is on {t.device} but {first_name} is on {first.device}; move them to one device"
            )


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, same_length: bool) -> None:
    """Check q, k ``(B, H, N, D)`` and v ``(B, H, N, M)``.

    ``same_length`` requires queries and keys of equal length (causal attention); non-causal
    attention may attend from ``N_q`` queries to ``N_k`` keys.
    """
    check_tensor("q", q, 4)
    check_tensor("k", k, 4)
    check_tensor("v", v, 4)
    check_same_dtype_device(q=q, k=k, v=v)
    bq, hq, nq, dq = q.shape
    bk, hk, nk, dk = k.shape
    bv, hv, nv, _ = v.shape
    if (bk, hk) != (bq, hq):
        raise ValueError(
            f"k has batch/heads {(bk, hk)} but q has {(bq, hq)}; shapes are q, k (B, H, N, D)"
        )
    if (bv, hv, nv) != (bk, hk, nk):
        raise ValueError(
            f"v has shape {tuple(v.shape)} but k has {tuple(k.shape)}; "
            "v must be (B, H, N, M) with the same B, H, N as k"
        )
    if dk != dq:
        raise ValueError(f"k has feature size D={dk} but q has D={dq}; they must match")
    if same_length and nk != nq:
        raise ValueError(f"k has length N={nk} but q has N={nq}; causal attention needs them equal")
    if min(q.shape) == 0 or min(v.shape) == 0:
        raise ValueError(
            f"empty input: q {tuple(q.shape)}, v {tuple(v.shape)}; every dimension must be >= 1"
        )


def check_key_padding_mask(mask: torch.Tensor | None, k: torch.Tensor) -> None:
    """Check a bool ``(B, N)`` key padding mask (True = padding) against keys ``(B, H, N, D)``."""
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"key_padding_mask must be a bool tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"key_padding_mask must have dtype torch.bool (True = padding), got {mask.dtype}"
        )
    b, _, n, _ = k.shape
    if tuple(mask.shape) != (b, n):
        raise ValueError(
            f"key_padding_mask has shape {tuple(mask.shape)}; expected (B, N) = {(b, n)}"
        )
    if mask.device != k.device:
        raise ValueError(f"key_padding_mask is on {mask.device} but k is on {k.device}")
