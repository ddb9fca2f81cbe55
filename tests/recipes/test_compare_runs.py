"""tools/compare_runs.py builds its table from the files a run leaves behind."""

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def compare_runs(load_tool):
    return load_tool("compare_runs")


def _fake_run(root: Path, name: str, wer: float, train_s: int, metric: str) -> Path:
    exp = root / name
    (exp / "score" / "test" / "beam_lm").mkdir(parents=True)
    summary = {"wer": wer, "cer": wer / 2}
    (exp / "score" / "test" / "beam_lm" / "summary.json").write_text(json.dumps(summary))
    (exp / "timing.tsv").write_text(f"0\tcorpus\t9\n4\ttrain\t{train_s}\n")
    (exp / "csv").mkdir()  # Lightning's CSVLogger: train and validation rows interleaved
    (exp / "csv" / "metrics.csv").write_text(
        f"epoch,step,train_loss,val_loss,{metric}\n0,9,3.1,,\n0,19,,2.5,0.4\n1,39,,2.2,0.25\n"
        "2,59,,2.3,0.3\n"
    )
    return exp


def test_table_has_one_row_per_run_with_scores_and_training_time(compare_runs, tmp_path):
    a = _fake_run(tmp_path, "lin", 0.1842, 907, "val_per")
    b = _fake_run(tmp_path, "soft", 0.25, 600, "val_wer")  # a log from before val_per
    out = compare_runs.table([a, b], ["test", "dev"], ["beam_lm"])
    lines = out.splitlines()
    assert len(lines) == 4 and "test beam_lm WER / CER" in lines[0]
    assert lines[2].startswith("| lin |")
    assert "| 15.1 | val_per 0.2500 | 18.42 / 9.21 | missing |" in lines[2]
    assert "| 10.0 | val_wer 0.2500 | 25.00 / 12.50 | missing |" in lines[3]


def test_encoder_names(compare_runs):
    lstm = {"encoder": {"encoder_type": "lstm", "lstm": {"n_layers": 3, "hidden_size": 192}}}
    lin = {
        "encoder": {
            "encoder_type": "transformer",
            "d_model": 192,
            "transformer": {"attention": "linear", "n_layers": 6},
        }
    }
    assert compare_runs.encoder_name(lstm) == "Bi-LSTM 3x192"
    assert compare_runs.encoder_name(lin) == "linear transformer 6x192"
    assert compare_runs.encoder_name({}) == "?"
    # packages written before the per-encoder sections hold a flat encoder dict
    flat_lstm = {"encoder": {"encoder_type": "lstm", "lstm_layers": 3, "lstm_hidden": 192}}
    flat_lin = {"encoder": {"encoder_type": "transformer", "attention": "softmax", "n_layers": 6}}
    flat_lin["encoder"]["d_model"] = 192
    assert compare_runs.encoder_name(flat_lstm) == "Bi-LSTM 3x192"
    assert compare_runs.encoder_name(flat_lin) == "softmax transformer 6x192"


def test_training_time_is_found_by_stage_name(compare_runs, tmp_path):
    """recipes/wsj trains in stage 3 and writes the decoding bundle in stage 4: the time is the
    training stage's."""
    exp = tmp_path / "wsj"
    exp.mkdir()
    (exp / "timing.tsv").write_text(
        "2\tunits: tokenizer, lexicon, phone references\t5\n3\ttrain the model\t1200\n"
        "4\tdecoding bundle: lexicon, LM and decoding options into the package\t60\n"
        "5\tdecode test_dev93 and test_eval92 (greedy and beam + LM)\t90\n"
    )
    assert compare_runs.training_seconds(exp) == 1200
    assert compare_runs.row(exp, [], [])[3] == "20.0"
