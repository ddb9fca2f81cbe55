"""Smoke test: the benchmark worker runs one tiny configuration and reports time and memory."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench_attention.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_attention", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_attention"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("method", ["causal-product", "linear", "softmax-causal"])
def test_worker_reports_time_and_memory(bench, method, capsys):
    argv = ["--worker", method, "--n", "64", "--batch", "1", "--heads", "2", "--dim", "8"]
    bench.main([*argv, "--repeats", "2"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "error" not in result, result
    assert result["total_s"] >= result["fwd_s"] > 0
    assert result["peak_bytes"] >= 0 and result["runs"] == 2


def test_quadratic_method_skipped_past_memory_cap(bench):
    args = bench.parse_args(["--mem-cap-gb", "1"])
    reason = bench.predicted_skip(args, bench.METHODS["causal-product-reference"], 16384, [])
    assert reason and "GiB" in reason
    assert bench.predicted_skip(args, bench.METHODS["causal-product"], 16384, []) is None
