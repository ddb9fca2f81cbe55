"""Fresh random inputs per test; the seed is printed and ``ASR_TEST_SEED`` replays it."""

import os
import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def fresh_seed() -> int:
    seed = int(os.environ.get("ASR_TEST_SEED", random.randrange(2**31)))
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    print(f"ASR_TEST_SEED={seed}")
    return seed


@pytest.fixture(autouse=True)
def one_thread():
    """Streams step a few frames at a time: one intra-op thread is what they run with
    (``asr-decode --stream --threads 1``), and more only spin on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
