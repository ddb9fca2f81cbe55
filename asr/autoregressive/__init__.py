"""Autoregressive models on the causal kernels: the paper's copy task and image generation.

A decoder-only transformer (:class:`CausalTransformer`) trains over whole sequences with
causal linear (or softmax) attention and then generates one token at a time, as an RNN for
linear attention (:class:`IncrementalDecoder`). See ``recipes/copy``, ``recipes/mnist`` and
``recipes/cifar10``.
"""

from .distributions import (
    bits_per_dim,
    level_log_probs,
    level_probs,
    sample_tokens,
    token_log_prob,
)
from .generation import MODES, generate, make_decoder, mode_label
from .incremental import IncrementalDecoder, RecomputeDecoder
from .model import ARConfig, CausalTransformer

__all__ = [
    "MODES",
    "ARConfig",
    "CausalTransformer",
    "IncrementalDecoder",
    "RecomputeDecoder",
    "bits_per_dim",
    "generate",
    "level_log_probs",
    "level_probs",
    "make_decoder",
    "mode_label",
    "sample_tokens",
    "token_log_prob",
]
