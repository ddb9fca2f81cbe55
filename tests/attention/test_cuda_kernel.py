"""CUDA kernels (``asr/attention/csrc/*cuda*``) through ``asr.attention._cuda``.

Three levels, so that machines without a GPU still test what they can:
- argument validation and ``is_available`` (any machine);
- ``nvcc``: a true compile + link + import of the extension into a fresh build directory;
- ``slow``: the device code run on the CPU by ``cuda_kernel_emulation.cpp`` (g++ + std::thread);
- ``cuda``: forward and backward on a GPU against a float64 reference.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from asr.attention import _cuda

EMULATION_SOURCE = Path(__file__).with_name("cuda_kernel_emulation.cpp")
HAS_GPU = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU (none visible to torch)")

# Relative error (max |ours - ref| / max |ref|) allowed per input dtype: float32 accumulation
# everywhere, so low-precision inputs are limited by rounding the output (2^-11, 2^-8).
TOLERANCE = {torch.float32: 2e-5, torch.float16: 3e-3, torch.bfloat16: 1.6e-2}

SHAPES = [  # (B, H, N, D, M): N=1, odd N, chunk edges (64), several D/M tiles, D != M
    (1, 1, 1, 1, 1),
    (2, 3, 1, 16, 16),
    (1, 2, 7, 16, 16),
    (2, 2, 63, 64, 64),
    (1, 1, 64, 64, 64),
    (2, 1, 65, 64, 32),
    (1, 1, 129, 128, 16),
    (1, 2, 200, 16, 128),
    (1, 1, 131, 256, 256),
    (1, 1, 97, 1, 256),
    (1, 1, 97, 256, 1),
    (2, 2, 300, 64, 64),
]


def reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Masked-matmul causal product and its autograd gradients, float64 on the CPU."""
    q, k, v = (x.detach().cpu().double().requires_grad_() for x in (q, k, v))
    out = (q @ k.transpose(-1, -2)).tril() @ v
    grads = torch.autograd.grad(out, (q, k, v), g.detach().cpu().double())
    return (out.detach(), *grads)


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    diff = (ours.detach().cpu().double() - ref).abs().max()
    return (diff / ref.abs().max().clamp_min(1e-30)).item()


def rand(*shape: int, dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    # Scaled so that float16 sums over N = 300, D = 256 stay far from overflow.
    return (0.5 * torch.randn(*shape)).to(dtype=dtype, device=device)


def check_against_reference(q, k, v, g, dtype: torch.dtype) -> None:
    out = _cuda.forward(q, k, v)
    grads = _cuda.backward(q, k, v, g)
    expected = reference(q, k, v, g)
    for name, ours, ref, like in zip(
        ("out", "grad_q", "grad_k", "grad_v"), (out, *grads), expected, (v, q, k, v), strict=True
    ):
        assert ours.dtype == dtype, f"{name} dtype {ours.dtype}"
        assert ours.shape == like.shape, f"{name} shape {tuple(ours.shape)}"
        assert ours.is_cuda
        err = rel_err(ours, ref)
        assert err <= TOLERANCE[dtype], f"{name}: relative error {err:.3g} > {TOLERANCE[dtype]}"


# ---------------------------------------------------------------- any machine


def test_is_available_matches_gpu_presence():
    # Without a GPU it must answer False quickly (no build); with one the build must succeed.
    assert _cuda.is_available() == HAS_GPU


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: (rand(1, 1, 4, 8), rand(1, 1, 4, 8), "v"), TypeError, "v must be a torch.Tensor"),
        (lambda: (rand(1, 4, 8), rand(1, 1, 4, 8), rand(1, 1, 4, 8)), ValueError, "q must be 4-D"),
        (
            lambda: (rand(1, 1, 4, 8, dtype=torch.float64),) * 3,
            TypeError,
            "q has dtype torch.float64",
        ),
        (
            lambda: (rand(1, 1, 4, 8), rand(1, 1, 4, 8, dtype=torch.float16), rand(1, 1, 4, 8)),
            TypeError,
            "k has dtype torch.float16 but q",
        ),
        (lambda: (rand(1, 1, 4, 8), rand(1, 1, 4, 9), rand(1, 1, 4, 8)), ValueError, "k has shape"),
        (lambda: (rand(1, 1, 4, 8), rand(1, 1, 4, 8), rand(1, 1, 5, 8)), ValueError, "v has shape"),
        (lambda: (rand(1, 1, 0, 8), rand(1, 1, 0, 8), rand(1, 1, 0, 8)), ValueError, "empty"),
        (
            lambda: (
                rand(1, 1, 2, _cuda.MAX_D + 1),
                rand(1, 1, 2, _cuda.MAX_D + 1),
                rand(1, 1, 2, 4),
            ),
            ValueError,
            "MAX_D",
        ),
        (
            lambda: (rand(1, 1, 2, 4), rand(1, 1, 2, 4), rand(1, 1, 2, _cuda.MAX_M + 1)),
            ValueError,
            "MAX_M",
        ),
        (lambda: (rand(1, 1, 4, 8),) * 3, ValueError, "must be CUDA tensors"),
    ],
)
def test_forward_rejects_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        _cuda.forward(*make())


def test_backward_checks_grad_out_shape():
    q, k, v = rand(1, 2, 5, 8), rand(1, 2, 5, 8), rand(1, 2, 5, 3)
    with pytest.raises(ValueError, match="grad_out has shape"):
        _cuda.backward(q, k, v, rand(1, 2, 5, 8))


def test_missing_toolkit_is_a_clear_error(tmp_path):
    with pytest.raises(_cuda.CudaBuildError, match="set CUDA_HOME"):
        _cuda.find_cuda_home([tmp_path, tmp_path / "nope"])


def test_cuda_home_is_searched_first(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nvcc").write_text("#!/bin/sh\n")
    (tmp_path / "lib64").mkdir()
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    assert _cuda.find_cuda_home() == tmp_path
    (tmp_path / "bin" / "nvcc").unlink()  # a root without bin/nvcc is passed over
    assert _cuda.find_cuda_home([tmp_path, *_cuda.toolkit_candidates()]) != tmp_path


# ---------------------------------------------------------------- nvcc (compile only)


@pytest.mark.nvcc
def test_extension_compiles_with_nvcc(tmp_path, monkeypatch):
    try:
        home = _cuda.find_cuda_home()
    except _cuda.CudaBuildError as exc:
        pytest.skip(f"no CUDA toolkit: {exc}")
    from torch.utils.cpp_extension import is_ninja_available

    if not is_ninja_available():
        pytest.skip(
            "torch.utils.cpp_extension needs ninja (pip install ninja or apt install ninja-build)"
        )
    if not os.environ.get("TORCH_CUDA_ARCH_LIST"):
        monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", _cuda.DEFAULT_ARCH_LIST)
    module = _cuda.build_extension(build_directory=tmp_path)
    assert {"forward", "backward", "product", "layer_forward"} <= set(dir(module)), home
    assert list(tmp_path.glob("*.so")), "no shared library in the build directory"


# ---------------------------------------------------------------- device code on the CPU


@pytest.mark.slow
def test_device_code_in_cpu_emulation(tmp_path, fresh_seed):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("needs g++ to compile the CPU emulation of the CUDA kernels")
    binary = tmp_path / "emulate"
    subprocess.run(
        [
            gxx,
            "-std=c++20",
            "-O2",
            "-pthread",
            "-fno-strict-aliasing",  # float4 reads of float arrays, as in CUDA
            "-fsanitize=alignment",  # misaligned float4 reads abort instead of passing silently
            "-fno-sanitize-recover",
            f"-I{_cuda.KERNEL_DIR}",
            str(EMULATION_SOURCE),
            "-o",
            str(binary),
        ],
        check=True,
    )
    run = subprocess.run([str(binary), str(fresh_seed)], capture_output=True, text=True)
    assert run.returncode == 0 and "0 failures" in run.stdout, run.stdout + run.stderr


# ---------------------------------------------------------------- GPU


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize(("b", "h", "n", "d", "m"), SHAPES)
def test_float32_matches_reference(b, h, n, d, m):
    q, k = rand(b, h, n, d, device="cuda"), rand(b, h, n, d, device="cuda")
    v, g = rand(b, h, n, m, device="cuda"), rand(b, h, n, m, device="cuda")
    check_against_reference(q, k, v, g, torch.float32)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(("b", "h", "n", "d", "m"), [SHAPES[0], SHAPES[2], SHAPES[5], SHAPES[8]])
def test_half_precision_matches_reference(dtype, b, h, n, d, m):
    q, k = (
        rand(b, h, n, d, dtype=dtype, device="cuda"),
        rand(b, h, n, d, dtype=dtype, device="cuda"),
    )
    v, g = (
        rand(b, h, n, m, dtype=dtype, device="cuda"),
        rand(b, h, n, m, dtype=dtype, device="cuda"),
    )
    check_against_reference(q, k, v, g, dtype)


@pytest.mark.cuda
@needs_gpu
def test_long_sequence_matches_reference():
    # 64 chunks: the prefix state is carried across many chunk boundaries.
    q, k = rand(1, 2, 4096, 64, device="cuda"), rand(1, 2, 4096, 64, device="cuda")
    v, g = rand(1, 2, 4096, 64, device="cuda"), rand(1, 2, 4096, 64, device="cuda")
    check_against_reference(q, k, v, g, torch.float32)


@pytest.mark.cuda
@needs_gpu
def test_non_contiguous_inputs():
    b, h, n, d, m = 2, 3, 70, 32, 48
    q = rand(b, n, h, d, device="cuda").transpose(1, 2)
    k = rand(b, n, h, d, device="cuda").transpose(1, 2)
    v = rand(b, h, m, n, device="cuda").transpose(2, 3)
    g = rand(b, h, n, 2 * m, device="cuda")[..., ::2]
    assert not any(x.is_contiguous() for x in (q, k, v, g))
    check_against_reference(q, k, v, g, torch.float32)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("reverse", [False, True])
def test_product_primitive_both_directions(reverse):
    # out[i] = sum over j <= i (j >= i with reverse) of (a_i . b_j) c_j
    a, b, c = (rand(2, 1, 77, size, device="cuda") for size in (24, 24, 40))
    ours = _cuda.build_extension().product(a, b, c, reverse)
    scores = a.double().cpu() @ b.double().cpu().transpose(-1, -2)
    masked = scores.triu() if reverse else scores.tril()
    assert rel_err(ours, masked @ c.double().cpu()) <= TOLERANCE[torch.float32]


@pytest.mark.cuda
@needs_gpu
def test_rejects_mixed_devices():
    q, k, v = rand(1, 1, 4, 8, device="cuda"), rand(1, 1, 4, 8), rand(1, 1, 4, 8, device="cuda")
    with pytest.raises(ValueError, match="k is on cpu"):
        _cuda.forward(q, k, v)


# ---------------------------------------------------------------- fused linear attention


def test_layer_forward_rejects_cpu_tensors():
    q = rand(1, 4, 2, 8)
    with pytest.raises(ValueError, match="q must be a CUDA tensor"):
        _cuda.layer_forward(q, q, q, None, False, 1e-6)


def fused_reference(q, k, v, mask, causal, g):
    """Float64 formula and its autograd gradients for (B, N, H, D) inputs, on the CPU."""
    from asr.attention.fused import fused_linear_attention_reference

    q, k, v = (x.detach().cpu().double().transpose(1, 2).requires_grad_() for x in (q, k, v))
    m = None if mask is None else mask.cpu()
    out = fused_linear_attention_reference(q, k, v, causal=causal, key_padding_mask=m)
    grads = torch.autograd.grad(out, (q, k, v), g.detach().cpu().double().transpose(1, 2))
    return [x.transpose(1, 2) for x in (out.detach(), *grads)]


FUSED_SHAPES = [(1, 1, 1, 1, 1), (2, 37, 3, 8, 5), (2, 130, 2, 64, 64), (1, 65, 1, 16, 70)]


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("b", "n", "h", "d", "m"), FUSED_SHAPES)
def test_fused_layer_matches_reference(dtype, masked, causal, b, n, h, d, m):
    q, k = (
        rand(b, n, h, d, dtype=dtype, device="cuda"),
        rand(b, n, h, d, dtype=dtype, device="cuda"),
    )
    v, g = (
        rand(b, n, h, m, dtype=dtype, device="cuda"),
        rand(b, n, h, m, dtype=dtype, device="cuda"),
    )
    mask = None
    if masked:
        mask = torch.arange(n, device="cuda")[None, :] >= torch.randint(
            0, n + 1, (b, 1), device="cuda"
        )
    saved = _cuda.layer_forward(q, k, v, mask, causal, 1e-6)
    grads = _cuda.layer_backward(q, k, v, mask, tuple(saved), g, causal)
    expected = fused_reference(q, k, v, mask, causal, g)
    # float32 output of a sum over thousands of terms; halves add their output rounding.
    tol = {torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 3e-2}[dtype]
    for name, ours, ref in zip(
        ("out", "grad_q", "grad_k", "grad_v"), (saved[0], *grads), expected, strict=True
    ):
        assert ours.dtype == dtype and ours.shape == ref.shape, name
        err = rel_err(ours, ref)
        assert err <= tol, f"{name}: relative error {err:.3g} > {tol}"


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("causal", [False, True])
def test_fused_layer_through_linear_attention(causal):
    from asr.attention import linear_attention
    from asr.attention.kernel import cuda_fused_kernel

    assert cuda_fused_kernel() is not None, "the fused CUDA kernel failed its self-check"
    q, k, v = (rand(2, 3, 200, 32, device="cuda").requires_grad_() for _ in range(3))
    out = linear_attention(q, k, v, causal=causal)
    out.sum().backward()
    from asr.attention.fused import fused_linear_attention_reference

    ref = fused_linear_attention_reference(q.double(), k.double(), v.double(), causal=causal)
    assert rel_err(out, ref.cpu()) <= 1e-4
    assert all(torch.isfinite(x.grad).all() for x in (q, k, v))
