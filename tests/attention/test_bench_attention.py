"""Smoke test: the benchmark worker runs one tiny configuration and reports time and memory."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench_attention.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_attention", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_attention"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("method", ["causal-product", "linear", "softmax-causal"])
def test_worker_reports_time(bench, method, capsys):
    argv = ["--worker", method, "--n", "64", "--batch", "1", "--heads", "2", "--dim", "8"]
    bench.main([*argv, "--repeats", "2"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "error" not in result, result
    assert result["total_s"] >= result["fwd_s"] > 0
    assert result["runs"] == 2


def test_peak_memory_sees_the_quadratic_score_matrix(bench):
    """Fresh-process peak memory: the O(N^2) reference must show its N x N float64 scores, the
    kernel (O(N) extra memory) must stay far below that."""
    b, h, n, d = 1, 2, 1024, 8
    args = bench.parse_args(
        ["--batch", str(b), "--heads", str(h), "--dim", str(d), "--repeats", "1"]
    )
    quadratic = bench.spawn(args, "causal-product-reference", n, sys.executable)
    linear = bench.spawn(args, "causal-product", n, sys.executable)
    assert "error" not in quadratic and "error" not in linear, (quadratic, linear)
    scores_bytes = b * h * n * n * 8
    assert quadratic["peak_bytes"] >= scores_bytes, quadratic
    assert linear["peak_bytes"] < scores_bytes / 4, linear


def test_quadratic_method_skipped_past_memory_cap(bench):
    args = bench.parse_args(["--mem-cap-gb", "1"])
    reason = bench.predicted_skip(args, bench.METHODS["causal-product-reference"], 16384, [])
    assert reason and "GiB" in reason
    assert bench.predicted_skip(args, bench.METHODS["causal-product"], 16384, []) is None


@pytest.mark.parametrize("precision", [[], ["--bf16"]])
def test_layer_ratios_run_in_either_precision(precision, capsys, load_tool):
    module = load_tool("bench_attention_ratios")
    threads = torch.get_num_threads()
    try:
        module.main(["layer", "--rounds", "1", "--frames", "24", "--d-model", "16", "--heads", "2",
                     *precision])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert ("bf16 autocast" if precision else "fp32") in out
    assert out.count("x [") >= 4  # softmax / linear and composite / fused, both batches
