"""Audio for streaming recognition as it arrives: files, pipes and stdin, WAV or raw PCM.

The reading end of ``asr-decode --stream``: :func:`open_source` returns an :class:`AudioSource`
whose :meth:`~AudioSource.blocks` yields float32 mono blocks at the stream's rate as the bytes
come in. A stream that goes wrong midway (a pipe closing mid-sample, a WAV header promising
more audio than arrives, NaN samples) stops yielding and keeps one line in
:attr:`AudioSource.error`, so the caller prints the words recognised so far first and then the
reason. Problems known before the first sample (a missing file, a rate the model does not take,
stdin that is no WAV and no raw format given) raise :class:`StreamInputError` at once.

WAV is parsed here rather than by libsndfile because libsndfile needs a seekable file (no
pipes) and silently shortens a WAV whose header promises more data than the file holds.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

#: PCM sample encodings: name -> (bytes per sample, numpy dtype, scale to [-1, 1]).
ENCODINGS: dict[str, tuple[int, str, float]] = {
    "s16le": (2, "<i2", 1 / 32768),
    "s24le": (3, "", 1 / 8388608),
    "s32le": (4, "<i4", 1 / 2147483648),
    "f32le": (4, "<f4", 1.0),
    "f64le": (8, "<f8", 1.0),
    "u8": (1, "u1", 1 / 128),
    "s8": (1, "i1", 1 / 128),
}
#: data-chunk sizes that mean "length unknown": 0 and from here up, where the placeholders that
#: writers put in pipes lie (sox 0x7FFFF000, ffmpeg 0xFFFFFFFF); a real chunk this big would be
#: over 18 hours of 16 kHz 16-bit audio.
UNKNOWN_WAV_SIZE_FROM = 0x7FFF0000
_WAVE_FORMAT_PCM, _WAVE_FORMAT_FLOAT, _WAVE_FORMAT_EXTENSIBLE = 1, 3, 0xFFFE


class StreamInputError(ValueError):
    """An input that cannot be streamed at all; the message is one line naming it."""


@dataclass
class RawFormat:
    """Headerless PCM (``sox ... -t raw -``): the rate must be given, as sox cannot say it.

    :param rate: samples per second.
    :param encoding: one of :data:`ENCODINGS` (sox's default for 16-bit input is ``s16le``).
    :param channels: interleaved channels, averaged to mono.
    """

    rate: int
    encoding: str = "s16le"
    channels: int = 1

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise StreamInputError(
                f"--raw-format {self.encoding!r} is not one of {', '.join(ENCODINGS)}"
            )
        if self.rate <= 0 or self.channels <= 0:
            raise StreamInputError(
                f"--raw-rate and --raw-channels must be > 0, got {self.rate} and {self.channels}"
            )


class AudioSource:
    """Float32 mono blocks of one input at :attr:`sample_rate`; see the module doc.

    :param name: the input as the user named it (``-`` for stdin), for messages.
    """

    def __init__(
        self,
        name: str,
        stream: BinaryIO,
        fmt: RawFormat,
        data_bytes: int | None = None,
    ) -> None:
        self.name = name
        self.sample_rate = fmt.rate
        self.format = fmt
        self.error: str | None = None
        self.samples = 0
        self._stream = stream
        self._data_bytes = data_bytes  # None: read to the end

    @property
    def frame_bytes(self) -> int:
        return ENCODINGS[self.format.encoding][0] * self.format.channels

    def blocks(self, block_s: float) -> Iterator[np.ndarray]:
        """Yield blocks of about ``block_s`` seconds until the end or an error."""
        frame = self.frame_bytes
        want = max(1, int(block_s * self.sample_rate)) * frame
        left = self._data_bytes
        carry = b""
        got = 0
        while left is None or left > 0:
            n = want if left is None else min(want, left)
            fresh = self._stream.read(n)  # a buffered read: short only at the end
            got += len(fresh)
            if left is not None:
                left -= len(fresh)
            data = carry + fresh
            whole = len(data) // frame * frame
            carry = data[whole:]
            if whole:
                samples = self._decode(data[:whole])
                finite = np.isfinite(samples)
                if not finite.all():
                    bad = self.samples + int(np.argmin(finite))
                    self.error = f"{self.name}: sample {bad} is NaN or infinite"
                    return
                self.samples += samples.size
                yield samples
            if len(fresh) < n:
                break
        if carry:
            self.error = (
                f"{self.name}: the stream ended mid-sample: {len(carry)} trailing bytes are not a "
                f"whole {frame}-byte sample frame ({self.format.channels} channel(s) of "
                f"{self.format.encoding})"
            )
        elif left:
            self.error = (
                f"{self.name}: the WAV header promises {self._data_bytes} bytes of audio but the "
                f"stream ended after {got} (a truncated file, or a header that lies)"
            )

    def _decode(self, data: bytes) -> np.ndarray:
        size, dtype, scale = ENCODINGS[self.format.encoding]
        if self.format.encoding == "s24le":
            b = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            x = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8  # sign-extend
        else:
            x = np.frombuffer(data, dtype=dtype)
        x = x.astype(np.float32)
        if self.format.encoding == "u8":
            x = x - 128.0
        x = x * np.float32(scale)
        if self.format.channels > 1:
            x = x.reshape(-1, self.format.channels).mean(axis=1, dtype=np.float32)
        return x

    def close(self) -> None:
        if self._stream is not sys.stdin.buffer:
            self._stream.close()


def open_source(name: str, raw: RawFormat | None = None) -> AudioSource:
    """Open a file path, or ``-`` for stdin, as WAV (its header) or raw PCM (``raw``).

    :raises StreamInputError: the input cannot be streamed at all (one line saying why).
    """
    if name == "-":
        stream: BinaryIO = sys.stdin.buffer
    else:
        path = Path(name)
        if not path.is_file():
            raise StreamInputError(f"{name}: file not found")
        stream = open(path, "rb")  # noqa: SIM115 (closed by AudioSource.close)
    if raw is not None:
        return AudioSource(name, stream, raw)
    head = _read_exact(stream, 12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _wav_source(name, stream)
    stream.close() if name != "-" else None
    if name == "-":
        raise StreamInputError(
            "-: stdin is not a WAV stream; for headerless PCM give --raw-rate (and --raw-format, "
            "--raw-channels)"
        )
    raise StreamInputError(
        f"{name}: not a WAV file; stream other formats through sox, e.g. "
        f"`sox {name} -t wav - | asr-decode --stream MODEL -`"
    )


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _wav_source(name: str, stream: BinaryIO) -> AudioSource:
    fmt: RawFormat | None = None
    while True:
        header = _read_exact(stream, 8)
        if len(header) < 8:
            raise StreamInputError(f"{name}: WAV stream ends before its data chunk")
        chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
        if chunk_id == b"fmt ":
            body = _read_exact(stream, size + size % 2)
            fmt = _wav_format(name, body)
        elif chunk_id == b"data":
            if fmt is None:
                raise StreamInputError(f"{name}: WAV data chunk comes before its fmt chunk")
            data_bytes = None if size == 0 or size >= UNKNOWN_WAV_SIZE_FROM else size
            return AudioSource(name, stream, fmt, data_bytes)
        else:  # LIST, fact, ...: skip
            if len(_read_exact(stream, size + size % 2)) < size:
                raise StreamInputError(f"{name}: WAV stream ends inside its {chunk_id!r} chunk")


def _wav_format(name: str, body: bytes) -> RawFormat:
    if len(body) < 16:
        raise StreamInputError(f"{name}: WAV fmt chunk is {len(body)} bytes, expected >= 16")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID starts with the tag
    encodings = {
        (_WAVE_FORMAT_PCM, 8): "u8",
        (_WAVE_FORMAT_PCM, 16): "s16le",
        (_WAVE_FORMAT_PCM, 24): "s24le",
        (_WAVE_FORMAT_PCM, 32): "s32le",
        (_WAVE_FORMAT_FLOAT, 32): "f32le",
        (_WAVE_FORMAT_FLOAT, 64): "f64le",
    }
    if (tag, bits) not in encodings:
        raise StreamInputError(
            f"{name}: WAV format tag {tag} with {bits}-bit samples is not PCM or float; "
            "convert it, e.g. `sox IN -e signed -b 16 -t wav -`"
        )
    if channels < 1 or rate < 1:
        raise StreamInputError(f"{name}: WAV header says {channels} channels at {rate} Hz")
    return RawFormat(rate=rate, encoding=encodings[(tag, bits)], channels=channels)
