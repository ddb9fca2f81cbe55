"""Feature maps phi(x) for kernelised (linear) attention, picked by name from a registry.

Linear attention replaces softmax(q.k) by phi(q).phi(k) (Katharopoulos et al. 2020). The map must
be non-negative so the normaliser phi(q).sum_j phi(k_j) stays positive. Models choose a map by a
config string (``"elu"``, ``"relu"``, ``"favor"``) through :func:`make_feature_map`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class FeatureMap(nn.Module):
    """Base class: maps ``(..., D)`` to ``(..., n_features)`` non-negative features."""

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        if head_dim < 1:
            raise ValueError(f"head_dim must be >= 1, got {head_dim}")
        self.head_dim = head_dim

    @property
    def n_features(self) -> int:
        """Size of the feature space (the ``D`` seen by ``causal_product``)."""
        return self.head_dim

    def redraw(self) -> None:
        """Resample any random parameters (no-op for deterministic maps)."""

    def on_training_step(self) -> None:
        """Hook called once per training forward; random maps count steps to redraw."""


class EluFeatureMap(FeatureMap):
    """phi(x) = elu(x) + 1: the paper's default; positive, smooth, cheap.

    Computed as exp(x - relu(x)) + relu(x) = exp(min(x, 0)) + max(x, 0): the same function and
    gradient (1 at x = 0), but ``F.elu`` on CPU measured ~15x slower than exp on our machines.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positive = F.relu(x)
        return torch.exp(x - positive) + positive


class ReluFeatureMap(FeatureMap):
    """phi(x) = relu(x): non-negative but may give an all-zero key (it then attends to nothing)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


@dataclass
class FavorConfig:
    """Settings of FAVOR+ positive random features (Choromanski et al. 2021).

    :param n_features: number of random features m; ``None`` means ``head_dim``.
    :param redraw_interval: redraw the projection every this many training forwards
        (``None`` or 0: never redraw automatically).
    :param orthogonal: draw the projection rows in orthogonal blocks (lower variance).
    :param max_exponent: clamp on the key exponent so float32 never overflows; only reached by
        inputs far outside what a trained projection produces.
    """

    n_features: int | None = None
    redraw_interval: int | None = 1000
    orthogonal: bool = True
    max_exponent: float = 60.0


class FavorFeatureMap(FeatureMap):
    """Positive random features whose dot product estimates exp(q.k / sqrt(D)).

    phi(x) = exp(W x' - |x'|^2 / 2) / sqrt(m) with x' = x / D^(1/4) and W ~ N(0, I) (orthogonal
    blocks). Queries are stabilised by their own row max, which cancels in the attention
    normaliser; keys cannot be (a per-key factor would not cancel, a global one would break causal
    stepping), so their exponent is only clamped against overflow.
    """

    def __init__(self, head_dim: int, config: FavorConfig | None = None, **kwargs: object) -> None:
        super().__init__(head_dim)
        self.config = config or FavorConfig(**kwargs)  # type: ignore[arg-type]
        m = self.config.n_features or head_dim
        if m < 1:
            raise ValueError(f"FAVOR n_features must be >= 1, got {m}")
        self._m = m
        self.register_buffer("projection", torch.empty(m, head_dim))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.is_query = False
        self.redraw()

    @property
    def n_features(self) -> int:
        return self._m

    @torch.no_grad()
    def redraw(self, generator: torch.Generator | None = None) -> None:
        """Draw a fresh projection matrix (in place, on the buffer's device)."""
        d, m = self.head_dim, self._m
        dev = self.projection.device
        if not self.config.orthogonal:
            w = torch.randn(m, d, generator=generator)
        else:
            blocks = []
            for _ in range(math.ceil(m / d)):
                g = torch.randn(d, d, generator=generator)
                qmat, _ = torch.linalg.qr(g)
                blocks.append(qmat.T)
            w = torch.cat(blocks)[:m]
            # Orthogonal rows have unit norm; give them the chi(d) norms of Gaussian rows.
            w = w * torch.randn(m, d, generator=generator).norm(dim=1, keepdim=True)
        self.projection.copy_(w.to(dev))

    def on_training_step(self) -> None:
        interval = self.config.redraw_interval
        if not interval:
            return
        self.steps += 1
        if int(self.steps) % interval == 0:
            self.redraw()

    def features(self, x: torch.Tensor, *, is_query: bool) -> torch.Tensor:
        """Map queries (row-max stabilised) or keys (clamped) to positive features."""
        x = x * self.head_dim**-0.25
        w = self.projection.to(x.dtype)
        exponent = x @ w.T - 0.5 * (x * x).sum(-1, keepdim=True)
        if is_query:
            exponent = exponent - exponent.amax(-1, keepdim=True).detach()
        else:
            exponent = exponent.clamp(max=self.config.max_exponent)
        return torch.exp(exponent) * self._m**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x, is_query=False)


FeatureMapFactory = Callable[..., FeatureMap]
_REGISTRY: dict[str, FeatureMapFactory] = {}


def register_feature_map(name: str, factory: FeatureMapFactory) -> None:
    """Make a feature map available under ``name`` (factory called as ``factory(head_dim, **kw)``)."""
    if name in _REGISTRY:
        raise ValueError(f"feature map {name!r} is already registered")
    _REGISTRY[name] = factory


def available_feature_maps() -> list[str]:
    """Names accepted by :func:`make_feature_map`."""
    return sorted(_REGISTRY)


def make_feature_map(name: str, head_dim: int, **kwargs: object) -> FeatureMap:
    """Build the feature map registered as ``name`` for heads of size ``head_dim``."""
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown feature_map {name!r}; choose one of {available_feature_maps()} "
            "or register_feature_map() your own"
        )
    return _REGISTRY[name](head_dim, **kwargs)


register_feature_map("elu", EluFeatureMap)
register_feature_map("relu", ReluFeatureMap)
register_feature_map("favor", FavorFeatureMap)


def apply_feature_map(
    feature_map: str | FeatureMap | Callable[[torch.Tensor], torch.Tensor],
    q: torch.Tensor,
    k: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (phi(q), phi(k)); FAVOR maps stabilise queries and keys differently."""
    if isinstance(feature_map, str):
        feature_map = make_feature_map(feature_map, q.shape[-1]).to(q.device)
    if isinstance(feature_map, FavorFeatureMap):
        return feature_map.features(q, is_query=True), feature_map.features(k, is_query=False)
    if not callable(feature_map):
        raise TypeError(
            f"feature_map must be a name, a FeatureMap or a callable, got {type(feature_map)}"
        )
    return feature_map(q), feature_map(k)
