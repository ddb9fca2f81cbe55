"""Smoke tests of the generation and training benchmarks on tiny models (no timing asserted)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def keep_thread_count():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # the benchmarks set their own


TINY = ["--layers", "1", "--d-model", "16", "--repeats", "1", "--threads", "1"]


def test_bench_generation_prints_the_three_modes_last(capsys):
    bench = load("bench_generation")
    bench.main([*TINY, "--length", "40"])
    out = capsys.readouterr().out
    last = json.loads(out.strip().splitlines()[-1])
    assert set(last) == {"linear_recurrent", "softmax_cache", "softmax_nocache"}
    assert all(v > 0 for v in last.values())
    assert "Weight floor" in out and "softmax_nocache at most" in out


def test_weight_pass_reads_every_linear_layer():
    bench = load("bench_generation")
    models = bench.build_models(bench.parse_args(TINY))
    model = models["linear"]
    floor = bench.weight_pass_seconds(model, batch=1, rounds=1)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert floor["layers"] == len(linears) > 0
    assert floor["bytes"] == 4 * sum(p.numel() for m in linears for p in m.parameters())
    assert floor["seconds"] > 0


def test_bench_generation_estimates_nocache_at_batch_above_one(capsys, tmp_path):
    bench = load("bench_generation")
    out = tmp_path / "g.json"
    bench.main([*TINY, "--length", "40", "--batch", "2", "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["throughput"]["modes"]["softmax_nocache"]["how"].startswith("estimated")


def test_per_position_worker_linear_state_is_flat(capsys):
    bench = load("bench_generation")
    bench.main([*TINY, "--length", "200", "--worker", "linear_recurrent"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(result["ms_per_token"]) == 200 and result["memory_positions"] == [64, 128, 192]
    bench.main([*TINY, "--length", "200", "--worker", "softmax_nocache", "--positions", "0", "99"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["positions"] == [1, 100]


def test_estimate_total_interpolates():
    bench = load("bench_generation")
    # cost linear in the position: sampled at the ends, the sum is exact
    assert bench.estimate_total([0, 99], [1.0, 100.0], 100) == pytest.approx(sum(range(1, 101)))
    assert bench.default_positions(784)[0] == 0 and bench.default_positions(784)[-1] == 783


def test_bench_ar_train_reports_a_ratio(capsys):
    bench = load("bench_ar_train")
    bench.main(["--lengths", "32", "--layers", "1", "--d-model", "16", "--heads", "2",
                "--repeats", "1", "--threads", "1", "--batch", "1"])  # fmt: skip
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(last["32"]) == {"linear", "softmax", "ratio"} and last["32"]["ratio"] > 0


@pytest.mark.parametrize("dataset,name", [("mnist", "fashion-mnist"), ("cifar10", "cifar10")])
def test_write_tiny_images_reads_back_in_the_official_format(tmp_path, dataset, name):
    from asr.autoregressive.data import load_split

    load("write_tiny_images").main([dataset, str(tmp_path), "--train", "7", "--test", "3"])
    train, test = load_split(name, tmp_path, "train"), load_split(name, tmp_path, "test")
    side, channels = (28, 1) if dataset == "mnist" else (32, 3)
    assert train.images.shape == (7, side, side, channels)
    assert test.images.shape == (3, side, side, channels)
    assert train.images.max() > 100 and train.images.min() == 0  # a bright blob on black
