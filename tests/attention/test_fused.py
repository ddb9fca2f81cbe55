"""Fused elu+1 linear attention (CPU kernel) against the float64 formula and the composite path."""

import pytest
import torch

import asr.attention.fused as fused_module
from asr.attention import AttentionLayer, _cpu
from asr.attention.fused import (
    fused_linear_attention,
    fused_linear_attention_reference,
    fused_self_attention,
)
from asr.attention.linear import composite_linear_attention

SHAPES = [  # (B, H, N, D, M): N=1, odd sizes, chunk and block edges, D != M
    (1, 1, 1, 1, 1),
    (2, 3, 37, 8, 5),
    (2, 2, 130, 64, 64),
    (1, 1, 65, 16, 70),
    (3, 1, 200, 33, 7),
]


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest error relative to the reference's largest value, or to 1 (the scale of the O(1)
    random inputs) when that is smaller: a gradient that cancels to ~eps (N=1) is compared at
    the scale of its terms, not at the scale of its rounding noise."""
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1.0)).item()


def _inputs(b, h, n, d, m, dtype=torch.float64, n_q=None):
    q = torch.randn(b, h, n_q or n, d, dtype=dtype)
    return q, torch.randn(b, h, n, d, dtype=dtype), torch.randn(b, h, n, m, dtype=dtype)


def _padding_mask(b: int, n: int) -> torch.Tensor:
    lengths = torch.randint(0, n + 1, (b,))
    lengths[0] = n  # one full row, the rest random (0 = everything padded)
    return torch.arange(n)[None, :] >= lengths[:, None]


def _with_grads(fn, q, k, v, g):
    q, k, v = (x.detach().clone().requires_grad_() for x in (q, k, v))
    out = fn(q, k, v)
    return (out, *torch.autograd.grad(out, (q, k, v), g))


def _fused(causal, mask=None):
    def run(q, k, v):
        out = fused_linear_attention(q, k, v, causal=causal, key_padding_mask=mask)
        assert out is not None, "the CPU kernel should serve CPU tensors"
        return out

    return run


def _reference(causal, mask=None):
    return lambda q, k, v: fused_linear_attention_reference(
        q, k, v, causal=causal, key_padding_mask=mask
    )


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Small chunks/blocks so that the test shapes cross several of them."""
    monkeypatch.setattr(_cpu, "CONFIG", _cpu.CpuKernelConfig(layer_chunk=16, layer_block=24))


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("b", "h", "n", "d", "m"), SHAPES)
def test_float64_matches_reference_with_grads(causal, masked, b, h, n, d, m):
    q, k, v = _inputs(b, h, n, d, m)
    mask = _padding_mask(b, n) if masked else None
    g = torch.randn(b, h, n, m, dtype=torch.float64)
    ours = _with_grads(_fused(causal, mask), q, k, v, g)
    ref = _with_grads(_reference(causal, mask), q, k, v, g)
    for name, a, r in zip(("out", "grad_q", "grad_k", "grad_v"), ours, ref, strict=True):
        assert a.shape == r.shape and a.dtype == torch.float64, name
        assert _rel_err(a, r) < 1e-10, name


@pytest.mark.parametrize("masked", [False, True])
def test_cross_attention_lengths(masked):
    q, k, v = _inputs(2, 2, 57, 12, 9, n_q=23)
    mask = _padding_mask(2, 57) if masked else None
    g = torch.randn(2, 2, 23, 9, dtype=torch.float64)
    ours = _with_grads(_fused(False, mask), q, k, v, g)
    ref = _with_grads(_reference(False, mask), q, k, v, g)
    for a, r in zip(ours, ref, strict=True):
        assert _rel_err(a, r) < 1e-5


@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck_float64(causal, monkeypatch):
    monkeypatch.setattr(_cpu, "CONFIG", _cpu.CpuKernelConfig(layer_chunk=3, layer_block=4))
    q, k, v = (x.requires_grad_() for x in _inputs(2, 2, 9, 3, 4))
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[1, 6:] = True
    assert torch.autograd.gradcheck(_fused(causal, mask), (q, k, v))


@pytest.mark.parametrize("causal", [False, True])
def test_float32_close_to_reference(causal):
    q, k, v = _inputs(2, 4, 300, 64, 64, torch.float32)
    mask = _padding_mask(2, 300)
    out = _fused(causal, mask)(q, k, v)
    assert out.dtype == torch.float32
    assert _rel_err(out, _reference(causal, mask)(q.double(), k.double(), v.double())) < 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("causal", [False, True])
def test_half_inputs_accumulate_in_float32(dtype, causal):
    q, k, v = _inputs(2, 2, 300, 32, 32, dtype)
    out = _fused(causal)(q, k, v)
    assert out.dtype == dtype
    # Reference on the same rounded inputs: only the output rounding (2^-8 for bf16) remains.
    ref = _reference(causal)(q.double(), k.double(), v.double())
    assert _rel_err(out, ref) < (1e-2 if dtype == torch.bfloat16 else 2e-3)
    g = torch.randn_like(out)
    grads = _with_grads(_fused(causal), q, k, v, g)[1:]
    want = _with_grads(_reference(causal), q.double(), k.double(), v.double(), g.double())[1:]
    for a, r in zip(grads, want, strict=True):
        assert a.dtype == dtype and torch.isfinite(a).all()
        assert _rel_err(a, r) < (3e-2 if dtype == torch.bfloat16 else 5e-3)


@pytest.mark.parametrize("causal", [False, True])
def test_bf16_rows_round_to_nearest_even(causal):
    """With q = k = 0 every weight is 1, so output row 1 is exactly (v_0 + v_1) / 2 in float32 (for
    bf16 v_0, v_1, with a normaliser of 2 + eps == 2 in float32), and columns built as ties fall
    halfway between two bf16 values. The kernel's row loads and stores must round that the way
    torch rounds float32 to bf16 (to nearest, ties to even), bit for bit."""
    m = 70  # not a multiple of the vector width: the loops' tails convert too
    q = torch.zeros(1, 1, 2, 64, dtype=torch.bfloat16)
    v = (torch.randn(1, 1, 2, m) * 4).to(torch.bfloat16)
    # Columns 0-15: v_1 is v_0's next bf16 value, so the mean is an exact tie; v_0 odd in 0-7
    # (the tie rounds up to v_1), even in 8-15 (down to v_0). The rest stay random.
    bits0 = v[..., 0, :16].view(torch.int16)
    bits0[..., :8] |= 1
    bits0[..., 8:] &= ~1
    v[..., 1, :16] = (bits0 + 1).view(torch.bfloat16)
    out = _fused(causal)(q, q.clone(), v)
    mean = (v[..., 0, :].float() + v[..., 1, :].float()) / 2
    want = mean.to(torch.bfloat16).view(torch.int16)
    assert torch.equal(out[..., 1, :].view(torch.int16), want)
    first = v[..., 0, :] if causal else mean.to(torch.bfloat16)  # causal row 0 sees key 0 alone
    assert torch.equal(out[..., 0, :].view(torch.int16), first.view(torch.int16))


@pytest.mark.parametrize("causal", [False, True])
def test_projection_layout_needs_no_copy(causal):
    """(B, N, H, D) storage seen as (B, H, N, D), as AttentionLayer produces, reads in place."""
    b, n, h, d = 2, 41, 3, 8
    x = torch.randn(b, n, 3 * h * d, dtype=torch.float64)
    q, k, v = (t.view(b, n, h, d).transpose(1, 2) for t in x.split(h * d, dim=-1))
    assert not q.is_contiguous()
    ours = _fused(causal)(q, k, v)
    ref = _reference(causal)(q, k, v)
    assert _rel_err(ours, ref) < 1e-10
    assert ours.transpose(1, 2).is_contiguous()  # (B, N, H, M) storage: reshape is free


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("b", "n", "h", "d"), [(1, 1, 1, 1), (2, 37, 3, 8), (3, 130, 2, 33)])
def test_packed_self_attention_equals_separate_inputs(b, n, h, d, causal, masked, dtype):
    """q, k, v packed (B, N, 3, H, D): the same output as given apart, and the same gradients,
    written straight into one packed gradient."""
    mask = _padding_mask(b, n) if masked else None
    qkv = torch.randn(b, n, 3, h, d, dtype=dtype)
    g = torch.randn(b, n, h, d, dtype=dtype)
    packed = qkv.clone().requires_grad_()
    out = fused_self_attention(packed, causal=causal, key_padding_mask=mask)
    assert out is not None and out.shape == (b, n, h, d)
    (grad_packed,) = torch.autograd.grad(out, packed, g)
    apart = [t.transpose(1, 2) for t in qkv.unbind(2)]
    want, *grads = _with_grads(_fused(causal, mask), *apart, g.transpose(1, 2))
    assert torch.equal(out, want.transpose(1, 2))
    for i, grad in enumerate(grads):
        assert torch.equal(grad_packed[:, :, i], grad.transpose(1, 2))
    if dtype == torch.float64:
        ref = _reference(causal, mask)(*apart)
        assert _rel_err(out.transpose(1, 2), ref) < 1e-10


@pytest.mark.parametrize("causal", [False, True])
def test_padding_garbage_never_reaches_real_frames(causal):
    lengths = [23, 9, 17]
    b, h, n, d = len(lengths), 2, max(lengths), 8
    q, k, v = _inputs(b, h, n, d, d, torch.float32)
    mask = torch.arange(n)[None, :] >= torch.tensor(lengths)[:, None]
    q, k, v = (x.masked_fill(mask[:, None, :, None], float("nan")) for x in (q, k, v))
    batched = _fused(causal, mask)(q, k, v)
    for i, length in enumerate(lengths):
        alone = _fused(causal)(*(x[i : i + 1, :, :length] for x in (q, k, v)))
        assert _rel_err(batched[i : i + 1, :, :length], alone) < 1e-5


@pytest.mark.parametrize("kind", ["linear", "causal-linear"])
def test_layer_equals_composite_path(kind, monkeypatch):
    """The fused layer changes no result: output and every gradient match the composite form."""
    layer = AttentionLayer(64, 4, kind=kind)
    x = torch.randn(2, 150, 64)
    mask = torch.zeros(2, 150, dtype=torch.bool)
    mask[1, 111:] = True
    g = torch.randn(2, 150, 64)

    def run():
        layer.zero_grad()
        xi = x.clone().requires_grad_()
        y = layer(xi, key_padding_mask=mask)
        y.backward(g)
        return [y, xi.grad, *(p.grad.clone() for p in layer.parameters())]

    fused = run()
    monkeypatch.setattr(fused_module, "fused_kernel_for", lambda device: None)
    composite = run()
    for a, r in zip(fused, composite, strict=True):
        assert _rel_err(a, r) < 2e-5


def test_composite_is_the_fallback(monkeypatch):
    monkeypatch.setattr(fused_module, "fused_kernel_for", lambda device: None)
    q, k, v = _inputs(1, 2, 10, 4, 4)
    assert fused_linear_attention(q, k, v, causal=True) is None
    want = composite_linear_attention(q, k, v, causal=True)
    assert _rel_err(want, _reference(True)(q, k, v)) < 1e-10


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"qkv must be \(B, N, 3, H, D\)"):
        fused_self_attention(torch.randn(2, 6, 2, 4, 4), causal=False)
    q, k, v = _inputs(2, 2, 6, 4, 4)
    with pytest.raises(ValueError, match="eps must be > 0"):
        fused_linear_attention(q, k, v, causal=False, eps=0.0)
    with pytest.raises(ValueError, match="causal attention needs them equal"):
        fused_linear_attention(q[:, :, :3], k, v, causal=True)
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(2, 5\)"):
        fused_linear_attention(
            q, k, v, causal=False, key_padding_mask=torch.zeros(2, 5, dtype=torch.bool)
        )


def test_training_steps_match_composite(monkeypatch):
    """A few AdamW steps of a small CTC model follow the same loss trajectory either way."""
    from asr.models import CTCModel, EncoderConfig

    def train(steps: int = 6) -> list[float]:
        torch.manual_seed(3)
        cfg = EncoderConfig.from_dict(
            dict(
                input_dim=80,
                subsampling=4,
                conv_channels=8,
                d_model=32,
                n_layers=2,
                n_heads=4,
                d_ff=64,
                dropout=0.0,
                attention="linear",
                positional="conv",
            )
        )
        model = CTCModel(cfg, vocab_size=12)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        feats = torch.randn(3, 160, 80)
        lengths = torch.tensor([160, 131, 97])
        targets = torch.randint(1, 12, (3, 9))
        losses = []
        for _ in range(steps):
            log_probs, out_lengths = model(feats, lengths)
            loss = torch.nn.functional.ctc_loss(
                log_probs.transpose(0, 1), targets, out_lengths, torch.tensor([9, 7, 5])
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    fused = train()
    monkeypatch.setattr(fused_module, "fused_kernel_for", lambda device: None)
    composite = train()
    print("losses fused", fused, "composite", composite)
    for a, b in zip(fused, composite, strict=True):
        assert abs(a - b) <= 1e-5 * abs(b)


@pytest.fixture
def blas_only():
    """Every GEMM through BLAS instead of the AVX-512 tiles (both paths must agree)."""
    ext = _cpu.load_cpu_kernel().extension
    ext.set_blas_only(True)
    yield ext
    ext.set_blas_only(False)


@pytest.mark.parametrize("causal", [False, True])
def test_blas_path_matches_reference(causal, blas_only):
    assert not blas_only.uses_avx512_gemm()
    q, k, v = _inputs(2, 2, 77, 24, 40, torch.float32)
    mask = _padding_mask(2, 77)
    g = torch.randn(2, 2, 77, 40)
    ours = _with_grads(_fused(causal, mask), q, k, v, g)
    ref = _with_grads(_reference(causal, mask), q.double(), k.double(), v.double(), g.double())
    for a, r in zip(ours, ref, strict=True):
        assert _rel_err(a, r) < 1e-5


@pytest.mark.parametrize("masked", [False, True])
def test_cuda_noncausal_backward_math_on_cpu_tensors(masked):
    """The CUDA layer's non-causal backward is PyTorch arithmetic around cuBLAS: run on CPU
    tensors it gives the CPU kernel's gradients, also when written into a packed buffer."""
    from asr.attention import _cuda

    b, n, h, d = 2, 45, 3, 8
    mask = _padding_mask(b, n) if masked else None
    qkv = torch.randn(b, n, 3, h, d)  # float32: the CUDA kernels' widest type
    g = torch.randn(b, n, h, d)
    q, k, v = qkv.unbind(2)
    kernel = _cpu.load_cpu_kernel()
    saved = tuple(kernel.layer_forward(q, k, v, mask, False, 1e-6))
    want = kernel.layer_backward(q, k, v, mask, saved, g, False)
    packed = torch.empty_like(qkv)
    got = _cuda.layer_backward(q, k, v, mask, saved, g, False, into=packed.unbind(2))
    for i, (a, r) in enumerate(zip(got, want, strict=True)):
        assert a.data_ptr() == packed[:, :, i].data_ptr()
        assert _rel_err(a, r) < 1e-5
