"""``asr-decode --stream``: files, pipes and stdin; broken streams end after their words with one
clear line; a bidirectional model is refused naming the config that trains a streaming one."""

import io
import json
import struct
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.bundle import write_bundle
from asr.lm import NgramConfig, build_kn_lm, write_lexicon
from asr.package import load_package
from asr.stream import Recognizer
from asr.stream.cli import main
from asr.stream.sources import open_source

from .helpers import WORDS, make_package, speechy


@pytest.fixture
def model(tmp_path):
    return str(make_package(tmp_path / "m.safetensors", chunk_ms=160)[0])


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _finals_text(events: list[dict]) -> str:
    return " ".join(e["text"] for e in events if e["type"] == "final")


def _expected(model: str, wav: torch.Tensor) -> str:
    rec = Recognizer(model)
    texts = [r.text for r in rec.accept_waveform(wav) if r.kind == "final"]
    return " ".join([*texts, rec.finalize().text]).strip()


def _pcm16(wav: torch.Tensor) -> bytes:
    return (wav.clamp(-1, 1) * 32767).round().to(torch.int16).numpy().tobytes()


def _quantised(wav: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(_pcm16(wav), dtype="<i2").astype(np.float32) / 32768)


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_wav_file_gives_partials_finals_with_word_times_and_a_summary(tmp_path, model, capsys):
    wav = _quantised(speechy(4.0))
    sf.write(tmp_path / "a.wav", wav.numpy(), 16000, subtype="PCM_16")
    assert main([model, str(tmp_path / "a.wav"), "--endpoint-silence-s", "0.5"]) == 0
    events = _events(capsys.readouterr().out)
    assert {e["type"] for e in events} >= {"partial", "final"} and events[-1]["type"] == "summary"
    assert _finals_text(events) == _expected(model, wav)
    words = [w for e in events if e["type"] == "final" for w in e["words"]]
    assert words and all(0 <= w["start"] <= w["end"] <= 4.0 for w in words)
    summary = events[-1]
    assert summary["audio_seconds"] == pytest.approx(4.0) and summary["rtf"] > 0
    assert summary["lookahead_ms"] == {"min": 45.0, "max": 165.0} and summary["error"] is None
    assert summary["chunk_compute_ms"]["median"] > 0


def test_raw_pipe_on_stdin_equals_the_file(tmp_path, model, capsys, monkeypatch):
    wav = _quantised(speechy(3.0))
    _stdin(monkeypatch, _pcm16(wav))
    assert main([model, "-", "--raw-rate", "16000", "--format", "text"]) == 0
    assert capsys.readouterr().out == f"stdin {_expected(model, wav)}".rstrip() + "\n"


def test_wav_on_stdin_with_unknown_length(model, capsys, monkeypatch):
    wav = _quantised(speechy(2.0))
    header = _wav_header(16000, 1, 16, 0x7FFFF000)  # what sox writes into a pipe
    _stdin(monkeypatch, header + _pcm16(wav))
    assert main([model, "-", "--format", "text"]) == 0
    assert capsys.readouterr().out == f"stdin {_expected(model, wav)}".rstrip() + "\n"


def _wav_header(rate: int, channels: int, bits: int, data_bytes: int, tag: int = 1) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes & 0xFFFFFFFF) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data_bytes)
    )  # fmt: skip


def test_pipe_closing_mid_sample_prints_words_then_one_error_line(model, capsys, monkeypatch):
    wav = _quantised(speechy(3.0))
    _stdin(monkeypatch, _pcm16(wav) + b"\x01")
    assert main([model, "-", "--raw-rate", "16000"]) == 1
    out, err = capsys.readouterr()
    events = _events(out)
    assert _finals_text(events) == _expected(model, wav) and events[-1]["type"] == "summary"
    assert "mid-sample" in err.strip().splitlines()[-1]


def test_wav_header_that_lies_prints_words_then_one_error_line(tmp_path, model, capsys):
    wav = _quantised(speechy(3.0))
    data = _pcm16(wav)
    (tmp_path / "lie.wav").write_bytes(_wav_header(16000, 1, 16, 2 * len(data)) + data)
    assert main([model, str(tmp_path / "lie.wav"), "--format", "text"]) == 1
    out, err = capsys.readouterr()
    assert out == f"lie {_expected(model, wav)}".rstrip() + "\n"
    last = err.strip().splitlines()[-1]
    assert last.startswith("asr-decode: error:") and "promises" in last and "lie.wav" in last


def test_rate_that_does_not_match_is_one_clear_line(tmp_path, model, capsys, monkeypatch):
    sf.write(tmp_path / "low.wav", speechy(1.0).numpy()[::2], 8000)
    assert main([model, str(tmp_path / "low.wav")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "8000 Hz but the model takes 16000 Hz" in err[-1] and "sox" in err[-1]
    _stdin(monkeypatch, b"\0" * 3200)
    assert main([model, "-", "--raw-rate", "8000"]) == 1
    assert "--raw-rate says 8000 Hz" in capsys.readouterr().err


def test_bidirectional_model_is_refused_naming_the_config(tmp_path, capsys):
    path = make_package(tmp_path / "bi.safetensors", streaming=False)[0]
    sf.write(tmp_path / "a.wav", speechy(1.0).numpy(), 16000)
    assert main([str(path), str(tmp_path / "a.wav")]) == 2
    err = capsys.readouterr().err
    assert "bidirectional" in err and "demo_streaming.yaml" in err and len(err.splitlines()) == 1


def test_long_silence_then_speech(tmp_path, model, capsys):
    speech = _quantised(speechy(2.0))
    wav = torch.cat([torch.zeros(16000 * 40), speech])
    sf.write(tmp_path / "quiet.wav", wav.numpy(), 16000, subtype="PCM_16")
    assert main([model, str(tmp_path / "quiet.wav"), "--endpoint-max-segment-s", "5"]) == 0
    events = _events(capsys.readouterr().out)
    finals = [e for e in events if e["type"] == "final"]
    words = [w for e in finals for w in e["words"]]
    assert words and 40.0 < words[-1]["end"] <= 42.0  # times count the silence
    assert all(a["start"] <= b["start"] for a, b in zip(words, words[1:], strict=False))
    spans = [(e["start"], e["words"][-1]["end"]) for e in finals]
    assert all(end - start <= 2 * 5 + 0.2 for start, end in spans)  # segments stay bounded
    assert events[-1]["audio_seconds"] == pytest.approx(42.0)


@pytest.mark.parametrize(
    "subtype,channels", [("PCM_16", 2), ("PCM_24", 1), ("FLOAT", 1), ("PCM_32", 3)]
)
def test_wav_encodings_decode_like_soundfile(tmp_path, subtype, channels):
    data = (0.5 * np.random.default_rng().standard_normal((1000, channels))).clip(-1, 1)
    sf.write(tmp_path / "x.wav", data.astype(np.float32), 16000, subtype=subtype)
    ref, _ = sf.read(tmp_path / "x.wav", dtype="float32", always_2d=True)
    source = open_source(str(tmp_path / "x.wav"))
    got = np.concatenate(list(source.blocks(0.01)))
    source.close()
    np.testing.assert_allclose(got, ref.mean(axis=1), rtol=0, atol=1e-6)
    assert source.error is None


def test_decoding_bundle_gives_the_defaults_and_flags_override_it(tmp_path, capsys):
    """A recipe's package carries its lexicon, LM and search options: --stream uses them as
    asr-decode does offline; a flag, 'none' or --units overrides them."""
    path, corpus = make_package(tmp_path / "m.safetensors")
    pkg = load_package(path)
    build_kn_lm(corpus, NgramConfig(order=3)).write_arpa(tmp_path / "lm.arpa")
    write_lexicon(pkg.tokenizer, WORDS, tmp_path / "lexicon.txt")
    plain = str(path)
    bundled = str(tmp_path / "bundled.safetensors")
    options = {"beam_size": 10, "lm_weight": 1.0}
    write_bundle(plain, tmp_path / "lexicon.txt", tmp_path / "lm.arpa", options, out=bundled)
    files = ["--lexicon", str(tmp_path / "lexicon.txt"), "--lm", str(tmp_path / "lm.arpa")]

    def text(model: str, *flags: str) -> str:
        assert main([model, str(tmp_path / "a.wav"), "--format", "text", *flags]) == 0
        return capsys.readouterr().out.strip().partition(" ")[2].strip()  # after the id

    for _ in range(5):  # the random model may end its only word unfinished: then no word at all
        sf.write(tmp_path / "a.wav", _quantised(speechy(3.0)).numpy(), 16000, subtype="PCM_16")
        beam = text(plain, "--search", "beam", "--beam-size", "10", "--lm-weight", "1", *files)
        if beam:
            break
    assert beam and beam != text(plain)  # words through the lexicon, not the model's units
    assert text(bundled) == beam
    assert text(bundled, "--units") == text(plain)  # the model's own units, greedy
    no_lm = text(
        plain, "--search", "beam", "--beam-size", "10", "--lm-weight", "1", files[0], files[1]
    )
    assert text(bundled, "--lm", "none") == no_lm
