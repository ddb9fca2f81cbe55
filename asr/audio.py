"""Audio reading: the first step of the data flow (audio -> features -> batches).

:func:`load_audio` turns any file the toolkit accepts (WAV, FLAC, OGG, NIST SPHERE with PCM or
shorten-compressed samples, as LDC's ``.wv1`` files) into a mono float32 waveform at the model's
sample rate, so nothing downstream has to care about formats, channel counts or rates. Every failure becomes an :class:`AudioError` that names
the file and the reason, because a corpus with one bad file among 100k should say which one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.sphere import SphereError, SphereHeader, read_sphere, read_sphere_header

DEFAULT_SAMPLE_RATE = 16000


class AudioError(ValueError):
    """An audio file could not be used; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass
class Audio:
    """A decoded mono waveform plus what it was before conversion."""

    waveform: torch.Tensor  # float32 (T,)
    sample_rate: int
    original_sample_rate: int
    original_channels: int
    path: str

    @property
    def duration(self) -> float:
        return self.waveform.numel() / self.sample_rate


def _sphere_header(path: Path) -> SphereHeader | None:
    try:
        return read_sphere_header(path)
    except SphereError as e:
        raise AudioError(path, str(e)) from None


def _check_complete(path: Path, info: Any, sphere: SphereHeader | None) -> None:
    """Raise if the header promises more audio than the file holds.

    libsndfile silently shortens truncated WAV/SPHERE files; a training set with half an
    utterance and its full transcript is worse than an error.
    """
    if "should be" in (info.extra_info or ""):
        raise AudioError(path, "truncated: the WAV header promises more data than the file holds")
    if sphere is not None:
        try:
            n = sphere.sample_count * sphere.channel_count * sphere.sample_n_bytes
        except SphereError:
            return
        have = path.stat().st_size - sphere.header_bytes
        if have < n:
            raise AudioError(
                path, f"truncated: SPHERE header promises {n} data bytes, file holds {have}"
            )


def audio_info(path: str | Path) -> tuple[float, int, int]:
    """(duration seconds, sample rate, channels) from the header only; raises AudioError."""
    p = Path(path)
    if not p.is_file():
        raise AudioError(p, "file not found")
    sphere = _sphere_header(p)
    if sphere is not None and sphere.is_shorten:  # libsndfile cannot read these
        try:
            return sphere.duration, sphere.sample_rate, sphere.channel_count
        except (SphereError, ZeroDivisionError) as e:
            raise AudioError(p, f"bad SPHERE header ({e})") from None
    try:
        info = sf.info(str(p))
    except Exception as e:  # soundfile raises several types; all mean "cannot read"
        raise AudioError(p, f"not a readable audio file ({e})") from e
    return info.frames / info.samplerate, int(info.samplerate), int(info.channels)


def load_audio(
    path: str | Path,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    offset: float = 0.0,
    duration: float | None = None,
) -> Audio:
    """Read ``path`` as mono float32 at ``sample_rate``.

    :param offset: start, in seconds (Kaldi ``segments`` / manifest ``offset``).
    :param duration: length in seconds to read; None reads to the end.
    :raises AudioError: missing, empty, truncated, corrupt or non-audio files.
    """
    p = Path(path)
    if not p.is_file():
        raise AudioError(p, "file not found")
    if p.stat().st_size == 0:
        raise AudioError(p, "file is empty (0 bytes)")
    if offset < 0 or (duration is not None and duration <= 0):
        raise AudioError(p, f"bad segment offset={offset} duration={duration}")
    sphere = _sphere_header(p)
    if sphere is not None and sphere.is_shorten:
        data, sr_in, channels = _read_shorten_sphere(p, sphere, offset, duration)
    else:
        data, sr_in, channels = _read_soundfile(p, sphere, offset, duration)
    if data.shape[0] == 0:
        raise AudioError(p, "audio has no samples")
    if not np.isfinite(data).all():
        raise AudioError(p, "audio contains NaN or infinite samples")
    wav = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)))
    if sr_in != sample_rate:
        wav = AF.resample(wav, sr_in, sample_rate)
    return Audio(wav.contiguous(), sample_rate, sr_in, channels, str(p))


def _segment(p: Path, frames: int, sr: int, offset: float, duration: float | None) -> slice:
    start = int(round(offset * sr))
    if start >= frames:
        raise AudioError(p, f"offset {offset:.3f}s is past the end ({frames / sr:.3f}s)")
    return slice(start, None if duration is None else start + int(round(duration * sr)))


def _read_soundfile(
    p: Path, sphere: SphereHeader | None, offset: float, duration: float | None
) -> tuple[np.ndarray, int, int]:
    """Everything libsndfile reads (WAV, FLAC, OGG, PCM SPHERE): (frames x channels, rate, ch)."""
    try:
        info = sf.info(str(p))
    except Exception as e:
        raise AudioError(p, f"not a readable audio file ({e})") from e
    _check_complete(p, info, sphere)
    sr_in, channels = int(info.samplerate), int(info.channels)
    if info.frames <= 0:
        raise AudioError(p, "audio has no samples")
    seg = _segment(p, info.frames, sr_in, offset, duration)
    try:
        data, _ = sf.read(str(p), start=seg.start, stop=seg.stop, dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(p, f"cannot decode audio, file may be truncated or corrupt ({e})") from e
    return data, sr_in, channels


def _read_shorten_sphere(
    p: Path, sphere: SphereHeader, offset: float, duration: float | None
) -> tuple[np.ndarray, int, int]:
    """SPHERE with embedded shorten (LDC ``.wv1``), decoded natively (:mod:`asr.sphere`)."""
    try:
        data, _ = read_sphere(p, sphere)
        sr_in = sphere.sample_rate
    except SphereError as e:
        raise AudioError(p, str(e)) from None
    if data.shape[0] == 0:
        raise AudioError(p, "audio has no samples")
    return data[_segment(p, data.shape[0], sr_in, offset, duration)], sr_in, data.shape[1]
