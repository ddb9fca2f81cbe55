"""Manifests: round trip, relative paths, validation reporting every bad row, and the CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from asr.data.cli import main
from asr.data.manifest import (
    ManifestFormatError,
    Utterance,
    read_manifest,
    validate_manifest,
    write_manifest,
)


def test_round_trip_with_relative_paths(corpus, tmp_path: Path) -> None:
    m = corpus(5)
    rows = [json.loads(line) for line in m.read_text().splitlines()]
    assert all(not Path(r["audio"]).is_absolute() for r in rows)  # stored relative
    utts = read_manifest(m)
    assert all(Path(u.audio).is_file() for u in utts)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    out = moved / "copy.jsonl"
    write_manifest(out, utts)
    assert read_manifest(out) == utts  # absolute when outside the folder, same utterances


def test_optional_fields_survive(tmp_path: Path) -> None:
    u = Utterance("a", str(tmp_path / "x.wav"), 1.5, "hi there", "spk", 2.25, "rec1")
    write_manifest(tmp_path / "m.jsonl", [u])
    assert read_manifest(tmp_path / "m.jsonl") == [u]


def test_validate_reports_every_bad_row(corpus, tmp_path: Path) -> None:
    m = corpus(3)
    good = m.read_text().splitlines()
    first = json.loads(good[0])
    bad_rows = {
        "missing file": {**first, "id": "x1", "audio": "nope.flac"},
        "missing text": {k: v for k, v in {**first, "id": "x2"}.items() if k != "text"},
        "duration must be > 0": {**first, "id": "x3", "duration": 0},
        "duplicate id": {**first},
        "bad JSON": None,
        "negative": {**first, "id": "x5", "duration": -1.0},
    }
    lines = list(good)
    expected_lines = {}
    for reason, row in random.sample(list(bad_rows.items()), len(bad_rows)):
        lines.append('{"id": "broken", ' if row is None else json.dumps(row))
        expected_lines[reason] = len(lines)
    m.write_text("\n".join(lines) + "\n")
    errors = validate_manifest(m)
    assert len(errors) == len(bad_rows)
    for reason, line in expected_lines.items():
        key = {"missing file": "not found", "negative": "duration must be > 0"}.get(reason, reason)
        assert any(e.line == line and key in e.reason for e in errors), (reason, errors)
    with pytest.raises(ManifestFormatError, match=r":\d+:"):
        read_manifest(m)


def test_validate_clean_manifest_and_cli(corpus, capsys) -> None:
    m = corpus(4)
    assert validate_manifest(m) == []
    assert main(["validate", str(m)]) == 0
    with open(m, "a") as f:
        f.write('{"id": "z", "audio": "missing.wav", "duration": 1, "text": ""}\n')
    assert main(["validate", str(m)]) == 1
    out = capsys.readouterr().out
    assert "missing.wav" in out and "empty text" in out


def test_cli_info(corpus, capsys) -> None:
    m = corpus(6)
    hours = sum(u.duration for u in read_manifest(m)) / 3600
    assert main(["info", str(m)]) == 0
    row = capsys.readouterr().out.splitlines()[-1].split("|")
    assert int(row[2]) == 6 and abs(float(row[3]) - hours) < 1e-3 and int(row[4]) == 3
