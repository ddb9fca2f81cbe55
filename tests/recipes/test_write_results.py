"""tools/write_results.py: the per-synthesiser WER table of a multi-engine run."""

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def write_results(load_tool):
    return load_tool("write_results")


def _words(n: int, errors: int) -> dict:
    return {"words": {"n": n, "errors": errors}}


def _summary(exp: Path, split: str, speakers: dict) -> None:
    out = exp / "score" / split / "beam_lm"
    out.mkdir(parents=True)
    (out / "summary.json").write_text(json.dumps({"speakers": speakers}))


def test_engine_counts_pool_the_voices_of_each_engine(write_results) -> None:
    summary = {
        "speakers": {
            "espeak-ng:en-us": _words(10, 1),
            "espeak-ng:en+f2": _words(30, 3),
            "flite:kal": _words(20, 8),
            "spk7": _words(5, 0),
        }
    }
    assert write_results.engine_counts(summary) == {
        "espeak-ng": {"n": 40, "errors": 4},
        "flite": {"n": 20, "errors": 8},
        "spk7": {"n": 5, "errors": 0},
    }


def test_engine_table_only_when_a_run_heard_two_engines(write_results, tmp_path) -> None:
    one = tmp_path / "one"
    _summary(one, "test", {"espeak-ng:en-us": _words(10, 1)})
    assert write_results._engine_table(one, ["test"], ["beam_lm"]) == []
    silent = tmp_path / "silent"  # a second engine with no words scored is not heard
    _summary(silent, "test", {"espeak-ng:en-us": _words(10, 1), "flite:kal": _words(0, 0)})
    assert write_results._engine_table(silent, ["test"], ["beam_lm"]) == []

    two = tmp_path / "two"
    _summary(two, "test", {"espeak-ng:en-us": _words(10, 1), "flite:kal": _words(20, 5)})
    _summary(two, "test_unseen_engine", {"festival:kal_diphone": _words(8, 2)})
    table = write_results._engine_table(two, ["test", "test_unseen_engine"], ["beam_lm"])
    assert "| test | beam_lm | espeak-ng 10.00 (10 words); flite 25.00 (20 words) |" in table
    assert "| test_unseen_engine | beam_lm | festival 25.00 (8 words) |" in table
