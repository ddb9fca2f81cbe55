"""Shorten's stream layout: magic, header fields, function codes and field widths.

Shorten (Robinson 1994, "SHORTEN: simple lossless and near-lossless waveform compression") is
what LDC used inside the NIST SPHERE files of WSJ, TIMIT-era and Switchboard-era corpora
(``sample_coding -s26 pcm,embedded-shorten-v2.00``). A stream is a bit string, most
significant bit first, of Rice-coded integers:

- ``uvar(n)``: unary high part (zeros ended by a one) then ``n`` low bits;
- ``svar(n)``: ``uvar(n + 1)`` with the sign in the lowest bit (``u >> 1`` or ``~(u >> 1)``);
- ``ulong``: ``uvar(uvar(2))`` (version 0 writes ``uvar(n)`` with the field's own width).

Header: ``ajkg``, one version byte (0-3), then ``ulong`` file type, channels, and from version 1
block size, maximum LPC order, running-mean length ``nmean`` and ``nskip`` bytes to skip. Then
one function code (``uvar(2)``) per channel and block, channels interleaved, until ``QUIT``.

Both decoders (:mod:`asr.shorten.reference`, the C++ ``shorten.cpp``) and the encoder
(:mod:`asr.shorten.encoder`) take their constants from here.
"""

from __future__ import annotations

from dataclasses import dataclass

MAGIC = b"ajkg"
MAX_VERSION = 3
MAX_CHANNELS = 8  # what ffmpeg accepts; NIST files are mono or stereo
MAX_BLOCKSIZE = 65535
DEFAULT_BLOCKSIZE = 256
DEFAULT_NMEAN = 4  # shorten's default for versions >= 2

# field widths (low bits of the Rice code)
ULONGSIZE = 2
FNSIZE = 2
TYPESIZE = 4
CHANSIZE = 0
LPCQSIZE = 2
ENERGYSIZE = 3
BITSHIFTSIZE = 2
NSKIPSIZE = 1
XBYTESIZE = 7  # skipped header bytes, shorten's own reader
VERBATIM_CKSIZE_SIZE = 5
VERBATIM_BYTE_SIZE = 8
LPCQUANT = 5  # QLPC coefficients are fixed point with 5 fractional bits
NWRAP = 3  # history kept between blocks (more if maxnlpc is larger)

# function codes
FN_DIFF0 = 0
FN_DIFF1 = 1
FN_DIFF2 = 2
FN_DIFF3 = 3
FN_QUIT = 4
FN_BLOCKSIZE = 5
FN_BITSHIFT = 6
FN_QLPC = 7
FN_ZERO = 8
FN_VERBATIM = 9
FN_NAMES = (
    "DIFF0",
    "DIFF1",
    "DIFF2",
    "DIFF3",
    "QUIT",
    "BLOCKSIZE",
    "BITSHIFT",
    "QLPC",
    "ZERO",
    "VERBATIM",
)

# sample types (the ``ulong`` file type field)
TYPE_S8 = 1
TYPE_U8 = 2
TYPE_S16HL = 3  # big-endian ("high-low") 16-bit, what NIST wrote for sample_byte_format 10
TYPE_U16HL = 4
TYPE_S16LH = 5  # little-endian 16-bit
TYPE_U16LH = 6
#: initial running mean per sample type (unsigned types are centred on half range)
TYPE_MEAN = {
    TYPE_S8: 0,
    TYPE_U8: 0x80,
    TYPE_S16HL: 0,
    TYPE_U16HL: 0x8000,
    TYPE_S16LH: 0,
    TYPE_U16LH: 0x8000,
}
#: fixed predictors of DIFF1-DIFF3 (coefficients on s[i-1], s[i-2], s[i-3])
FIXED_COEFFS = ((), (1,), (2, -1), (3, -3, 1))


class ShortenError(ValueError):
    """A stream that is not shorten, is corrupt or ends early; the message says which."""


@dataclass(frozen=True)
class ShortenHeader:
    """The fields of a stream's header (what the decoder needs to know before the blocks)."""

    version: int
    file_type: int
    channels: int
    blocksize: int
    maxnlpc: int
    nmean: int
    nskip: int


def lpc_offset(version: int) -> int:
    """Constant added to a QLPC prediction before its shift: 32 from version 2 on (shorten's
    choice; half of it would be round-to-nearest), nothing before."""
    return 1 << LPCQUANT if version >= 2 else 0


def c_div(a: int, b: int) -> int:
    """C's integer division, which truncates toward zero (Python's ``//`` floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q
