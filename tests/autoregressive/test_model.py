"""CausalTransformer: config checks, shapes, causality, gradients."""

import pytest
import torch

from asr.autoregressive import ARConfig

from .conftest import tiny_model


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attention": "linear"}, "causal"),
        ({"attention": "softmax"}, "causal"),
        ({"output": "gaussian"}, "output"),
        ({"d_model": 30, "n_heads": 4}, "multiple"),
        ({"n_layers": 0}, "n_layers"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ARConfig(**kwargs)


def test_config_round_trip_and_unknown_keys():
    cfg = ARConfig(d_model=64, n_heads=4)
    assert ARConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown ARConfig keys"):
        ARConfig.from_dict({"width": 3})


@pytest.mark.parametrize("attention", ["causal-linear", "causal-softmax"])
@pytest.mark.parametrize("output", ["categorical", "logistic_mixture"])
def test_output_shape_and_gradients(attention, output, seed):
    model = tiny_model(attention, output).train()
    cfg = model.config
    tokens = torch.randint(0, cfg.vocab_size, (3, 11))
    out = model(tokens)
    assert out.shape == (3, 11, cfg.output_dim)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("attention", ["causal-linear", "causal-softmax"])
def test_position_t_sees_only_earlier_tokens(attention, seed):
    model = tiny_model(attention).double()
    tokens = torch.randint(0, 256, (2, 17))
    changed = tokens.clone()
    changed[:, 9] = (changed[:, 9] + 1) % 256
    a, b = model(tokens), model(changed)
    # position t predicts token t from tokens < t: changing token 9 changes positions 10...
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-12)
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_rejects_bad_tokens():
    model = tiny_model("causal-linear", max_len=8)
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        model(torch.full((1, 4), 256))
    with pytest.raises(ValueError, match="integer"):
        model(torch.zeros(1, 4))
