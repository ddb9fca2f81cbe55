"""Audio reading: the first step of the data flow (audio -> features -> batches).

:func:`load_audio` turns any file the toolkit accepts (WAV, FLAC, OGG, NIST SPHERE with plain
PCM) into a mono float32 waveform at the model's sample rate, so nothing downstream has to care
about formats, channel counts or rates. Every failure becomes an :class:`AudioError` that names
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

DEFAULT_SAMPLE_RATE = 16000
SPHERE_MAGIC = b"NIST_1A"
SPHERE_HEADER_BYTES = 1024


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


def _sphere_header(path: Path) -> dict[str, str] | None:
    """The fields of a NIST SPHERE header (``name -type value`` lines), or None if not SPHERE."""
    with open(path, "rb") as f:
        head = f.read(SPHERE_HEADER_BYTES)
    if not head.startswith(SPHERE_MAGIC):
        return None
    fields: dict[str, str] = {}
    for line in head.decode("ascii", errors="replace").splitlines()[2:]:
        parts = line.split(None, 2)
        if parts and parts[0] == "end_head":
            break
        if len(parts) == 3:
            fields[parts[0]] = parts[2].strip()
    return fields


def _check_complete(path: Path, info: Any, sphere: dict[str, str] | None) -> None:
    """Raise if the header promises more audio than the file holds.

    libsndfile silently shortens truncated WAV/SPHERE files; a training set with half an
    utterance and its full transcript is worse than an error.
    """
    if "should be" in (info.extra_info or ""):
        raise AudioError(path, "truncated: the WAV header promises more data than the file holds")
    if sphere is not None:
        try:
            n = int(sphere["sample_count"]) * int(sphere.get("channel_count", "1"))
            n *= int(sphere.get("sample_n_bytes", "2"))
        except (KeyError, ValueError):
            return
        have = path.stat().st_size - int(open(path, "rb").read(16).split()[1])
        if have < n:
            raise AudioError(
                path, f"truncated: SPHERE header promises {n} data bytes, file holds {have}"
            )


def audio_info(path: str | Path) -> tuple[float, int, int]:
    """(duration seconds, sample rate, channels) from the header only; raises AudioError."""
    p = Path(path)
    if not p.is_file():
        raise AudioError(p, "file not found")
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
    :raises AudioError: missing, empty, truncated, compressed-SPHERE or non-audio files.
    """
    p = Path(path)
    if not p.is_file():
        raise AudioError(p, "file not found")
    if p.stat().st_size == 0:
        raise AudioError(p, "file is empty (0 bytes)")
    sphere = _sphere_header(p)
    coding = (sphere or {}).get("sample_coding", "")
    if "shorten" in coding:
        raise AudioError(
            p,
            f"SPHERE file uses compressed sample_coding {coding!r}; convert it to PCM first "
            "(e.g. `sph2pipe -f wav IN OUT.wav`)",
        )
    try:
        info = sf.info(str(p))
    except Exception as e:
        raise AudioError(p, f"not a readable audio file ({e})") from e
    _check_complete(p, info, sphere)
    sr_in, channels = int(info.samplerate), int(info.channels)
    if info.frames <= 0:
        raise AudioError(p, "audio has no samples")
    if offset < 0 or (duration is not None and duration <= 0):
        raise AudioError(p, f"bad segment offset={offset} duration={duration}")
    start = int(round(offset * sr_in))
    stop = None if duration is None else start + int(round(duration * sr_in))
    if start >= info.frames:
        raise AudioError(p, f"offset {offset:.3f}s is past the end ({info.frames / sr_in:.3f}s)")
    try:
        data, _ = sf.read(str(p), start=start, stop=stop, dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(p, f"cannot decode audio, file may be truncated or corrupt ({e})") from e
    if data.shape[0] == 0:
        raise AudioError(p, "audio has no samples")
    if not np.isfinite(data).all():
        raise AudioError(p, "audio contains NaN or infinite samples")
    wav = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)))
    if sr_in != sample_rate:
        wav = AF.resample(wav, sr_in, sample_rate)
    return Audio(wav.contiguous(), sample_rate, sr_in, channels, str(p))
