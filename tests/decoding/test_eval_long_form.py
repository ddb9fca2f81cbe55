"""tools/eval_long_form.py builds its long recordings faithfully: the utterances in order, the
pauses between them at the level of the quieter neighbouring edge, the reference joined."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
SR = 16000


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location(
        "eval_long_form", ROOT / "tools" / "eval_long_form.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_long_form"] = module
    spec.loader.exec_module(module)
    return module


def _manifest(tmp_path, np_rng, n):
    rows, waves = [], []
    for i in range(n):
        wav = (
            np_rng.uniform(0.01, 0.3) * np_rng.standard_normal(int(SR * np_rng.uniform(0.5, 2)))
        ).astype(np.float32)
        sf.write(tmp_path / f"u{i}.flac", wav, SR)
        rows.append(
            {
                "id": f"u{i}",
                "audio": f"u{i}.flac",
                "duration": len(wav) / SR,
                "text": f"word{i} more",
            }
        )
        waves.append(sf.read(tmp_path / f"u{i}.flac", dtype="float32")[0])
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "m.jsonl", waves


def test_recording_is_the_utterances_with_pauses(tmp_path, np_rng, tool):
    manifest, waves = _manifest(tmp_path, np_rng, 5)
    ((path, text, ids),) = tool.build_recordings([str(manifest)], tmp_path / "out", 0.5)
    assert ids == [f"u{i}" for i in range(5)]
    assert text == " ".join(f"word{i} more" for i in range(5))
    audio, sr = sf.read(path, dtype="float32")
    assert sr == SR
    at = 0
    for k, wav in enumerate(waves):
        if k:
            pause = audio[at : at + SR // 2]
            edge = min(tool._edge_rms(waves[k - 1], head=False), tool._edge_rms(wav, head=True))
            assert np.sqrt(np.mean(pause**2)) == pytest.approx(edge, rel=0.15, abs=1e-4)
            at += SR // 2
        np.testing.assert_allclose(audio[at : at + len(wav)], wav, atol=1e-4)  # 16-bit FLAC
        at += len(wav)
    assert at == len(audio)


def test_groups_and_a_total_length(tmp_path, np_rng, tool):
    manifest, waves = _manifest(tmp_path, np_rng, 6)
    groups = tool.build_recordings([str(manifest)], tmp_path / "g", 0.5, group_s=2.0)
    assert [i for _, _, ids in groups for i in ids] == [f"u{i}" for i in range(6)]
    assert len(groups) > 1
    ((path, _, ids),) = tool.build_recordings([str(manifest)], tmp_path / "t", 0.5, total_s=30.0)
    assert 30.0 <= sf.info(str(path)).duration < 32.5 and len(ids) > 6  # the utterances cycle
