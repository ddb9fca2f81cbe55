"""Output distributions: normalisation, likelihoods, bits/dim of known distributions, sampling."""

import math

import pytest
import torch

from asr.autoregressive import (
    bits_per_dim,
    level_log_probs,
    level_probs,
    sample_tokens,
    token_log_prob,
)
from asr.autoregressive.distributions import mixture_log_prob


def test_mixture_levels_sum_to_one_and_match_pointwise_likelihood(seed):
    params = torch.randn(4, 7, 3 * 5, dtype=torch.float64) * 2
    table = level_log_probs(params, "logistic_mixture", 256)
    assert table.shape == (4, 7, 256)
    assert torch.allclose(table.exp().sum(-1), torch.ones(4, 7, dtype=torch.float64), atol=1e-6)
    tokens = torch.randint(0, 256, (4, 7))
    pointwise = token_log_prob(params, tokens, "logistic_mixture", 256).double()
    assert torch.allclose(pointwise, table.gather(-1, tokens[..., None]).squeeze(-1), atol=1e-6)


def _exact_bin_masses(params: torch.Tensor, n_levels: int) -> torch.Tensor:
    """Reference: each component's logistic CDF differences over the bins, level by level."""
    logits, means, log_scales = params.chunk(3, dim=-1)
    scales = log_scales.clamp(min=-7.0).exp()
    weights = torch.softmax(logits, -1)
    out = torch.zeros(*params.shape[:-1], n_levels, dtype=params.dtype)
    for level in range(n_levels):
        x = 2.0 * level / (n_levels - 1) - 1.0
        half = 1.0 / (n_levels - 1)
        upper = (
            torch.ones_like(means)
            if level == n_levels - 1
            else torch.sigmoid((x + half - means) / scales)
        )
        lower = (
            torch.zeros_like(means) if level == 0 else torch.sigmoid((x - half - means) / scales)
        )
        out[..., level] = (weights * (upper - lower)).sum(-1)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sampling_probabilities_are_the_exact_bin_masses(dtype, seed):
    params = (torch.randn(3, 5, 3 * 4) * 2).to(dtype)
    probs = level_probs(params, "logistic_mixture", 256)
    exact = _exact_bin_masses(params.double(), 256)
    # float32: the sigmoid's argument (x - mean) / scale reaches 2 / e^-7 ~ 2,200, so its rounding
    # (6e-8 relative) moves a CDF by up to ~3e-5 where the logistic is steep
    assert torch.allclose(probs.double(), exact, atol=1e-4 if dtype == torch.float32 else 1e-10)
    # the likelihood table takes the density at the bin centre for a component's bins below 1e-5
    # of mass (PixelCNN++), so it may differ there by less than that floor, and nowhere else
    table = level_log_probs(params.double(), "logistic_mixture", 256).exp()
    assert (table - exact).abs().max() < 1e-5
    logits = torch.randn(3, 16, dtype=dtype)
    assert torch.allclose(level_probs(logits, "categorical", 16), torch.softmax(logits, -1))


def test_single_logistic_matches_its_cdf_differences():
    """One component: P(x) is the logistic mass of x's bin, the end levels take the tails."""
    mean, log_scale = 0.1, math.log(0.3)
    params = torch.tensor([0.0, mean, log_scale], dtype=torch.float64)
    probs = level_log_probs(params, "logistic_mixture", 256).exp()

    def cdf(x: float) -> float:
        return 1 / (1 + math.exp(-(x - mean) / math.exp(log_scale)))

    for level in (0, 1, 100, 200, 254, 255):
        x = 2 * level / 255 - 1
        lo = 0.0 if level == 0 else cdf(x - 1 / 255)
        hi = 1.0 if level == 255 else cdf(x + 1 / 255)
        assert probs[level].item() == pytest.approx(hi - lo, rel=1e-9)


def test_uniform_categorical_costs_exactly_8_bits_per_pixel():
    logits = torch.zeros(5, 10, 256)
    tokens = torch.randint(0, 256, (5, 10))
    nll = -token_log_prob(logits, tokens, "categorical", 256)
    assert bits_per_dim(float(nll.sum()), tokens.numel()) == pytest.approx(8.0, abs=1e-5)


def test_bits_per_dim_of_a_known_distribution(seed):
    """Data drawn from p scored by p: bits/dim is the mean of -log2 p(x) and near the entropy."""
    p = torch.softmax(torch.randn(256, dtype=torch.float64) * 2, dim=0)
    tokens = torch.multinomial(p, 20000, replacement=True).view(40, 500)
    logits = p.log().expand(40, 500, 256)
    nll = -token_log_prob(logits, tokens, "categorical", 256)
    bpd = bits_per_dim(float(nll.double().sum()), tokens.numel())
    surprisal = -p[tokens].log2()
    assert bpd == pytest.approx(float(surprisal.mean()), rel=1e-5)
    # Near the entropy within 5 standard errors of the sample mean (a fixed 0.05 bits failed
    # about once in 200 seeds: -log2 p has a long tail for a peaked p).
    entropy_bits = float(-(p * p.log2()).sum())
    standard_error = float(surprisal.std()) / tokens.numel() ** 0.5
    assert bpd == pytest.approx(entropy_bits, abs=5 * standard_error)


def test_sharp_mixture_costs_almost_nothing_on_its_level():
    level = 77
    x = 2 * level / 255 - 1
    params = torch.tensor([[0.0, x, -7.0]])  # scale e^-7: 97% of the mass on one grey level
    lp = mixture_log_prob(params, torch.tensor([level]), 256)
    assert bits_per_dim(float(-lp.sum()), 1) < 0.05
    neighbour = mixture_log_prob(params, torch.tensor([level + 1]), 256)
    assert float(neighbour.exp()) < 0.02


def test_bits_per_dim_rejects_zero_dims():
    with pytest.raises(ValueError, match="positive"):
        bits_per_dim(1.0, 0)


def test_sampling_greedy_top_k_and_seeds(seed):
    probs = torch.softmax(torch.randn(6, 50), dim=-1)
    assert torch.equal(sample_tokens(probs, temperature=0), probs.argmax(-1))
    top3 = probs.topk(3, dim=-1).indices
    for _ in range(20):
        draw = sample_tokens(probs, top_k=3)
        assert (draw[:, None] == top3).any(dim=1).all()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(sample_tokens(probs, generator=g1), sample_tokens(probs, generator=g2))
    with pytest.raises(ValueError, match="temperature"):
        sample_tokens(probs, temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        sample_tokens(probs, top_k=0)


def test_sampling_follows_the_distribution(seed):
    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    draws = sample_tokens(p.expand(40000, 4))
    freq = torch.bincount(draws, minlength=4).double() / 40000
    assert torch.allclose(freq, p.double(), atol=0.01)
    # temperature 0.5 squares the probabilities before renormalising
    hot = sample_tokens(p.expand(40000, 4), temperature=0.5)
    want = p.double() ** 2 / (p.double() ** 2).sum()
    assert torch.allclose(torch.bincount(hot, minlength=4).double() / 40000, want, atol=0.01)
    # a zero-probability value is never drawn
    assert not (sample_tokens(torch.tensor([[0.0, 1.0, 0.0]]).expand(1000, 3)) != 1).any()
