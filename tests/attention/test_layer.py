"""AttentionLayer: every kind, padding, recurrent stepping, bad input."""

import pytest
import torch

from asr.attention import KINDS, AttentionLayer, RecurrentState, SoftmaxCache


@pytest.mark.parametrize("kind", KINDS)
def test_forward_shapes_and_gradients(kind):
    layer = AttentionLayer(32, 4, kind=kind)
    x = torch.randn(3, 17, 32, requires_grad=True)
    y = layer(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all() and layer.q_proj.weight.grad is not None


@pytest.mark.parametrize("kind", KINDS)
def test_padding_does_not_change_real_frames(kind):
    layer = AttentionLayer(16, 2, kind=kind).eval()
    lengths = [11, 4]
    x = torch.randn(2, 11, 16)
    mask = torch.arange(11)[None, :] >= torch.tensor(lengths)[:, None]
    x = x.masked_fill(mask[..., None], 50.0)
    y = layer(x, key_padding_mask=mask)
    for i, length in enumerate(lengths):
        alone = layer(x[i : i + 1, :length])
        assert torch.allclose(y[i : i + 1, :length], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kind", "feature_map"),
    [
        ("causal-linear", "elu"),
        ("causal-linear", "relu"),
        ("causal-linear", "favor"),
        ("causal-softmax", "elu"),
    ],
)
def test_step_equals_forward(kind, feature_map):
    layer = AttentionLayer(24, 3, kind=kind, feature_map=feature_map).double().eval()
    x = torch.randn(2, 13, 24, dtype=torch.float64)
    full = layer(x)
    state = None
    for t in range(13):
        y_t, state = layer.step(x[:, t], state)
        assert torch.allclose(y_t, full[:, t], atol=1e-10), f"step {t}"
    assert isinstance(state, RecurrentState if kind == "causal-linear" else SoftmaxCache)


def test_favor_redraws_only_in_training():
    layer = AttentionLayer(
        16, 2, kind="linear", feature_map="favor", feature_map_kwargs={"redraw_interval": 1}
    )
    before = layer.feature_map.projection.clone()
    layer.eval()(torch.randn(1, 5, 16))
    assert torch.equal(before, layer.feature_map.projection)
    layer.train()(torch.randn(1, 5, 16))
    assert not torch.equal(before, layer.feature_map.projection)
    assert "feature_map.projection" in layer.state_dict()


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        AttentionLayer(16, 2, kind="fast")
    with pytest.raises(ValueError, match="multiple of n_heads"):
        AttentionLayer(10, 3)
    with pytest.raises(ValueError, match="unknown feature_map"):
        AttentionLayer(16, 2, feature_map="tanh")
    layer = AttentionLayer(16, 2, kind="linear")
    with pytest.raises(ValueError, match="x must be"):
        layer(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="needs a causal kind"):
        layer.step(torch.randn(2, 16))
    causal = AttentionLayer(16, 2, kind="causal-linear")
    with pytest.raises(ValueError, match="x_t must be"):
        causal.step(torch.randn(2, 3, 16))
    with pytest.raises(TypeError, match="state must be a RecurrentState"):
        causal.step(torch.randn(2, 16), SoftmaxCache(torch.zeros(1), torch.zeros(1)))
