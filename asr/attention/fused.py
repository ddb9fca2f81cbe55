"""Linear attention with phi = elu + 1 in one kernel: the encoder's attention, fused.

    out_i = phi(q_i)^T sum_j phi(k_j) v_j^T / (phi(q_i) . sum_j phi(k_j) + eps)    (j <= i if causal)

The composite PyTorch form (:func:`asr.attention.linear_attention` with another feature map, or
without a kernel) runs the feature map, masking, reductions and division as separate ops, and
autograd keeps phi(q), phi(k), the numerator, the denominator and their casts for the backward
pass. The fused kernels (CPU: ``csrc/attention_cpu.cpp``; CUDA: ``csrc/linear_attention_cuda.cu``)
apply phi and the key padding mask while loading, reduce in float32 (float64 for float64 inputs)
and divide before storing; the backward pass keeps only q, k, v, the output and the normaliser
(plus the tiny sum_j phi(k_j) v_j^T state for the non-causal form) and recomputes phi.

:func:`fused_linear_attention_reference` is the slow, obviously correct version tests compare with.
"""

from __future__ import annotations

import torch

from ._validation import check_key_padding_mask, check_qkv


def fused_linear_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    key_padding_mask: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """O(N^2) float64 formula: weights phi(q) phi(k)^T (masked), then a weighted mean of v."""
    phi_q = torch.nn.functional.elu(q.double()) + 1
    phi_k = torch.nn.functional.elu(k.double()) + 1
    if key_padding_mask is not None:
        phi_k = phi_k.masked_fill(key_padding_mask[:, None, :, None], 0.0)
    weights = phi_q @ phi_k.transpose(-1, -2)
    if causal:
        weights = weights.tril()
    out = (weights @ v.double()) / (weights.sum(-1, keepdim=True) + eps)
    return out.to(q.dtype)


class _FusedLinearAttention(torch.autograd.Function):
    """Inputs in ``(B, N, H, D)`` layout (as projections produce them); output ``(B, N, H, M)``."""

    @staticmethod
    def forward(ctx, q, k, v, mask, causal, eps, kernel):  # type: ignore[no-untyped-def]
        out, den, kv, z = kernel.layer_forward(q, k, v, mask, causal, eps)
        ctx.save_for_backward(q, k, v, mask, out, den, kv, z)
        ctx.causal, ctx.kernel = causal, kernel
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        q, k, v, mask, out, den, kv, z = ctx.saved_tensors
        grad_q, grad_k, grad_v = ctx.kernel.layer_backward(
            q, k, v, mask, (out, den, kv, z), grad.contiguous(), ctx.causal
        )
        return grad_q, grad_k, grad_v, None, None, None, None


class _FusedSelfAttention(torch.autograd.Function):
    """q, k, v packed in one ``(B, N, 3, H, D)`` tensor (one projection GEMM made them); output
    ``(B, N, H, D)``. The backward writes the three gradients into one buffer of that layout,
    which is the projection's output gradient as it stands: given apart, autograd would stack
    them in one more pass over memory."""

    @staticmethod
    def forward(ctx, qkv, mask, causal, eps, kernel):  # type: ignore[no-untyped-def]
        q, k, v = qkv.unbind(2)
        out, den, kv, z = kernel.layer_forward(q, k, v, mask, causal, eps)
        ctx.save_for_backward(qkv, mask, out, den, kv, z)
        ctx.causal, ctx.kernel = causal, kernel
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        qkv, mask, out, den, kv, z = ctx.saved_tensors
        grad_qkv = torch.empty_like(qkv)
        ctx.kernel.layer_backward(
            *qkv.unbind(2),
            mask,
            (out, den, kv, z),
            grad.contiguous(),
            ctx.causal,
            into=grad_qkv.unbind(2),
        )
        return grad_qkv, None, None, None, None


def fused_kernel_for(device: torch.device) -> object | None:
    """The fused kernel for ``device`` or ``None`` (the loader has warned why)."""
    if device.type == "cpu":
        from ._cpu import load_cpu_kernel

        return load_cpu_kernel()
    if device.type == "cuda":
        from .kernel import cuda_fused_kernel

        return cuda_fused_kernel()
    return None


def _checked_kernel(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool,
    key_padding_mask: torch.Tensor | None,
    eps: float,
) -> object | None:
    """Validate the inputs; the fused kernel that serves their device and dtype, or ``None``."""
    check_qkv(q, k, v, same_length=causal)
    check_key_padding_mask(key_padding_mask, k)
    if not eps > 0:
        raise ValueError(f"eps must be > 0 (it guards the normaliser against 0), got {eps}")
    kernel = fused_kernel_for(q.device)
    if kernel is None or q.dtype not in getattr(kernel, "FUSED_DTYPES", ()):
        return None
    return kernel


def fused_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    key_padding_mask: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> torch.Tensor | None:
    """elu+1 linear attention over q, k ``(B, H, N, D)`` and v ``(B, H, N, M)`` in one kernel.

    Any strides with a contiguous last dimension are read in place: ``x.view(B, N, H, D)
    .transpose(1, 2)`` from a projection costs no copy, and the result is such a view of a
    ``(B, N, H, M)`` tensor. Returns ``None`` when no kernel serves this device (callers then use
    the composite form).
    """
    kernel = _checked_kernel(q, k, v, causal, key_padding_mask, eps)
    if kernel is None:
        return None
    tokens_major = [x.transpose(1, 2) for x in (q, k, v)]
    tokens_major = [x if x.stride(-1) == 1 else x.contiguous() for x in tokens_major]
    mask = None if key_padding_mask is None else key_padding_mask.contiguous()
    out = _FusedLinearAttention.apply(*tokens_major, mask, causal, float(eps), kernel)
    return out.transpose(1, 2)


def fused_self_attention(
    qkv: torch.Tensor,
    *,
    causal: bool,
    key_padding_mask: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> torch.Tensor | None:
    """:func:`fused_linear_attention` of q, k, v packed as ``qkv (B, N, 3, H, D)`` (the layout of
    one projection to 3 x d_model) -> ``(B, N, H, D)``; its gradient comes back packed the same
    way, without the copy that stacking three separate gradients costs. ``None`` where no kernel
    serves the device."""
    if qkv.dim() != 5 or qkv.size(2) != 3:
        raise ValueError(f"qkv must be (B, N, 3, H, D), got {tuple(qkv.shape)}")
    q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))
    kernel = _checked_kernel(q, k, v, causal, key_padding_mask, eps)
    if kernel is None:
        return None
    if qkv.stride(-1) != 1:
        qkv = qkv.contiguous()
    mask = None if key_padding_mask is None else key_padding_mask.contiguous()
    return _FusedSelfAttention.apply(qkv, mask, causal, float(eps), kernel)
