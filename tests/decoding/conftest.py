"""Fresh random inputs for every decoding and LM test; the seed is printed so a failure can be
replayed with ``ASR_TEST_SEED=<seed>``.

The seed drives Python's, NumPy's and torch's global generators and the ``rng`` (``random.Random``)
and ``np_rng`` (``numpy.random.Generator``) fixtures.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def fresh_seed() -> int:
    seed = int(os.environ.get("ASR_TEST_SEED", random.SystemRandom().randrange(2**31)))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    print(f"ASR_TEST_SEED={seed}")
    return seed


@pytest.fixture
def rng(fresh_seed: int) -> random.Random:
    return random.Random(fresh_seed)


@pytest.fixture
def np_rng(fresh_seed: int) -> np.random.Generator:
    return np.random.default_rng(fresh_seed)
