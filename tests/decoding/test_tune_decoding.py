"""tools/tune_decoding.py: a grid over cached log-probs, the package's bundle as its default
lexicon and LM, --reuse keyed by content, and its result carried into a bundle."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.bundle import main as bundle_main
from asr.bundle import read_bundle, write_bundle

from .packages import tiny_package_with_lm

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tune():
    spec = importlib.util.spec_from_file_location(
        "tune_decoding", ROOT / "tools" / "tune_decoding.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["tune_decoding"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASR_CACHE_DIR", str(tmp_path / "cache"))


def test_grid_reuse_and_bundle(tmp_path, rng, tune, capsys):
    words = ["red", "green", "blue", "one", "two"]
    plain = tiny_package_with_lm(tmp_path, rng, words)
    rows = []
    for i in range(3):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, (0.1 * np.random.randn(16000)).astype(np.float32), 16000)
        rows.append({"id": f"u{i}", "audio": str(path), "duration": 1.0, "text": rng.choice(words)})
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bundled = tmp_path / "bundled.safetensors"
    write_bundle(
        plain, tmp_path / "lexicon.txt", tmp_path / "lm.arpa", {"beam_size": 4}, out=bundled
    )
    out = tmp_path / "tune.json"
    grid = ["--lm-weights", "0.5", "2", "--word-scores", "0", "1", "--out", str(out), "--reuse"]
    assert tune.main([str(bundled), str(dev), *grid]) == 0  # lexicon and LM from the bundle
    result = json.loads(out.read_text())
    assert len(result["grid"]) == 4 and result["inputs"]["search"]["beam_size"] == 4
    assert result["options"] == {k: result["best"][k] for k in ("lm_weight", "word_score")}
    assert min(r["wer"] for r in result["grid"]) == result["best"]["wer"]
    capsys.readouterr()
    assert tune.main([str(bundled), str(dev), *grid]) == 0
    assert "is up to date" in capsys.readouterr().out
    # the same weights in a package with a different bundle: still up to date; new text: not
    assert (
        tune.main(
            [
                str(plain),
                str(dev),
                *grid,
                "--lexicon",
                str(tmp_path / "lexicon.txt"),
                "--lm",
                str(tmp_path / "lm.arpa"),
                "--beam-size",
                "4",
            ]
        )
        == 0
    )
    assert "is up to date" in capsys.readouterr().out
    dev.write_text(dev.read_text().replace(rows[0]["text"], "red green blue", 1))
    assert tune.main([str(bundled), str(dev), *grid]) == 0
    assert "is up to date" not in capsys.readouterr().out

    args = ["add", str(plain), "--lexicon", str(tmp_path / "lexicon.txt"), "--tuning", str(out)]
    assert bundle_main(args) == 0
    bundle = read_bundle(plain)
    assert bundle.options["lm_weight"] == json.loads(out.read_text())["best"]["lm_weight"]
    assert len(bundle.provenance["tuning"]["grid"]) == 4
    (tmp_path / "bad.json").write_text("{}")
    capsys.readouterr()
    assert bundle_main([*args[:-1], str(tmp_path / "bad.json")]) == 2
    assert "not a tools/tune_decoding.py --out file" in capsys.readouterr().err
