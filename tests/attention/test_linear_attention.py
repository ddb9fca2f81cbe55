"""linear_attention (parallel and recurrent forms) against a direct O(N^2) formula."""

import pytest
import torch

from asr.attention import (
    FavorFeatureMap,
    RecurrentState,
    available_feature_maps,
    linear_attention,
    linear_attention_step,
    linear_self_attention,
    make_feature_map,
    register_feature_map,
)
from asr.attention.feature_maps import EluFeatureMap


def manual_linear_attention(q, k, v, phi, causal, mask=None, eps=1e-6):
    """sum_j phi(q_i).phi(k_j) v_j / (sum_j phi(q_i).phi(k_j) + eps), written out in float64."""
    fq, fk = phi(q.double()), phi(k.double())
    weights = fq @ fk.transpose(-1, -2)  # (B, H, N, N)
    if causal:
        weights = weights.tril()
    if mask is not None:
        weights = weights.masked_fill(mask[:, None, None, :], 0.0)
    return (weights @ v.double()) / (weights.sum(-1, keepdim=True) + eps)


def _rel_err(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", ["elu", "relu"])
@pytest.mark.parametrize(("n", "d", "m"), [(1, 4, 4), (37, 16, 8), (130, 8, 64)])
def test_matches_manual_formula(causal, name, n, d, m, make_qkv):
    q, k, v = make_qkv(2, 3, n, d, m, torch.float64)
    phi = make_feature_map(name, d)
    out = linear_attention(q, k, v, causal=causal, feature_map=name)
    assert out.shape == (2, 3, n, m) and out.dtype == torch.float64
    assert _rel_err(out, manual_linear_attention(q, k, v, phi, causal)) < 1e-10


def test_non_causal_cross_attention_lengths(make_qkv):
    q = torch.randn(1, 2, 5, 8)
    _, k, v = make_qkv(1, 2, 9, 8, 3)
    out = linear_attention(q, k, v, causal=False)
    ref = manual_linear_attention(q, k, v, EluFeatureMap(8), causal=False)
    assert out.shape == (1, 2, 5, 3) and _rel_err(out, ref) < 1e-5


@pytest.mark.parametrize("causal", [False, True])
def test_padding_invariance(causal):
    """Each utterance's output (at its real frames) equals running it alone."""
    lengths = [23, 9, 17]
    b, h, n, d, m = len(lengths), 4, max(lengths), 16, 16
    q, k, v = torch.randn(b, h, n, d), torch.randn(b, h, n, d), torch.randn(b, h, n, m)
    # Garbage in the padded frames must not leak into real frames.
    mask = torch.arange(n)[None, :] >= torch.tensor(lengths)[:, None]
    q, k, v = (x.masked_fill(mask[:, None, :, None], 1e3) for x in (q, k, v))
    batched = linear_attention(q, k, v, causal=causal, key_padding_mask=mask)
    for i, length in enumerate(lengths):
        alone = linear_attention(
            q[i : i + 1, :, :length],
            k[i : i + 1, :, :length],
            v[i : i + 1, :, :length],
            causal=causal,
        )
        assert _rel_err(batched[i : i + 1, :, :length], alone) < 1e-5


def test_mask_matches_manual_formula(make_qkv):
    q, k, v = make_qkv(2, 2, 12, 8, 8, torch.float64)
    mask = torch.rand(2, 12) < 0.3
    out = linear_attention(q, k, v, causal=False, key_padding_mask=mask)
    ref = manual_linear_attention(q, k, v, EluFeatureMap(8), causal=False, mask=mask)
    assert _rel_err(out, ref) < 1e-10


@pytest.mark.parametrize("name", ["elu", "relu", "favor"])
def test_recurrent_steps_equal_parallel_causal(name, make_qkv):
    b, h, n, d, m = 2, 3, 29, 8, 5
    q, k, v = make_qkv(b, h, n, d, m, torch.float64)
    phi = make_feature_map(name, d).double()
    parallel = linear_attention(q, k, v, causal=True, feature_map=phi)
    state = None
    for t in range(n):
        out_t, new_state = linear_attention_step(
            q[:, :, t], k[:, :, t], v[:, :, t], state, feature_map=phi
        )
        assert isinstance(new_state, RecurrentState)
        assert _rel_err(out_t, parallel[:, :, t]) < 1e-10, f"step {t}"
        state = new_state
    assert state.S.shape == (b, h, phi.n_features, m) and state.z.shape == (b, h, phi.n_features)


def test_step_does_not_mutate_state(make_qkv):
    q, k, v = make_qkv(1, 2, 2, 4, 4)
    _, s1 = linear_attention_step(q[:, :, 0], k[:, :, 0], v[:, :, 0], None)
    before = s1.S.clone()
    linear_attention_step(q[:, :, 1], k[:, :, 1], v[:, :, 1], s1)
    assert torch.equal(before, s1.S)


def test_bfloat16_close_to_float32(make_qkv):
    q, k, v = make_qkv(2, 2, 200, 32, 32)
    ref = linear_attention(q, k, v, causal=True)
    out = linear_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), causal=True)
    assert out.dtype == torch.bfloat16
    # Inputs rounded to bf16 (8 mantissa bits) plus output rounding; sums run in float32.
    assert _rel_err(out, ref) < 3e-2


def test_gradients_flow_through_causal_path(make_qkv):
    q, k, v = (x.requires_grad_() for x in make_qkv(1, 1, 6, 3, 2, torch.float64))
    assert torch.autograd.gradcheck(
        lambda a, b, c: linear_attention(a, b, c, causal=True), (q, k, v)
    )


def test_registry():
    assert {"elu", "relu", "favor"} <= set(available_feature_maps())
    with pytest.raises(ValueError, match="unknown feature_map 'nope'"):
        make_feature_map("nope", 8)
    with pytest.raises(ValueError, match="already registered"):
        register_feature_map("elu", EluFeatureMap)
    assert (make_feature_map("elu", 4)(torch.randn(10, 4)) > 0).all()
    assert (make_feature_map("relu", 4)(torch.randn(10, 4)) >= 0).all()


def test_favor_features_positive_redraw_and_softmax_estimate():
    d = 16
    fm = FavorFeatureMap(d, n_features=2048, redraw_interval=2)
    q, k = torch.randn(6, d) * 0.5, torch.randn(6, d) * 0.5
    fq, fk = fm.features(q, is_query=False), fm.features(k, is_query=False)
    assert fq.shape == (6, 2048) and (fq > 0).all()
    # E[phi(q).phi(k)] = exp(q.k / sqrt(d)); with m=2048 features the estimate is within ~10%.
    estimate, exact = fq @ fk.T, torch.exp(q @ k.T / d**0.5)
    assert ((estimate - exact).abs() / exact).median() < 0.1
    before = fm.projection.clone()
    fm.on_training_step()
    assert torch.equal(before, fm.projection)
    fm.on_training_step()  # second step hits redraw_interval=2
    assert not torch.equal(before, fm.projection)
    assert fm.projection.shape == before.shape


def test_favor_orthogonal_blocks():
    fm = FavorFeatureMap(8, n_features=8, redraw_interval=None)
    w = fm.projection / fm.projection.norm(dim=1, keepdim=True)
    assert torch.allclose(w @ w.T, torch.eye(8), atol=1e-5)


def test_bad_inputs(make_qkv):
    q, k, v = make_qkv(2, 2, 6, 4, 4)
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(2, 5\)"):
        linear_attention(
            q, k, v, causal=False, key_padding_mask=torch.zeros(2, 5, dtype=torch.bool)
        )
    with pytest.raises(TypeError, match="key_padding_mask must have dtype torch.bool"):
        linear_attention(q, k, v, causal=False, key_padding_mask=torch.zeros(2, 6))
    with pytest.raises(ValueError, match="eps must be > 0"):
        linear_attention(q, k, v, causal=False, eps=0.0)
    with pytest.raises(ValueError, match="causal attention needs them equal"):
        linear_attention(q[:, :, :3], k, v, causal=True)
    with pytest.raises(TypeError, match="feature_map must be"):
        linear_attention(q, k, v, causal=False, feature_map=3)
    with pytest.raises(ValueError, match="state has S"):
        linear_attention_step(q[:, :, 0], k[:, :, 0], v[:, :, 0], RecurrentState.zeros(2, 2, 4, 5))
    with pytest.raises(ValueError, match="q_t must have 3 dimensions"):
        linear_attention_step(q, k[:, :, 0], v[:, :, 0], None)


def test_elu_feature_map_equals_elu_plus_one():
    x = torch.cat([torch.randn(500, dtype=torch.float64) * 5, torch.zeros(3, dtype=torch.float64)])
    x.requires_grad_()
    y = EluFeatureMap(1)(x)
    want = torch.nn.functional.elu(x) + 1
    assert torch.allclose(y, want, rtol=1e-12, atol=1e-15)
    (g,) = torch.autograd.grad(y.sum(), x)
    (g_want,) = torch.autograd.grad(want.sum(), x)
    assert torch.allclose(g, g_want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("feature_map", ["elu", "relu"])
@pytest.mark.parametrize("causal", [False, True])
def test_packed_self_attention_equals_linear_attention(causal, feature_map):
    """q, k, v packed (B, N, 3, H, D): the fused path (elu) and the composite one (relu) give
    linear_attention's output over the three views, and gradients to the packed tensor."""
    b, n, h, d = 2, 29, 3, 8
    qkv = torch.randn(b, n, 3, h, d, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(n)[None, :] >= torch.tensor([n, 17])[:, None]
    out = linear_self_attention(qkv, causal=causal, feature_map=feature_map, key_padding_mask=mask)
    views = [t.transpose(1, 2) for t in qkv.unbind(2)]
    want = linear_attention(
        *views, causal=causal, feature_map=feature_map, key_padding_mask=mask
    ).transpose(1, 2)
    assert out.shape == (b, n, h, d) and _rel_err(out, want) < 1e-10
    g = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, qkv, g)
    (grad_want,) = torch.autograd.grad(want, qkv, g)
    assert _rel_err(grad, grad_want) < 1e-10
