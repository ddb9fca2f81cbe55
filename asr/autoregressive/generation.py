"""Sampling sequences from a :class:`CausalTransformer`: one API for the three decoding modes.

``mode="incremental"`` is the recurrent (RNN) form for a linear-attention model and the
key/value-cached form for a softmax model; ``mode="recompute"`` reruns the full forward over
the prefix for every token (the paper's softmax baseline). Both modes draw their random numbers
in the same order from one seeded generator, so given the same seed they produce the same
tokens (up to float rounding of the distributions).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .distributions import level_probs, sample_tokens
from .incremental import IncrementalDecoder, RecomputeDecoder
from .model import CausalTransformer

MODES = ("incremental", "recompute")


def mode_label(model: CausalTransformer, mode: str) -> str:
    """``linear_recurrent``, ``softmax_cache``, ``softmax_nocache`` (or ``linear_nocache``)."""
    kind = "linear" if model.config.attention == "causal-linear" else "softmax"
    if mode == "recompute":
        return f"{kind}_nocache"
    return "linear_recurrent" if kind == "linear" else "softmax_cache"


def make_decoder(
    model: CausalTransformer, mode: str, batch_size: int, max_len: int | None = None
) -> IncrementalDecoder | RecomputeDecoder:
    if mode == "incremental":
        return IncrementalDecoder(model, batch_size, max_len)
    if mode == "recompute":
        return RecomputeDecoder(model, batch_size, max_len)
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


@torch.inference_mode()
def generate(
    model: CausalTransformer,
    length: int,
    *,
    batch_size: int = 1,
    prompt: torch.Tensor | None = None,
    mode: str = "incremental",
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    on_token: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Sample ``(batch_size, length)`` tokens, continuing ``prompt (batch_size, P)`` if given.

    :param mode: ``incremental`` (recurrent state or key/value cache) or ``recompute``.
    :param temperature: 0 = greedy; see :func:`asr.autoregressive.distributions.sample_tokens`.
    :param top_k: sample among the ``top_k`` most likely values only.
    :param seed: seeds a fresh generator (ignored when ``generator`` is given).
    :param on_token: called with the position after each token (progress bars, timing).
    :returns: the full sequences, prompt included (prompt tokens are copied, not sampled).
    """
    cfg = model.config
    if not 1 <= length <= cfg.max_len:
        raise ValueError(
            f"length must be in [1, {cfg.max_len}] (the model's max_len), got {length}"
        )
    if prompt is not None:
        if prompt.dim() != 2 or prompt.shape[0] != batch_size or prompt.shape[1] > length:
            raise ValueError(
                f"prompt must be ({batch_size}, P <= {length}) tokens, got {tuple(prompt.shape)}"
            )
        if prompt.numel() and (int(prompt.min()) < 0 or int(prompt.max()) >= cfg.vocab_size):
            raise ValueError(f"prompt tokens must lie in [0, {cfg.vocab_size})")
    was_training = model.training
    model.eval()
    try:
        decoder = make_decoder(model, mode, batch_size, length)
        if generator is None:
            generator = torch.Generator(device=decoder.device)
            generator.manual_seed(seed if seed is not None else torch.seed())
        out = torch.empty(batch_size, length, dtype=torch.long, device=decoder.device)
        n_prompt = 0 if prompt is None else prompt.shape[1]
        if n_prompt:
            out[:, :n_prompt] = prompt.to(decoder.device)
        token = torch.full((batch_size,), cfg.bos, dtype=torch.long, device=decoder.device)
        for t in range(length):
            params = decoder.step(token)
            if t < n_prompt:
                token = out[:, t]
            else:
                probs = level_probs(params, cfg.output, cfg.vocab_size)
                token = sample_tokens(
                    probs, temperature=temperature, top_k=top_k, generator=generator
                )
                out[:, t] = token
            if on_token is not None:
                on_token(t)
        return out
    finally:
        model.train(was_training)
