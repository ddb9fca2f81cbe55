"""The causal dot product: the one kernel that causal linear attention needs.

    out[b, h, i] = sum_{j <= i} (q[b, h, i] . k[b, h, j]) v[b, h, j]

with q, k ``(B, H, N, D)`` and v ``(B, H, N, M)`` (no feature map, no normaliser).
:func:`causal_product` is differentiable and dispatches by device: the CPU C++ kernel
(``csrc/attention_cpu.cpp``), the CUDA kernel (``asr.attention._cuda``), or the chunked
pure-PyTorch fallback in this file. :func:`causal_product_reference` is the slow, obviously
correct O(N^2) version that tests compare against.

All fast paths use the chunked form: inside a chunk of C steps a masked (C x C) product, across
chunks a running state S = sum k v^T (D x M) carried in float32 or better. The backward pass needs

    grad_q = causal_product(grad, v, k)                       (forward state S)
    grad_k[j] = R_j v_j,  grad_v[j] = R_j^T k_j,  R_j = sum_{i >= j} q_i grad_i^T   (reverse state)

so it never materialises an (N, D, M) tensor either.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch

from ._validation import check_qkv


@dataclass(frozen=True)
class CausalProductConfig:
    """Tuning knobs of the pure-PyTorch fallback (the C++ kernel has its own chunk size).

    :param torch_chunk: chunk length of the fallback; larger amortises Python overhead, smaller
        wastes less work on the masked upper triangle.
    """

    torch_chunk: int = 128


CONFIG = CausalProductConfig()
BACKENDS = ("auto", "cpu", "cuda", "torch", "triton")
DISABLE_CUDA_ENV = "ASR_ATTENTION_DISABLE_CUDA_KERNEL"
_HALF_DTYPES = (torch.float16, torch.bfloat16)


def causal_product_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """O(N^2) reference: (q k^T masked to j <= i) v, computed in float64 for use in tests."""
    check_qkv(q, k, v, same_length=True)
    scores = q.double() @ k.double().transpose(-1, -2)
    return (scores.tril() @ v.double()).to(q.dtype)


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def torch_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk: int | None = None
) -> torch.Tensor:
    """Chunked causal product in plain PyTorch (any device), O(N (D + M)) extra memory."""
    chunk = chunk or CONFIG.torch_chunk
    b, h, n, d = q.shape
    m = v.shape[-1]
    acc = _acc_dtype(q.dtype)
    q, k, v = q.to(acc), k.to(acc), v.to(acc)
    out = torch.empty(b, h, n, m, dtype=acc, device=q.device)
    state = torch.zeros(b, h, d, m, dtype=acc, device=q.device)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        qc, kc, vc = q[:, :, s:e], k[:, :, s:e], v[:, :, s:e]
        scores = (qc @ kc.transpose(-1, -2)).tril()
        out[:, :, s:e] = scores @ vc + qc @ state
        state = state + kc.transpose(-1, -2) @ vc
    return out


def torch_backward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    grad: torch.Tensor,
    chunk: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`torch_forward` by the forward (S) and reverse (R) state recurrences."""
    chunk = chunk or CONFIG.torch_chunk
    acc = _acc_dtype(q.dtype)
    q, k, v, grad = q.to(acc), k.to(acc), v.to(acc), grad.to(acc)
    grad_q = torch_forward(grad, v, k, chunk)
    b, h, n, d = q.shape
    m = v.shape[-1]
    grad_k = torch.empty_like(k)
    grad_v = torch.empty_like(v)
    reverse = torch.zeros(b, h, d, m, dtype=acc, device=q.device)
    starts = list(range(0, n, chunk))
    for s in reversed(starts):
        e = min(s + chunk, n)
        qc, kc, vc, gc = q[:, :, s:e], k[:, :, s:e], v[:, :, s:e], grad[:, :, s:e]
        scores = (qc @ kc.transpose(-1, -2)).tril()
        grad_scores = (gc @ vc.transpose(-1, -2)).tril()
        grad_k[:, :, s:e] = grad_scores.transpose(-1, -2) @ qc + vc @ reverse.transpose(-1, -2)
        grad_v[:, :, s:e] = scores.transpose(-1, -2) @ gc + kc @ reverse
        reverse = reverse + qc.transpose(-1, -2) @ gc
    return grad_q, grad_k, grad_v


class _TorchBackend:
    name = "torch"
    SUPPORTED_DTYPES = (torch.float32, torch.float64)  # halves are upcast by the caller

    @staticmethod
    def forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch_forward(q, k, v)

    @staticmethod
    def backward(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, grad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return torch_backward(q, k, v, grad)


def _cpu_backend() -> object | None:
    from ._cpu import load_cpu_kernel

    return load_cpu_kernel()


_CUDA_STATE: dict[str, object | None] = {}


def _cuda_backend() -> object | None:
    """The CUDA kernel (``asr.attention._cuda``), imported and self-checked on first use.

    ``None`` (warned once) when it cannot be imported/built or when its result on a tiny probe
    disagrees with the reference; the caller then uses the PyTorch fallback, so a broken build
    is slow rather than wrong.
    """
    if os.environ.get(DISABLE_CUDA_ENV):
        return None
    if "module" not in _CUDA_STATE:
        _CUDA_STATE["module"] = _load_cuda_kernel()
    return _CUDA_STATE["module"]


def _load_cuda_kernel() -> object | None:
    try:
        from . import _cuda  # optional; written and built separately
    except Exception as exc:  # noqa: BLE001 - any build/import failure means "use the fallback"
        _warn_once("cuda", f"CUDA causal_product kernel unavailable ({exc!s:.300}); using PyTorch")
        return None
    if not (
        callable(getattr(_cuda, "forward", None)) and callable(getattr(_cuda, "backward", None))
    ):
        _warn_once("cuda", "asr.attention._cuda lacks forward/backward; using PyTorch fallback")
        return None
    try:
        if hasattr(_cuda, "is_available") and not _cuda.is_available():  # builds on first call
            _warn_once("cuda", "CUDA causal_product kernel could not be built; using PyTorch")
            return None
        gen = torch.Generator(device="cpu").manual_seed(0)
        q, k, v, g = (torch.rand(1, 2, 37, 8, generator=gen).cuda() for _ in range(4))
        want = causal_product_reference(q, k, v)
        got = _cuda.forward(q, k, v)
        grads = _cuda.backward(q, k, v, g)
        want_grads = torch_backward(q, k, v, g)
        ok = torch.allclose(got, want, rtol=1e-3, atol=1e-3) and all(
            torch.allclose(a, b, rtol=1e-3, atol=1e-3)
            for a, b in zip(grads, want_grads, strict=True)
        )
    except Exception as exc:  # noqa: BLE001 - a kernel that cannot run is not used
        _warn_once(
            "cuda",
            f"CUDA causal_product kernel failed its self-check ({exc!s:.300}); using PyTorch",
        )
        return None
    if not ok:
        _warn_once("cuda", "CUDA causal_product kernel disagrees with the reference; using PyTorch")
        return None
    return _cuda


def cuda_fused_kernel() -> object | None:
    """The CUDA fused linear-attention kernel (``_cuda.layer_forward``/``layer_backward``).

    Self-checked once against :func:`asr.attention.fused.fused_linear_attention_reference` on
    a tiny probe, like :func:`_cuda_backend`; ``None`` (warned once) when it cannot be used.
    """
    if "fused" not in _CUDA_STATE:
        _CUDA_STATE["fused"] = _check_cuda_fused(_cuda_backend())
    return _CUDA_STATE["fused"]


def _check_cuda_fused(module: object | None) -> object | None:
    if module is None:
        return None
    from .fused import fused_linear_attention_reference

    try:
        gen = torch.Generator(device="cpu").manual_seed(0)
        q, k, v = (torch.randn(2, 37, 2, 8, generator=gen).cuda() for _ in range(3))
        mask = torch.zeros(2, 37, dtype=torch.bool, device="cuda")
        mask[1, 30:] = True
        ok = True
        for causal in (False, True):
            out = module.layer_forward(q, k, v, mask, causal, 1e-6)[0]
            want = fused_linear_attention_reference(
                *(x.transpose(1, 2) for x in (q, k, v)), causal=causal, key_padding_mask=mask
            ).transpose(1, 2)
            ok = ok and torch.allclose(out, want, rtol=1e-4, atol=1e-5)
    except Exception as exc:  # noqa: BLE001 - a kernel that cannot run is not used
        _warn_once(
            "cuda-fused", f"CUDA fused linear attention failed its self-check ({exc!s:.300})"
        )
        return None
    if not ok:
        _warn_once(
            "cuda-fused",
            "CUDA fused linear attention disagrees with the reference; using the composite form",
        )
        return None
    return module


_WARNED: set[str] = set()


# How much slower the pure-PyTorch causal product is than the CUDA kernel, as BENCHMARKS.md states
# it ("CUDA kernel on an NVIDIA H200"); tests/attention/test_packaging.py checks that it does.
CUDA_FALLBACK_SLOWDOWN = "about 13x slower at N=4096 on an NVIDIA H200"


def _warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        if key == "cuda":
            message += f" (the PyTorch fallback is {CUDA_FALLBACK_SLOWDOWN}, see BENCHMARKS.md)"
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _select_backend(q: torch.Tensor, backend: str) -> object:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return _TorchBackend
    if backend == "triton":
        from . import _triton

        if not _triton.is_available():
            raise RuntimeError("backend='triton' needs the triton package (pip install triton)")
        return _triton
    device = q.device.type
    if backend in ("cpu", "cuda") and backend != device:
        raise ValueError(f"backend={backend!r} requested but the inputs are on {q.device}")
    if device == "cpu":
        kernel = _cpu_backend()
    elif device == "cuda":
        kernel = _cuda_backend()
    else:
        kernel = None
    if kernel is None:
        if backend != "auto":
            raise RuntimeError(
                f"backend={backend!r} requested but its kernel could not be loaded (see warning)"
            )
        return _TorchBackend
    return kernel


def _check_kernel_dims(kernel: object, d: int, m: int) -> None:
    """A kernel module may declare limits ``MAX_D``/``MAX_M``; exceeding them is a ValueError."""
    for name, size, attr in (("D", d, "MAX_D"), ("M", m, "MAX_M")):
        limit = getattr(kernel, attr, None)
        if limit is not None and size > limit:
            raise ValueError(
                f"causal_product: {name}={size} exceeds the {getattr(kernel, 'name', 'kernel')} "
                f"limit {attr}={limit}; use backend='torch' or a smaller head size"
            )


class _CausalProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, kernel):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(q, k, v)
        ctx.kernel = kernel
        return kernel.forward(q, k, v)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        q, k, v = ctx.saved_tensors
        grad_q, grad_k, grad_v = ctx.kernel.backward(q, k, v, grad.contiguous())
        return grad_q, grad_k, grad_v, None


def causal_product(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, backend: str = "auto"
) -> torch.Tensor:
    """Differentiable causal dot product ``out_i = sum_{j<=i} (q_i . k_j) v_j``.

    :param q: ``(B, H, N, D)`` queries (already feature-mapped).
    :param k: ``(B, H, N, D)`` keys (already feature-mapped).
    :param v: ``(B, H, N, M)`` values.
    :param backend: ``"auto"`` (kernel for the device, PyTorch fallback otherwise), or force
        ``"cpu"``, ``"cuda"``, ``"torch"`` or ``"triton"`` (``asr.attention._triton``: tensor
        cores for half inputs; opt-in until measured on a GPU).
    :returns: ``(B, H, N, M)`` in the input dtype; float16/bfloat16 are computed in float32
        (``"triton"``: multiplied in their own dtype, summed in float32).
    """
    check_qkv(q, k, v, same_length=True)
    kernel = _select_backend(q, backend)
    _check_kernel_dims(kernel, q.shape[-1], v.shape[-1])
    dtype = q.dtype
    supported = getattr(kernel, "SUPPORTED_DTYPES", (torch.float32, torch.float64))
    if dtype not in supported:
        if dtype in _HALF_DTYPES and torch.float32 in supported:
            # Upcast once here (differentiably): float32 accumulation, result cast back below.
            q, k, v = q.float(), k.float(), v.float()
        elif backend == "auto":
            kernel = _TorchBackend
        else:
            raise TypeError(
                f"backend={backend!r} does not support dtype {dtype} (supports {supported}); "
                "use backend='auto' or 'torch'"
            )
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = _CausalProduct.apply(q, k, v, kernel)
    return out.to(dtype)
