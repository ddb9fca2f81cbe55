"""Output distributions of the autoregressive models, their likelihoods and bits per dimension.

Two heads: a categorical over the token values, and the paper's image head, a mixture of
discretised logistics over the 256 grey levels (Salimans et al. 2017, PixelCNN++), where each
component puts on level x the logistic mass of the bin [x - 1/2, x + 1/2] (values scaled to
[-1, 1]) and the end levels take the tails. Written by hand: no maintained library ships the
discretised logistic mixture for PyTorch.

Training uses :func:`token_log_prob` (only the observed level is evaluated); sampling uses
:func:`level_probs`, the probabilities of every level, so that temperature and top-k apply to
both heads in the same way.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MIN_LOG_SCALE = -7.0  # scales below e^-7 are far narrower than one grey level
_DELTA_FLOOR = 1e-5  # below this bin mass, use the density at the bin centre (PixelCNN++)


def _split_mixture(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if params.shape[-1] % 3:
        raise ValueError(f"mixture parameters need 3 numbers per component, got {params.shape[-1]}")
    logit_weights, means, log_scales = params.chunk(3, dim=-1)
    return logit_weights, means, log_scales.clamp(min=MIN_LOG_SCALE)


def _component_log_probs(
    levels: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor, n_levels: int
) -> torch.Tensor:
    """log P(level | component) for ``levels`` broadcast against ``means``/``log_scales``."""
    half_bin = 1.0 / (n_levels - 1)
    x = levels * (2.0 * half_bin) - 1.0  # 0..n_levels-1 -> [-1, 1]
    centered = x - means
    inv_scale = torch.exp(-log_scales)
    plus_in = inv_scale * (centered + half_bin)
    min_in = inv_scale * (centered - half_bin)
    log_cdf_plus = plus_in - F.softplus(plus_in)  # log sigmoid: the lowest level takes the tail
    log_one_minus_cdf_min = -F.softplus(min_in)  # the highest level takes the upper tail
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_scale * centered
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in)
    log_mid = torch.where(
        cdf_delta > _DELTA_FLOOR,
        torch.log(cdf_delta.clamp(min=1e-12)),
        log_pdf_mid + math.log(2.0 * half_bin),
    )
    return torch.where(
        levels <= 0,
        log_cdf_plus,
        torch.where(levels >= n_levels - 1, log_one_minus_cdf_min, log_mid),
    )


def mixture_log_prob(params: torch.Tensor, tokens: torch.Tensor, n_levels: int) -> torch.Tensor:
    """log P(tokens) in nats under discretised logistic mixtures ``params (..., 3K)``."""
    logit_weights, means, log_scales = _split_mixture(params)
    levels = tokens.to(means.dtype).unsqueeze(-1)
    comp = _component_log_probs(levels, means, log_scales, n_levels)
    return torch.logsumexp(comp + F.log_softmax(logit_weights, dim=-1), dim=-1)


def mixture_level_log_probs(params: torch.Tensor, n_levels: int) -> torch.Tensor:
    """``(..., n_levels)`` log-probabilities of every level (sums to 1 up to rounding)."""
    logit_weights, means, log_scales = _split_mixture(params)
    levels = torch.arange(n_levels, dtype=means.dtype, device=means.device)
    comp = _component_log_probs(
        levels, means.unsqueeze(-1), log_scales.unsqueeze(-1), n_levels
    )  # (..., K, n_levels)
    weights = F.log_softmax(logit_weights, dim=-1).unsqueeze(-1)
    return torch.logsumexp(comp + weights, dim=-2)


def token_log_prob(
    outputs: torch.Tensor, tokens: torch.Tensor, output: str, vocab_size: int
) -> torch.Tensor:
    """log P(token) in nats for every position: ``outputs (..., output_dim)``, ``tokens (...)``."""
    if outputs.dtype in (torch.float16, torch.bfloat16):
        outputs = outputs.float()  # likelihoods in float32 even under half-precision autocast
    if output == "categorical":
        return F.log_softmax(outputs, dim=-1).gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1)
    if output == "logistic_mixture":
        return mixture_log_prob(outputs, tokens, vocab_size)
    raise ValueError(f"unknown output kind {output!r}")


def level_log_probs(outputs: torch.Tensor, output: str, vocab_size: int) -> torch.Tensor:
    """Log-probabilities of every token value, ``(..., vocab_size)``, for sampling."""
    if output == "categorical":
        return F.log_softmax(outputs, dim=-1)
    if output == "logistic_mixture":
        return mixture_level_log_probs(outputs, vocab_size)
    raise ValueError(f"unknown output kind {output!r}")


def mixture_level_probs(params: torch.Tensor, n_levels: int) -> torch.Tensor:
    """``(..., n_levels)`` probabilities of every level, for sampling.

    The same distribution as :func:`mixture_level_log_probs` computed from the components'
    CDFs at the 257 bin edges (a handful of operations instead of the stable log-space
    evaluation), because generation pays this cost at every token.
    """
    logit_weights, means, log_scales = _split_mixture(params)
    half_bin = 1.0 / (n_levels - 1)
    edges = torch.arange(n_levels + 1, dtype=means.dtype, device=means.device)
    edges = edges * (2.0 * half_bin) - 1.0 - half_bin  # lower edge of each level, then the top
    cdf = torch.sigmoid((edges - means.unsqueeze(-1)) * torch.exp(-log_scales).unsqueeze(-1))
    cdf[..., 0], cdf[..., -1] = 0.0, 1.0  # the end levels take the tails
    mass = cdf.diff(dim=-1)  # (..., K, n_levels)
    weights = torch.softmax(logit_weights, dim=-1).unsqueeze(-2)  # (..., 1, K)
    return (weights @ mass).squeeze(-2)


def level_probs(outputs: torch.Tensor, output: str, vocab_size: int) -> torch.Tensor:
    """Probabilities of every token value, ``(..., vocab_size)``, for sampling."""
    if output == "categorical":
        return torch.softmax(outputs, dim=-1)
    if output == "logistic_mixture":
        return mixture_level_probs(outputs, vocab_size)
    raise ValueError(f"unknown output kind {output!r}")


def bits_per_dim(nll_nats_sum: float, dims: int) -> float:
    """Average negative log-likelihood per dimension (sub-pixel), in bits."""
    if dims <= 0:
        raise ValueError(f"bits_per_dim needs a positive number of dimensions, got {dims}")
    return nll_nats_sum / dims / math.log(2.0)


def sample_tokens(
    probs: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token per row of ``probs (B, V)`` (probabilities, e.g. from :func:`level_probs`).

    ``temperature`` 0 takes the most likely token; otherwise the distribution is raised to
    ``1 / temperature``, cut to the ``top_k`` most likely values, renormalised and sampled by
    inverting its CDF with one uniform draw per row from ``generator``, so two runs that see the
    same distributions and the same seed draw the same tokens.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 (or None for no cut), got {top_k}")
    if temperature == 0:
        return probs.argmax(dim=-1)
    weights = probs.double().clamp(min=0.0)
    if temperature != 1.0:
        weights = weights ** (1.0 / temperature)
    if top_k is not None and top_k < weights.shape[-1]:
        kth = weights.topk(top_k, dim=-1).values[..., -1:]
        weights = weights.masked_fill(weights < kth, 0.0)
    cdf = weights.cumsum(dim=-1)
    u = torch.rand(cdf.shape[0], 1, dtype=cdf.dtype, device=cdf.device, generator=generator)
    tokens = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)
    return tokens.squeeze(-1).clamp(max=cdf.shape[-1] - 1)
