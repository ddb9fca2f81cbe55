"""Kaldi data dirs: import -> export identity, sph2pipe handling, clear errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.data.cli import main
from asr.data.kaldi import KaldiDirError, export_kaldi_dir, import_kaldi_dir, parse_wav_scp_entry
from asr.data.manifest import read_manifest

FILES = ("wav.scp", "text", "utt2spk", "segments")


def write_dir(root: Path, segmented: bool) -> Path:
    d = root / "data"
    d.mkdir()
    wav, text, spk, seg = [], [], [], []
    for r in range(3):
        rec = f"rec{r}"
        p = root / f"{rec}.wav"
        sf.write(p, np.random.randn(16000 * 3).astype(np.float32) * 0.1, 16000)
        if segmented:
            wav.append(f"{rec} {p}")
            for s in range(2):
                utt = f"s{r}-{rec}-{s}"
                start = round(random.uniform(0, 1), 2) + s * 1.5
                seg.append(f"{utt} {rec} {start:.2f} {start + 1.2:.2f}")
                text.append(f"{utt} HELLO <noise> WORLD {r}{s}")
                spk.append(f"{utt} s{r}")
        else:
            wav.append(f"s{r}-{rec} {p}")
            text.append(f"s{r}-{rec} SOME Text, here {r}")
            spk.append(f"s{r}-{rec} s{r}")
    for name, lines in zip(FILES, (wav, text, spk, seg), strict=True):
        if lines:
            (d / name).write_text("\n".join(sorted(lines)) + "\n")
    return d


@pytest.mark.parametrize("segmented", [False, True])
def test_import_export_identity(tmp_path: Path, segmented: bool) -> None:
    src = write_dir(tmp_path, segmented)
    out = tmp_path / "m.jsonl"
    assert main(["from-kaldi", str(src), str(out)]) == 0
    utts = read_manifest(out)
    assert len(utts) == (6 if segmented else 3)
    if not segmented:
        assert all(abs(u.duration - 3.0) < 1e-3 for u in utts)
    assert main(["to-kaldi", str(out), str(tmp_path / "back")]) == 0
    for name in FILES:
        if (src / name).exists():
            assert (tmp_path / "back" / name).read_text() == (src / name).read_text(), name
    assert (tmp_path / "back" / "segments").exists() == segmented
    assert (tmp_path / "back" / "spk2utt").read_text().startswith("s0 ")


def test_sph2pipe_entry_yields_path_and_other_pipes_fail() -> None:
    assert parse_wav_scp_entry("sph2pipe -f wav /a/b.wv1 |", "x") == "/a/b.wv1"
    assert parse_wav_scp_entry("/usr/bin/sph2pipe -f wav -p /a/c.sph|", "x") == "/a/c.sph"
    with pytest.raises(KaldiDirError, match="wav.scp:7"):
        parse_wav_scp_entry("sox a.wav -t wav - |", "wav.scp:7")
    with pytest.raises(KaldiDirError, match="pipe"):
        parse_wav_scp_entry("sph2pipe -f wav -c 2 /a/b.sph |", "here")


def test_pipe_in_dir_names_the_line(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "wav.scp").write_text("a /x.wav\nb flac -dc b.flac |\n")
    (d / "text").write_text("a hi\nb there\n")
    with pytest.raises(KaldiDirError, match=r"wav.scp:2"):
        import_kaldi_dir(d)


def test_sphere_via_sph2pipe_imports(tmp_path: Path) -> None:
    p = tmp_path / "a.sph"
    sf.write(p, (np.random.randn(8000) * 1000).astype(np.int16), 16000, format="NIST")
    d = tmp_path / "d"
    d.mkdir()
    (d / "wav.scp").write_text(f"u1 sph2pipe -f wav {p} |\n")
    (d / "text").write_text("u1 hello\n")
    (utt,) = import_kaldi_dir(d)
    assert utt.audio == str(p) and abs(utt.duration - 0.5) < 1e-6 and utt.speaker is None
    export_kaldi_dir([utt], tmp_path / "out")
    assert (tmp_path / "out" / "utt2spk").read_text() == "u1 u1\n"
