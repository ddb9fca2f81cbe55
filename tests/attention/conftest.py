"""Fresh random inputs for every attention test; the seed is printed so a failure can be replayed.

Set ``ASR_TEST_SEED`` to replay a failing run.
"""

import os
import random

import pytest
import torch


@pytest.fixture(autouse=True)
def fresh_seed() -> int:
    seed = int(os.environ.get("ASR_TEST_SEED", random.randrange(2**31)))
    torch.manual_seed(seed)
    print(f"ASR_TEST_SEED={seed}")
    return seed


@pytest.fixture
def make_qkv():
    """Factory of fresh random q, k, v (see :func:`rand_qkv`)."""
    return rand_qkv


def rand_qkv(
    b: int, h: int, n: int, d: int, m: int, dtype: torch.dtype = torch.float32, positive=False
):
    """q, k (B, H, N, D) and v (B, H, N, M); positive q, k mimic feature-mapped inputs."""
    q, k = torch.randn(b, h, n, d, dtype=dtype), torch.randn(b, h, n, d, dtype=dtype)
    if positive:
        q, k = q.abs(), k.abs()
    return q, k, torch.randn(b, h, n, m, dtype=dtype)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest |a - b| over the largest |b|, in float64."""
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def out_and_grads(fn, q, k, v, g):
    """``fn(q, k, v)`` and its gradients for the output gradient ``g``, on fresh leaf copies."""
    q, k, v = (x.detach().clone().requires_grad_() for x in (q, k, v))
    out = fn(q, k, v)
    return (out, *torch.autograd.grad(out, (q, k, v), g))
