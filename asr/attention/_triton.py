"""The causal product as a Triton kernel: tensor-core matmuls on chunks, float32 state.

The chunked form of ``asr.attention.kernel`` (masked C x C products inside a chunk, a running
state S = sum k v^T across chunks) written with ``tl.dot``, the way the flash-linear-attention
library's chunk kernels are: on a GPU, bfloat16/float16 inputs go through the tensor cores with
float32 accumulation, the state is summed in float32 and rounded to the input dtype only as a
matmul operand; float32 inputs use exact float32 products (``input_precision="ieee"``, no TF32).
One program walks the chunks of one (batch x head, M tile) in order, forward or in reverse, so
the same kernel gives the forward pass and all three gradients (see ``kernel.py``).

Why Triton and not another CUDA file: the same source runs on CPU tensors in Triton's
interpreter (``TRITON_INTERPRET=1`` in the environment before triton is first imported), so its
indexing and masking are tested on every machine, GPU or not.
Opt-in (``causal_product(..., backend="triton")``) until it is measured on a GPU.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # triton ships with torch's Linux CUDA wheels only
    triton = None
    tl = None
# Triton reads the annotation's text: "constexpr" marks compile-time arguments for both its
# compiler and its interpreter (which does not accept "tl.constexpr").
constexpr = tl.constexpr if tl is not None else None

name = "triton"
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_D = 128  # the (D x M-tile) float32 state lives in registers
CHUNK = 64
MAX_M_TILE = 64


def is_available() -> bool:
    """Whether triton imports (it runs on CUDA tensors, and on CPU ones in its interpreter)."""
    return triton is not None


def _operand(x, UPCAST: constexpr):
    """A matmul operand as is, or in float32 where the interpreter cannot multiply bfloat16
    (the values are the same: every bfloat16 is a float32, and their products are exact)."""
    if UPCAST:
        return x.to(tl.float32)
    return x


def _chunk_causal_product(
    a_ptr, b_ptr, c_ptr, out_ptr, n, d, m,
    stride_a, stride_b, stride_c, stride_out,  # between (batch x head) slices; rows are D or M
    CHUNK: constexpr, BLOCK_D: constexpr, BLOCK_M: constexpr,
    REVERSE: constexpr, PRECISION: constexpr, UPCAST: constexpr,
):  # fmt: skip
    """out[i] = sum over j <= i (j >= i if REVERSE) of (a_i . b_j) c_j, for one (bh, M tile)."""
    bh = tl.program_id(0).to(tl.int64)  # bh * stride may pass 2**31 elements
    rows = tl.arange(0, CHUNK)
    cols_d = tl.arange(0, BLOCK_D)
    cols_m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    a_ptr += bh * stride_a
    b_ptr += bh * stride_b
    c_ptr += bh * stride_c
    out_ptr += bh * stride_out
    if REVERSE:
        keep = rows[:, None] <= rows[None, :]
    else:
        keep = rows[:, None] >= rows[None, :]
    state = tl.zeros((BLOCK_D, BLOCK_M), dtype=tl.float32)
    n_chunks = tl.cdiv(n, CHUNK)
    for step in range(0, n_chunks):
        if REVERSE:
            start = (n_chunks - 1 - step) * CHUNK
        else:
            start = step * CHUNK
        r = start + rows
        in_d = (r[:, None] < n) & (cols_d[None, :] < d)
        in_m = (r[:, None] < n) & (cols_m[None, :] < m)
        a = tl.load(a_ptr + r[:, None] * d + cols_d[None, :], mask=in_d, other=0.0)
        b = tl.load(b_ptr + r[:, None] * d + cols_d[None, :], mask=in_d, other=0.0)
        c = tl.load(c_ptr + r[:, None] * m + cols_m[None, :], mask=in_m, other=0.0)
        a_op = _operand(a, UPCAST)
        b_op = _operand(b, UPCAST)
        c_op = _operand(c, UPCAST)
        scores = tl.dot(a_op, tl.trans(b_op), input_precision=PRECISION)
        scores = tl.where(keep, scores, 0.0)
        # Scores and state are rounded to the input dtype as operands, as the tensor cores take
        # them; the sums stay float32.
        scores_op = _operand(scores.to(c.dtype), UPCAST)
        out = tl.dot(scores_op, c_op, input_precision=PRECISION)
        out += tl.dot(a_op, _operand(state.to(a.dtype), UPCAST), input_precision=PRECISION)
        state += tl.dot(tl.trans(b_op), c_op, input_precision=PRECISION)
        tl.store(out_ptr + r[:, None] * m + cols_m[None, :], out.to(c.dtype), mask=in_m)


if triton is not None:
    _operand = triton.jit(_operand)
    _chunk_causal_product = triton.jit(_chunk_causal_product)


def interpreted() -> bool:
    """Whether triton runs kernels in its interpreter (on CPU tensors) in this process."""
    return triton is not None and bool(triton.knobs.runtime.interpret)


def _product(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, reverse: bool) -> torch.Tensor:
    """P(a, b, c) or, with ``reverse``, R(a, b, c) of ``kernel.py``; contiguous inputs."""
    if triton is None:
        raise RuntimeError("the triton causal product needs the triton package")
    if (a.device.type == "cuda") == interpreted():
        raise RuntimeError(
            "the triton causal product runs on CUDA tensors, or on CPU tensors in triton's "
            f"interpreter (TRITON_INTERPRET=1 before triton is imported); got {a.device} with "
            f"the interpreter {'on' if interpreted() else 'off'}"
        )
    batch, heads, n, d = a.shape
    m = c.shape[-1]
    out = torch.empty_like(c)
    if n == 0:
        return out
    block_m = min(MAX_M_TILE, max(16, triton.next_power_of_2(m)))
    grid = (batch * heads, triton.cdiv(m, block_m))
    upcast = interpreted() and a.dtype == torch.bfloat16
    _chunk_causal_product[grid](
        a, b, c, out, n, d, m, n * d, n * d, n * m, n * m,
        CHUNK=CHUNK, BLOCK_D=max(16, triton.next_power_of_2(d)), BLOCK_M=block_m,
        REVERSE=reverse, PRECISION="ieee" if a.dtype == torch.float32 or upcast else "tf32",
        UPCAST=upcast,
    )  # fmt: skip
    return out


def forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``out_i = sum_{j <= i} (q_i . k_j) v_j`` in the inputs' dtype."""
    return _product(q, k, v, reverse=False)


def backward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, grad: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`forward`: the same kernel forward once and in reverse twice."""
    return (
        _product(grad, v, k, reverse=False),
        _product(v, grad, q, reverse=True),
        _product(k, q, grad, reverse=True),
    )
