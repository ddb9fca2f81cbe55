"""NIST SPHERE files: the header, and samples stored as PCM or as embedded shorten.

LDC's WSJ, TIMIT and many other corpora ship SPHERE files whose samples are shorten-compressed
(``sample_coding -s26 pcm,embedded-shorten-v2.00``); libsndfile reads only the PCM ones.
:func:`read_sphere` decodes both kinds (PCM here, shorten through :mod:`asr.shorten`), so
:func:`asr.audio.load_audio` accepts ``.wv1``/``.wv2``/``.sph`` without ``sph2pipe``.
:func:`write_sphere` writes either kind (tests, the miniature WSJ corpus).

Header: ``NIST_1A``, the header size in bytes (``   1024``), then ``name -type value`` lines
(``-i`` integer, ``-r`` real, ``-sN`` string of N characters) up to ``end_head``, padded to
the header size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr import shorten
from asr.shorten import format as shorten_format

SPHERE_MAGIC = b"NIST_1A"
DEFAULT_HEADER_BYTES = 1024
SHORTEN_CODING = "pcm,embedded-shorten-v2.00"
#: how to re-copy a damaged file: said in every error about one
RECOPY_HINT = "copy it again from the LDC disc"


class SphereError(ValueError):
    """A SPHERE file that cannot be read; the message says why (the caller adds the path)."""


@dataclass(frozen=True)
class SphereHeader:
    """A parsed header: every field as written (strings), plus typed accessors."""

    fields: dict[str, str] = field(default_factory=dict)
    header_bytes: int = DEFAULT_HEADER_BYTES

    def _int(self, name: str, default: int | None = None) -> int:
        value = self.fields.get(name)
        if value is None:
            if default is None:
                raise SphereError(f"SPHERE header has no {name}")
            return default
        try:
            return int(value)
        except ValueError:
            raise SphereError(f"SPHERE header field {name} is not an integer: {value!r}") from None

    @property
    def sample_rate(self) -> int:
        return self._int("sample_rate")

    @property
    def channel_count(self) -> int:
        return self._int("channel_count", 1)

    @property
    def sample_count(self) -> int:
        """Samples per channel."""
        return self._int("sample_count")

    @property
    def sample_n_bytes(self) -> int:
        return self._int("sample_n_bytes", 2)

    @property
    def sample_byte_format(self) -> str:
        """``01`` little-endian, ``10`` big-endian, ``1`` single bytes."""
        return self.fields.get("sample_byte_format", "01")

    @property
    def sample_coding(self) -> str:
        return self.fields.get("sample_coding", "pcm")

    @property
    def is_shorten(self) -> bool:
        return "shorten" in self.sample_coding

    @property
    def duration(self) -> float:
        return self.sample_count / self.sample_rate


def _header_size(head: bytes) -> int:
    try:
        return int(head.split(b"\n", 2)[1])
    except (IndexError, ValueError):
        raise SphereError("SPHERE header size (second line) is not a number") from None


def parse_sphere_header(head: bytes) -> SphereHeader | None:
    """Parse the start of a file (at least the whole header); ``None`` if it is not SPHERE."""
    if not head.startswith(SPHERE_MAGIC):
        return None
    size = _header_size(head)
    lines = head[:size].split(b"\n")
    fields: dict[str, str] = {}
    for raw in lines[2:]:
        line = raw.decode("ascii", errors="replace").rstrip("\r")
        name, _, rest = line.strip().partition(" ")
        if name == "end_head":
            break
        kind, _, value = rest.partition(" ")
        if not name or not kind.startswith("-"):
            continue  # padding or a comment
        if kind.startswith("-s") and kind[2:].isdigit():
            value = value[: int(kind[2:])]  # -sN: exactly N characters, spaces included
        fields[name] = value.strip() if not kind.startswith("-s") else value
    else:
        raise SphereError(f"SPHERE header has no end_head within {len(head)} bytes (truncated?)")
    return SphereHeader(fields, size)


def read_sphere_header(path: str | Path) -> SphereHeader | None:
    """The header of ``path``, or ``None`` if it is not a SPHERE file."""
    with open(path, "rb") as f:
        head = f.read(DEFAULT_HEADER_BYTES)
        if not head.startswith(SPHERE_MAGIC):
            return None
        size = _header_size(head)
        if size > len(head):
            head += f.read(size - len(head))
    return parse_sphere_header(head)


def read_sphere(
    path: str | Path, header: SphereHeader | None = None
) -> tuple[np.ndarray, SphereHeader]:
    """Samples ``(frames, channels)`` as float32 in [-1, 1), and the header.

    :raises SphereError: not SPHERE, an unsupported coding, a corrupt or truncated stream.
    """
    header = header or read_sphere_header(path)
    if header is None:
        raise SphereError("not a NIST SPHERE file (no NIST_1A header)")
    data = Path(path).read_bytes()[header.header_bytes :]
    channels, count, width = header.channel_count, header.sample_count, header.sample_n_bytes
    if width != 2:
        raise SphereError(f"sample_n_bytes {width} is not supported (16-bit PCM only)")
    if header.is_shorten:
        try:
            samples, sh = shorten.decode(data, expected_samples=count * channels)
        except shorten.ShortenError as e:
            if "ends" in str(e):  # the decoders' words for data that stops early
                raise SphereError(f"truncated: shorten {e}; {RECOPY_HINT}") from None
            raise SphereError(f"corrupt shorten stream ({e}); {RECOPY_HINT}") from None
        if sh.channels != channels:
            raise SphereError(
                f"shorten stream has {sh.channels} channels, header says {channels}; {RECOPY_HINT}"
            )
    elif header.sample_coding.split(",")[0] == "pcm":
        dtype = ">i2" if header.sample_byte_format == "10" else "<i2"
        usable = len(data) // (2 * channels) * (2 * channels)
        samples = np.frombuffer(data[:usable], dtype=dtype).reshape(-1, channels)
    else:
        raise SphereError(f"sample_coding {header.sample_coding!r} is not supported")
    if samples.size and (samples.min() < -32768 or samples.max() > 32767):
        raise SphereError(
            f"corrupt shorten stream (samples out of the 16-bit range); {RECOPY_HINT}"
        )
    if samples.shape[0] < count:
        raise SphereError(
            f"truncated: the header promises {count} samples, the file holds {samples.shape[0]}; "
            f"{RECOPY_HINT}"
        )
    return (samples[:count].astype(np.float32) / 32768.0), header


def format_sphere_header(fields: dict[str, str | int], header_bytes: int) -> bytes:
    """Header bytes: typed ``name -type value`` lines, ``end_head``, space padding."""
    lines = [SPHERE_MAGIC.decode(), f"{header_bytes:7d}"]
    for name, value in fields.items():
        if isinstance(value, int):
            lines.append(f"{name} -i {value}")
        elif isinstance(value, float):
            lines.append(f"{name} -r {value}")
        else:
            lines.append(f"{name} -s{len(value)} {value}")
    text = ("\n".join([*lines, "end_head"]) + "\n").encode("ascii")
    if len(text) > header_bytes:
        raise ValueError(f"SPHERE header needs {len(text)} bytes, more than {header_bytes}")
    return text.ljust(header_bytes, b" ")


def write_sphere(
    path: str | Path,
    samples: np.ndarray,
    sample_rate: int,
    coding: str = "shorten",
    byte_format: str = "10",
    fields: dict[str, str | int] | None = None,
    options: shorten.EncoderOptions | None = None,
) -> None:
    """Write int16 samples ``(T,)`` or ``(T, channels)`` as a SPHERE file.

    :param coding: ``shorten`` (``pcm,embedded-shorten-v2.00``, as LDC's WSJ) or ``pcm``.
    :param byte_format: ``10`` (big-endian, as WSJ) or ``01``.
    :param fields: extra header fields first (``database_id``, ``utterance_id``, ...).
    """
    x = np.asarray(samples)
    if x.dtype != np.int16:
        raise ValueError(f"write_sphere takes int16 samples, got {x.dtype}")
    x = x[:, None] if x.ndim == 1 else x
    header: dict[str, str | int] = dict(fields or {})
    header.update(
        channel_count=x.shape[1],
        sample_count=x.shape[0],
        sample_rate=int(sample_rate),
        sample_n_bytes=2,
        sample_byte_format=byte_format,
        sample_sig_bits=16,
        sample_min=int(x.min()) if x.size else 0,
        sample_max=int(x.max()) if x.size else 0,
    )
    if coding == "shorten":
        header["sample_coding"] = SHORTEN_CODING
        kind = shorten_format.TYPE_S16HL if byte_format == "10" else shorten_format.TYPE_S16LH
        opts = options or shorten.EncoderOptions(file_type=kind)
        body = shorten.encode(x, opts)
    elif coding == "pcm":
        header["sample_coding"] = "pcm"
        body = x.astype(">i2" if byte_format == "10" else "<i2").tobytes()
    else:
        raise ValueError(f"coding must be 'shorten' or 'pcm', got {coding!r}")
    Path(path).write_bytes(format_sphere_header(header, DEFAULT_HEADER_BYTES) + body)
