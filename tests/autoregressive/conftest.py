"""Small models and fresh random inputs for the autoregressive tests (seed printed)."""

import pytest
import torch

from asr.autoregressive import ARConfig, CausalTransformer


@pytest.fixture
def seed(request) -> int:
    value = torch.seed() % 2**31
    torch.manual_seed(value)
    print(f"{request.node.name}: seed {value}")
    return value


def tiny_model(attention: str, output: str = "logistic_mixture", **kw) -> CausalTransformer:
    defaults = dict(
        vocab_size=16 if output == "categorical" else 256,
        max_len=24,
        d_model=24,
        n_layers=2,
        n_heads=3,
        d_ff=32,
        attention=attention,
        output=output,
        n_mixtures=3,
    )
    defaults.update(kw)
    return CausalTransformer(ARConfig(**defaults)).eval()
