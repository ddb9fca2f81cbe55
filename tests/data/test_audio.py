"""load_audio: formats, resampling, downmixing, segments and every bad-input case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio import AudioError, load_audio


def dominant_freq(wav: torch.Tensor, sr: int) -> float:
    spec = np.abs(np.fft.rfft(wav.numpy() * np.hanning(wav.numel())))
    return float(np.argmax(spec) * sr / wav.numel())


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("a.wav", {}),
        ("a.flac", {}),
        ("a.ogg", {"format": "OGG", "subtype": "VORBIS"}),
        ("a.sph", {"format": "NIST", "subtype": "PCM_16"}),
        ("a24.wav", {"subtype": "PCM_24"}),
    ],
)
def test_formats_read_as_mono_float32(write_tone, name, kwargs) -> None:
    freq = float(np.random.uniform(300, 3000))
    p = write_tone(name, freq=freq, seconds=0.5, **kwargs)
    a = load_audio(p)
    assert a.waveform.dtype == torch.float32 and a.waveform.ndim == 1
    assert a.sample_rate == 16000 and a.original_channels == 1
    assert abs(a.waveform.numel() - 8000) <= 1 or name.endswith(".ogg")
    assert abs(dominant_freq(a.waveform, 16000) - freq) < 5
    assert a.path == str(p)


def test_sphere_header_and_samples_match(tmp_path: Path) -> None:
    x = (np.random.randn(4000) * 3000).astype(np.int16)
    p = tmp_path / "x.sph"
    sf.write(p, x, 16000, format="NIST", subtype="PCM_16")
    assert p.read_bytes().startswith(b"NIST_1A")
    got = load_audio(p).waveform.numpy()
    np.testing.assert_allclose(got, x / 32768.0, atol=1e-6)


@pytest.mark.parametrize("sr", [8000, 44100, 22050])
def test_resampling_keeps_frequency(write_tone, sr) -> None:
    p = write_tone(f"r{sr}.wav", freq=1000.0, seconds=1.0, sr=sr)
    a = load_audio(p)
    assert a.original_sample_rate == sr and a.sample_rate == 16000
    assert abs(a.waveform.numel() - 16000) <= 2
    assert abs(dominant_freq(a.waveform, 16000) - 1000.0) < 3


def test_downmix_averages_channels(tmp_path: Path) -> None:
    x = np.random.uniform(-0.5, 0.5, size=(1600, 3)).astype(np.float32)
    p = tmp_path / "multi.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    a = load_audio(p)
    assert a.original_channels == 3
    np.testing.assert_allclose(a.waveform.numpy(), x.mean(axis=1), atol=1e-6)


def test_offset_and_duration_read_a_segment(tmp_path: Path) -> None:
    x = np.random.uniform(-0.5, 0.5, size=16000).astype(np.float32)
    p = tmp_path / "seg.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    a = load_audio(p, offset=0.25, duration=0.5)
    np.testing.assert_allclose(a.waveform.numpy(), x[4000:12000], atol=1e-7)


def _expect(path: Path, fragment: str, **kw) -> None:
    with pytest.raises(AudioError) as e:
        load_audio(path, **kw)
    assert str(path) in str(e.value) and fragment in str(e.value)
    assert isinstance(e.value, ValueError)


def test_missing_file(tmp_path: Path) -> None:
    _expect(tmp_path / "nope.wav", "not found")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    _expect(p, "empty")


def test_non_audio_file(tmp_path: Path) -> None:
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio at all " * 20)
    _expect(p, "not a readable audio file")


def test_zero_sample_wav(tmp_path: Path) -> None:
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros(0, dtype=np.float32), 16000)
    _expect(p, "no samples")


@pytest.mark.parametrize(
    "name,kwargs", [("t.wav", {}), ("t.sph", {"format": "NIST"}), ("t.flac", {})]
)
def test_truncated_file(write_tone, name, kwargs) -> None:
    p = write_tone(name, seconds=1.0, **kwargs)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(AudioError) as e:
        load_audio(p)
    assert str(p) in str(e.value)
    assert "truncated" in str(e.value) or "corrupt" in str(e.value)


def test_shorten_sphere_with_garbage_stream_is_named(tmp_path: Path) -> None:
    header = (
        b"NIST_1A\n   1024\nsample_count -i 100\nsample_rate -i 16000\n"
        b"sample_coding -s26 pcm,embedded-shorten-v2.00\nend_head\n"
    )
    p = tmp_path / "wsj.wv1"
    p.write_bytes(header.ljust(1024, b" ") + b"\x00" * 100)
    _expect(p, "corrupt shorten stream")


def test_offset_past_end(write_tone) -> None:
    p = write_tone("short.wav", seconds=0.2)
    _expect(p, "past the end", offset=1.0)
