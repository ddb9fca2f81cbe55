"""Smoke test of the encoder benchmark on tiny encoders (no timing asserted)."""

import json

import pytest
import torch

TINY = [
    "--seconds", "0.4", "--repeats", "1", "--layers", "1", "--d-model", "16", "--heads", "2",
    "--d-ff", "32", "--conv-channels", "4", "--lstm-hidden", "8", "--lstm-layers", "1",
]  # fmt: skip


@pytest.fixture
def bench(load_tool):
    return load_tool("bench_encoder")


@pytest.mark.parametrize("precision", [[], ["--bf16"]])
def test_times_every_encoder_and_names_the_precision(bench, tmp_path, precision):
    bench.main([*TINY, "--no-memory", "--out-dir", str(tmp_path), *precision])
    report = (tmp_path / "bench_encoder.md").read_text()
    assert ("bf16 autocast" if precision else "float32") in report
    timing = json.loads((tmp_path / "bench_encoder.json").read_text())["timing"]
    for cell in timing.values():
        assert set(cell) == {"linear", "softmax", "bilstm"}
        assert cell["softmax"]["ratio_to_linear"]["median"] > 0


def test_bf16_runs_the_forward_in_bf16(bench):
    args = bench.parse_args([*TINY, "--bf16"])
    encoder = bench.make_encoder("linear", args)
    features, lengths = bench.make_batch([40, 30])
    seen = []
    encoder.register_forward_hook(lambda module, inputs, output: seen.append(output[0].dtype))
    bench.fwd_bwd(encoder, features, lengths, bf16=True)
    bench.fwd_bwd(encoder, features, lengths, bf16=False)
    assert seen == [torch.bfloat16, torch.float32]


def test_a_label_fixes_one_models_precision(bench, tmp_path):
    args = bench.parse_args([*TINY, "--bf16", "--models", "linear", "bilstm:fp32", "softmax:bf16"])
    assert [bench.runs_bf16(m, args) for m in args.models] == [True, False, True]
    assert not bench.runs_bf16("linear", bench.parse_args(TINY))
    bench.main([*TINY, "--no-memory", "--out-dir", str(tmp_path), "--models", "linear:bf16",
                "bilstm:fp32"])  # fmt: skip
    timing = json.loads((tmp_path / "bench_encoder.json").read_text())["timing"]
    assert all("ratio_to_linear" in cell["bilstm:fp32"] for cell in timing.values())


def test_an_unknown_model_or_precision_is_refused(bench):
    for bad in ("gru", "linear:fp16"):
        with pytest.raises(SystemExit):
            bench.parse_args([*TINY, "--models", bad])
