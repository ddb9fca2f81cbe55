"""Long recordings cut at their pauses: the pause finder on synthetic speech-like bursts over a
drifting noise floor, and long inputs decoded segment by segment into one result."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import asr.inference as tr
import asr.inference.transcriber
from asr.decode import Hypothesis, WordTiming
from asr.inference import AudioItem, join_segments
from asr.inference.segmenter import PauseConfig, find_segments, frame_levels_db
from asr.transcripts import Result

from .fakes import CharTokenizer, FakePackage

SR = 16000


def _recording(rng: np.random.Generator, n_bursts: int, pause=(0.4, 1.5), burst=(1.0, 6.0)):
    """Bursts of loud noise rising and falling like syllables (with brief dips, as between
    words) separated by pauses of quiet noise whose level drifts by 20 dB along the recording;
    returns (samples, burst spans)."""
    pieces, spans, t = [], [], 0.0
    lead = rng.uniform(0.2, 1.0)
    floor_db = rng.uniform(-60, -40)
    drift = np.linspace(0, 20, 2 * n_bursts + 1)
    for k in range(n_bursts):
        quiet = lead if k == 0 else rng.uniform(*pause)
        level = 10 ** ((floor_db + drift[2 * k]) / 20)
        pieces.append(level * rng.standard_normal(int(quiet * SR)))
        t += quiet
        seconds = rng.uniform(*burst)
        n = int(seconds * SR)
        speech = 10 ** ((floor_db + drift[2 * k] + rng.uniform(20, 35)) / 20) * rng.standard_normal(
            n
        )
        syllables = np.abs(
            np.sin(np.pi * rng.uniform(3, 5) * np.arange(n) / SR + rng.uniform(0, 3))
        )
        env = 0.1 + 0.9 * syllables  # speech rises and falls ~4 times a second
        for second in range(int(seconds) - 1):  # one 50-120 ms dip a second: not pauses
            a = int((second + rng.uniform(0.3, 0.7)) * SR)
            env[a : a + int(rng.uniform(0.05, 0.12) * SR)] = 0.05
        pieces.append(speech * env)
        spans.append((t, t + seconds))
        t += seconds
    pieces.append(10 ** ((floor_db + drift[-1]) / 20) * rng.standard_normal(int(0.5 * SR)))
    wav = np.concatenate(pieces)
    # scaled to a 0.9 peak, as a recorder's gain would be: written to FLAC, louder audio clips
    # at full scale, and clipped bursts lose the rise and fall that tells speech from noise
    return (0.9 / np.abs(wav).max() * wav).astype(np.float32), spans


def _levels(wav: np.ndarray) -> np.ndarray:
    n = len(wav) // 160
    power = np.square(wav[: n * 160].reshape(n, 160).astype(np.float64)).mean(axis=1)
    return 10 * np.log10(np.maximum(power, 1e-10))


def test_segments_are_the_bursts(np_rng):
    wav, spans = _recording(np_rng, int(np_rng.integers(5, 15)))
    cfg = PauseConfig()
    segments = find_segments(_levels(wav), cfg)
    assert len(segments) == len(spans)
    for (start, end), (a, b) in zip(segments, spans, strict=True):
        assert start <= a + 0.05 and end >= b - 0.05  # the whole burst is inside
        assert start >= a - cfg.pad_s - 0.05 and end <= b + cfg.pad_s + 0.05  # little else
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(segments, segments[1:], strict=False))


def test_long_speech_without_pauses_is_cut_to_fit(np_rng):
    wav, spans = _recording(np_rng, 2, burst=(25.0, 40.0))
    cfg = PauseConfig(max_segment_s=float(np_rng.uniform(6.0, 12.0)))
    segments = find_segments(_levels(wav), cfg)
    assert len(segments) > 2
    assert all(e - s <= cfg.max_segment_s + 2 * cfg.pad_s for s, e in segments)
    covered = sum(e - s for s, e in segments)
    assert covered >= sum(b - a for a, b in spans) - 1.0  # cuts lose at most the dips


def test_silence_has_no_segments():
    assert find_segments(np.full(3000, -100.0)) == []
    assert find_segments(np.zeros(0)) == []
    noise = 10 * np.log10(np.random.default_rng(0).uniform(0.9, 1.1, 5000) * 1e-5)
    assert find_segments(noise) == []  # steady noise without louder speech


def test_levels_are_read_in_blocks_exactly(tmp_path, np_rng):
    wav = (0.1 * np_rng.standard_normal(int(SR * np_rng.uniform(5, 8)))).astype(np.float32)
    stereo = np.stack([wav, 0.5 * wav], axis=1)
    sf.write(tmp_path / "a.wav", stereo, SR, subtype="FLOAT")
    offset, duration = 1.23, 3.0
    got = frame_levels_db(tmp_path / "a.wav", offset, duration, block_s=0.37)
    part = stereo.mean(axis=1)[round(offset * SR) : round((offset + duration) * SR)]
    np.testing.assert_allclose(got, _levels(part), atol=1e-4)


def test_join_segments_shifts_times_and_weighs_confidence():
    item = AudioItem("rec", "rec.wav", offset=10.0)

    def res(text, start, conf, n_tok):
        words = [
            WordTiming(w, start + i, start + i + 0.5, conf) for i, w in enumerate(text.split())
        ]
        hyp = Hypothesis(text, list(range(n_tok)), words, -1.0, conf)
        return Result("x", "rec.wav", text, words, conf, 3.0, None, [hyp])

    parts = [
        (AudioItem("rec~0", "rec.wav", 10.5, 3.0), res("a b", 0.1, 0.9, 3)),
        (AudioItem("rec~1", "rec.wav", 15.0, 2.0), res("", 0.0, 1.0, 0)),
        (AudioItem("rec~2", "rec.wav", 20.0, 3.0), res("c", 0.2, 0.5, 1)),
    ]
    r = join_segments(item, 13.0, parts)
    assert r.id == "rec" and r.text == "a b c" and r.duration == 13.0
    assert [(w.word, w.start) for w in r.words] == [("a", 0.6), ("b", 1.6), ("c", 10.2)]
    assert r.confidence == pytest.approx((0.9 * 3 + 0.5) / 4)
    failed = Result("x", "rec.wav", error="rec.wav: unreadable")
    assert join_segments(item, 13.0, [*parts, (parts[0][0], failed)]).error == failed.error


@pytest.fixture
def package(monkeypatch):
    pkg = FakePackage(CharTokenizer(), text="hi there")
    monkeypatch.setattr(asr.inference.transcriber, "load_model_package", lambda path: pkg)
    return pkg


def test_a_long_input_decodes_segment_by_segment(tmp_path, package, np_rng):
    wav, spans = _recording(np_rng, int(np_rng.integers(8, 14)), burst=(2.0, 8.0))
    sf.write(tmp_path / "long.flac", wav, SR)
    short = tmp_path / "short.wav"
    sf.write(short, 0.1 * np_rng.standard_normal(SR).astype(np.float32), SR)
    out = tmp_path / "hyp.jsonl"
    args = [str(short), str(tmp_path / "long.flac"), str(short), "-o", str(out), "--no-progress"]
    assert tr.main(["m", *args, "--long-audio-seconds", "30"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["short", "long", "short-1"]
    long = rows[1]
    assert long["text"] == " ".join(["hi there"] * len(spans))  # the fake spells it per segment
    starts = [w["start"] for w in long["words"][::2]]
    for start, (a, b) in zip(starts, spans, strict=True):
        assert a - 0.3 <= start <= b  # each segment's words sit in its burst, file-relative
    assert long["duration"] == pytest.approx(len(wav) / SR, abs=0.01)
    # the model saw segments no longer than a burst plus padding, never the whole file
    assert max(shape[1] for shape in package.calls) <= (8.0 + 0.6) * 100


def test_modes_for_long_audio(tmp_path, package, np_rng):
    wav, spans = _recording(np_rng, 6, burst=(3.0, 5.0))
    sf.write(tmp_path / "long.wav", wav, SR)
    seconds = len(wav) / SR
    for mode, most_frames in (
        ("whole", seconds * 100),
        ("chunk", (10 + 2 * 1) * 100),
        ("segment", (5 + 0.6) * 100),
    ):
        package.calls.clear()
        (r,) = tr.transcribe(
            package,
            tmp_path / "long.wav",
            long_audio=mode,
            long_audio_seconds=10,
            chunk_seconds=10,
            chunk_overlap_seconds=1,
        )
        assert r.error is None and r.text
        assert max(shape[1] for shape in package.calls) <= most_frames + 1, mode
    with pytest.raises(ValueError, match="long_audio must be"):
        tr.DecodeOptions(long_audio="stream")
