"""Shared pytest set-up: small thread counts keep the suite fast and stable on 2 cores."""

import os
import sys

# MKL's allocator cache (fast MM) keeps per-thread bookkeeping that a fork can copy mid-update:
# a DataLoader worker forked after other tests ran fbank (MKL FFT) in threads in this process once
# spun forever in mkl_serv_malloc. MKL reads the switch when torch loads it, so it goes first.
assert "torch" not in sys.modules, "tests/conftest.py must run before torch is imported"
os.environ.setdefault("MKL_DISABLE_FAST_MM", "1")

import torch  # noqa: E402

torch.set_num_threads(2)
