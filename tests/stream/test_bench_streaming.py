"""tools/bench_streaming.py: the synthetic signal is what the memory run claims, and the memory
worker runs on a tiny model."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from .helpers import make_package

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench_streaming.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_streaming", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_streaming"] = module
    spec.loader.exec_module(module)
    return module


def test_signal_is_deterministic_in_any_block_size_with_hourly_silence(bench):
    a, b = bench.SyntheticSignal(seed=3), bench.SyntheticSignal(seed=3)
    first = np.concatenate([a.read(2560) for _ in range(100)])
    assert np.array_equal(first, np.concatenate([b.read(n) for n in (1, 999, 256000 - 1000)]))
    assert 0.02 < np.sqrt(np.mean(first**2)) < 0.3  # speech-like level
    a.pos = b.pos = int(1799.5 * 16000)  # across minute 30 of the hour: silence starts
    around = a.read(16000)
    assert np.any(around[:8000] != 0) and not np.any(around[8000:])
    a.pos = int(2399.5 * 16000)  # and ends ten minutes later
    around = a.read(16000)
    assert not np.any(around[:8000]) and np.any(around[8000:] != 0)


def test_memory_worker_reports_rss_and_compute(bench, tmp_path):
    model = make_package(tmp_path / "m.safetensors")[0]
    res = bench._worker_memory({"model": str(model), "hours": 0.01, "chunk_ms": 160.0})
    assert res["audio_s"] == pytest.approx(36.0, abs=0.2)
    assert res["rss"][-1][1] > 0 and res["windows"] and res["rtf"] > 0
