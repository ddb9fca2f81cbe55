"""causal_product: C++ kernel and PyTorch fallback against the O(N^2) reference."""

import warnings

import pytest
import torch

import asr.attention.kernel as cp_module
from asr.attention import _cpu, causal_product, causal_product_reference
from asr.attention.kernel import torch_backward, torch_forward

from .conftest import out_and_grads as _grads
from .conftest import rel_err as _rel_err

BACKENDS = ["cpu", "torch"]


def test_cpu_kernel_builds():
    kernel = _cpu.load_cpu_kernel()
    assert kernel is not None, "the C++ kernel should build on this machine (g++ is present)"


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_float64(backend, make_qkv, monkeypatch):
    # N=7 with a chunk of 3 crosses chunk boundaries, including a partial last chunk.
    monkeypatch.setattr(cp_module, "CONFIG", cp_module.CausalProductConfig(torch_chunk=3))
    monkeypatch.setattr(_cpu, "CONFIG", _cpu.CpuKernelConfig(chunk=3))
    q, k, v = (x.requires_grad_() for x in make_qkv(1, 1, 7, 2, 3, torch.float64))
    assert torch.autograd.gradcheck(
        lambda a, b, c: causal_product(a, b, c, backend=backend), (q, k, v)
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("b", "h", "n", "d", "m"),
    [
        (1, 1, 1, 1, 1),
        (2, 3, 1, 16, 4),
        (1, 1, 97, 16, 64),
        (2, 2, 65, 64, 16),
        (1, 2, 130, 1, 128),
        (1, 1, 33, 128, 1),
        (1, 1, 20, 256, 256),
        (3, 1, 200, 64, 64),
    ],
)
def test_matches_reference_with_grads(backend, b, h, n, d, m, make_qkv):
    q, k, v = make_qkv(b, h, n, d, m, torch.float64)
    g = torch.randn(b, h, n, m, dtype=torch.float64)
    ours = _grads(lambda a, c, e: causal_product(a, c, e, backend=backend), q, k, v, g)
    ref = _grads(causal_product_reference, q, k, v, g)
    for name, a, r in zip(("out", "grad_q", "grad_k", "grad_v"), ours, ref, strict=True):
        assert _rel_err(a, r) < 1e-12, name


@pytest.mark.parametrize("chunk", [1, 7, 64, 500])
def test_cpu_chunk_sizes_float32(chunk, make_qkv):
    kernel = _cpu.load_cpu_kernel()
    q, k, v = make_qkv(2, 2, 150, 32, 24, positive=True)
    g = torch.randn_like(v)
    out = kernel.extension.forward(q, k, v, chunk)
    grads = kernel.extension.backward(q, k, v, g, chunk)
    ref = _grads(causal_product_reference, q, k, v, g)
    assert _rel_err(out, ref[0]) < 1e-5
    for a, r in zip(grads, ref[1:], strict=True):
        assert _rel_err(a, r) < 1e-5


@pytest.mark.parametrize("blas_only", [False, True])
def test_cpu_gemm_paths_and_odd_widths(blas_only, make_qkv):
    """The AVX-512 tiles (masked last vector: widths not a multiple of 16) and BLAS agree."""
    ext = _cpu.load_cpu_kernel().extension
    ext.set_blas_only(blas_only)
    try:
        q, k, v = make_qkv(2, 3, 101, 37, 70, positive=True)
        g = torch.randn_like(v)
        out = ext.forward(q, k, v, 16)
        grads = ext.backward(q, k, v, g, 16)
    finally:
        ext.set_blas_only(False)
    ref = _grads(causal_product_reference, q, k, v, g)
    assert _rel_err(out, ref[0]) < 1e-5
    for a, r in zip(grads, ref[1:], strict=True):
        assert _rel_err(a, r) < 1e-5


def test_torch_fallback_chunk_sizes(make_qkv):
    q, k, v = make_qkv(1, 2, 50, 8, 6, torch.float64)
    g = torch.randn_like(v)
    ref = _grads(causal_product_reference, q, k, v, g)
    for chunk in (1, 13, 64):
        assert _rel_err(torch_forward(q, k, v, chunk), ref[0]) < 1e-12
        for a, r in zip(torch_backward(q, k, v, g, chunk), ref[1:], strict=True):
            assert _rel_err(a, r) < 1e-12


def test_non_contiguous_inputs(make_qkv):
    q, k, v = make_qkv(2, 3, 40, 16, 16, torch.float64)
    # (B, N, H, D) storage seen as (B, H, N, D): the layout AttentionLayer produces.
    qt, kt, vt = (x.transpose(1, 2).contiguous().transpose(1, 2) for x in (q, k, v))
    assert not qt.is_contiguous()
    g = torch.randn_like(v)[..., ::2]
    vs = vt[..., ::2]  # strided last dimension too
    ours = _grads(causal_product, qt, kt, vs, g)
    ref = _grads(causal_product_reference, q, k, v[..., ::2], g)
    for a, r in zip(ours, ref, strict=True):
        assert _rel_err(a, r) < 1e-12


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("backend", BACKENDS)
def test_half_precision_accumulates_in_float32(dtype, backend, make_qkv):
    q, k, v = make_qkv(2, 2, 300, 32, 32, positive=True)
    qh, kh, vh = q.to(dtype), k.to(dtype), v.to(dtype)
    out = causal_product(qh, kh, vh, backend=backend)
    assert out.dtype == dtype
    # Reference on the same rounded inputs: only the output rounding (2^-8 for bf16) remains.
    ref = causal_product_reference(qh.double(), kh.double(), vh.double())
    tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
    assert _rel_err(out, ref) < tol
    qh.requires_grad_()
    causal_product(qh, kh, vh, backend=backend).sum().backward()
    assert qh.grad.dtype == dtype and torch.isfinite(qh.grad).all()


def test_fallback_when_kernel_cannot_build(monkeypatch, make_qkv):
    monkeypatch.setattr(_cpu, "_state", {})

    def no_compiler(verbose):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(_cpu, "_build", no_compiler)
    q, k, v = make_qkv(1, 2, 30, 4, 4, torch.float64)
    with pytest.warns(RuntimeWarning, match="kernels could not be built .no C.. compiler.*slower"):
        out = causal_product(q, k, v)
    assert _rel_err(out, causal_product_reference(q, k, v)) < 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        causal_product(q, k, v)
    with pytest.raises(RuntimeError, match="could not be loaded"):
        causal_product(q, k, v, backend="cpu")


def test_bad_inputs(make_qkv):
    q, k, v = make_qkv(2, 2, 8, 4, 3)
    with pytest.raises(ValueError, match="q must have 4 dimensions"):
        causal_product(q[0], k, v)
    with pytest.raises(ValueError, match="k has feature size"):
        causal_product(q, k[..., :3], v)
    with pytest.raises(ValueError, match="v has shape"):
        causal_product(q, k, v[:, :, :5])
    with pytest.raises(ValueError, match="causal attention needs them equal"):
        causal_product(q[:, :, :5], k, v)
    with pytest.raises(ValueError, match="k has batch/heads"):
        causal_product(q, k[:1], v[:1])
    with pytest.raises(TypeError, match="v has dtype"):
        causal_product(q, k, v.double())
    with pytest.raises(TypeError, match="q has dtype torch.int64"):
        causal_product(q.long(), k.long(), v.long())
    with pytest.raises(TypeError, match="k must be a torch.Tensor"):
        causal_product(q, k.numpy(), v)
    with pytest.raises(ValueError, match="empty input"):
        causal_product(q[:, :, :0], k[:, :, :0], v[:, :, :0])
    with pytest.raises(ValueError, match="backend must be one of"):
        causal_product(q, k, v, backend="gpu")
    with pytest.raises(ValueError, match="inputs are on cpu"):
        causal_product(q, k, v, backend="cuda")
    with pytest.raises(ValueError, match="move them to one device"):
        causal_product(q, k, v.to("meta"))


def test_kernel_dimension_limits_are_value_errors(monkeypatch, make_qkv):
    kernel = _cpu.load_cpu_kernel()
    monkeypatch.setattr(type(kernel), "MAX_D", 8, raising=False)
    q, k, v = make_qkv(1, 1, 4, 16, 4)
    with pytest.raises(ValueError, match="D=16 exceeds"):
        causal_product(q, k, v, backend="cpu")


def test_kernel_equals_recurrent_stepping(make_qkv):
    """The RNN form: S_i = S_{i-1} + k_i v_i^T, out_i = q_i^T S_i."""
    q, k, v = make_qkv(2, 2, 45, 6, 7, torch.float64)
    state = torch.zeros(2, 2, 6, 7, dtype=torch.float64)
    steps = []
    for i in range(45):
        state = state + k[:, :, i, :, None] * v[:, :, i, None, :]
        steps.append((q[:, :, i, None, :] @ state).squeeze(-2))
    stepped = torch.stack(steps, dim=2)
    for backend in BACKENDS:
        assert _rel_err(causal_product(q, k, v, backend=backend), stepped) < 1e-12
    assert _rel_err(causal_product_reference(q, k, v), stepped) < 1e-12


def test_unsupported_dtype_falls_back_or_raises(monkeypatch, make_qkv):
    kernel = _cpu.load_cpu_kernel()
    monkeypatch.setattr(type(kernel), "SUPPORTED_DTYPES", (torch.float32,))
    q, k, v = make_qkv(1, 1, 9, 4, 4, torch.float64)
    out = causal_product(q, k, v)  # auto: the PyTorch fallback handles float64
    assert _rel_err(out, causal_product_reference(q, k, v)) < 1e-12
    with pytest.raises(TypeError, match="does not support dtype torch.float64"):
        causal_product(q, k, v, backend="cpu")
