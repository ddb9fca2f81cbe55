"""Attention for the ASR encoder: linear (kernelised) attention after Katharopoulos et al. 2020.

Public API:
- :func:`causal_product` / :func:`causal_product_reference`: the causal dot-product kernel.
- :func:`linear_attention`, :func:`linear_self_attention` (q, k, v packed as one projection's
  output), :func:`linear_attention_step`, :class:`RecurrentState`.
- :func:`fused_linear_attention` / :func:`fused_linear_attention_reference`: elu+1 linear
  attention in one kernel (what :func:`linear_attention` runs for elu+1) and its float64 formula.
- :func:`softmax_attention`: the SDPA baseline behind the same interface.
- :class:`AttentionLayer`: projections + attention, chosen by ``kind`` and ``feature_map``.
- Feature maps: :func:`make_feature_map`, :func:`register_feature_map` and the built-ins.
"""

from .feature_maps import (
    EluFeatureMap,
    FavorConfig,
    FavorFeatureMap,
    FeatureMap,
    ReluFeatureMap,
    available_feature_maps,
    make_feature_map,
    register_feature_map,
)
from .fused import fused_linear_attention, fused_linear_attention_reference, fused_self_attention
from .kernel import causal_product, causal_product_reference
from .layer import KINDS, AttentionLayer, SoftmaxCache
from .linear import (
    RecurrentState,
    linear_attention,
    linear_attention_step,
    linear_self_attention,
)
from .softmax import softmax_attention

__all__ = [
    "KINDS",
    "AttentionLayer",
    "EluFeatureMap",
    "FavorConfig",
    "FavorFeatureMap",
    "FeatureMap",
    "RecurrentState",
    "ReluFeatureMap",
    "SoftmaxCache",
    "available_feature_maps",
    "causal_product",
    "causal_product_reference",
    "fused_linear_attention",
    "fused_linear_attention_reference",
    "fused_self_attention",
    "linear_attention",
    "linear_attention_step",
    "linear_self_attention",
    "make_feature_map",
    "register_feature_map",
    "softmax_attention",
]
