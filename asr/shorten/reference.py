"""Slow, plain-Python shorten decoder: the reference the compiled decoder is tested against.

It reads the stream bit by bit exactly as :mod:`asr.shorten.format` describes it, with C's
integer semantics spelled out (division truncates toward zero, ``>>`` is arithmetic), and
follows the block loop of shorten 3.6 and ffmpeg's ``libavcodec/shorten.c`` statement by
statement. About 100x slower than the C++ decoder; used in tests and where no compiler exists.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from asr.shorten import format as F
from asr.shorten.format import ShortenError, ShortenHeader, c_div


class BitReader:
    """Most-significant-bit-first reader over a byte string."""

    def __init__(self, data: bytes, start: int = 0) -> None:
        self.bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)[start:]).tobytes()
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.bits) - self.pos

    def read(self, n: int) -> int:
        if n > self.left:
            raise ShortenError(f"stream ends early (needed {n} bits, {self.left} left)")
        value = 0
        for b in self.bits[self.pos : self.pos + n]:
            value = (value << 1) | b
        self.pos += n
        return value

    def uvar(self, n: int) -> int:
        one = self.bits.find(1, self.pos)
        if one < 0:
            raise ShortenError(f"stream ends early, inside a Rice code ({self.left} bits left)")
        high = one - self.pos
        self.pos = one + 1
        return (high << n) | self.read(n)

    def svar(self, n: int) -> int:
        u = self.uvar(n + 1)
        return ~(u >> 1) if u & 1 else u >> 1

    def ulong(self, version: int, n: int) -> int:
        return self.uvar(self.uvar(F.ULONGSIZE) if version else n)

    def only_padding_left(self) -> bool:
        """True at the end of a stream that stopped without QUIT (< 8 zero bits remain)."""
        return self.left < 8 and 1 not in self.bits[self.pos :]


def read_header(r: BitReader, data: bytes) -> ShortenHeader:
    if data[:4] != F.MAGIC:
        raise ShortenError(f"not a shorten stream (starts {data[:4]!r}, expected {F.MAGIC!r})")
    r.pos = 32
    version = r.read(8)
    if version > F.MAX_VERSION:
        raise ShortenError(f"shorten version {version} is not supported (0-{F.MAX_VERSION})")
    file_type = r.ulong(version, F.TYPESIZE)
    if file_type not in F.TYPE_MEAN:
        raise ShortenError(f"unsupported shorten sample type {file_type}")
    channels = r.ulong(version, F.CHANSIZE)
    if not 1 <= channels <= F.MAX_CHANNELS:
        raise ShortenError(f"bad channel count {channels}")
    blocksize, maxnlpc, nmean, nskip = F.DEFAULT_BLOCKSIZE, 0, 0, 0
    if version > 0:
        blocksize = r.ulong(version, 8)  # width log2(DEFAULT_BLOCKSIZE), version 0 only
        maxnlpc = r.ulong(version, F.LPCQSIZE)
        nmean = r.ulong(version, 0)
        nskip = r.ulong(version, F.NSKIPSIZE)
        if not 1 <= blocksize <= F.MAX_BLOCKSIZE:
            raise ShortenError(f"bad block size {blocksize}")
        if maxnlpc > 1024 or nmean > 32768:
            raise ShortenError(f"implausible header (maxnlpc {maxnlpc}, nmean {nmean})")
        for _ in range(nskip):
            r.uvar(F.XBYTESIZE)
    return ShortenHeader(version, file_type, channels, blocksize, maxnlpc, nmean, nskip)


def decode(data: bytes, commands: Counter | None = None) -> tuple[np.ndarray, ShortenHeader]:
    """Decode a whole shorten stream: ``(samples int32 (T, channels), header)``.

    :param commands: if given, counts every function read, by name (``DIFF1``, ``QLPC``...).
    """
    r = BitReader(data)
    h = read_header(r, data)
    version, channels, nmean = h.version, h.channels, h.nmean
    blocksize = h.blocksize
    nwrap = max(F.NWRAP, h.maxnlpc)
    lpcq = F.lpc_offset(version)
    mean0 = F.TYPE_MEAN[h.file_type]
    offsets = [[mean0] * max(1, nmean) for _ in range(channels)]
    history = [[0] * nwrap for _ in range(channels)]  # last nwrap samples, oldest first
    bitshift = 0
    blocks: list[list[list[int]]] = []  # per completed block: one sample list per channel
    current: list[list[int]] = []
    while True:
        if not current and r.only_padding_left():
            break  # no QUIT, but the stream ends cleanly between blocks
        cmd = r.uvar(F.FNSIZE)
        if commands is not None and cmd < len(F.FN_NAMES):
            commands[F.FN_NAMES[cmd]] += 1
        if cmd == F.FN_QUIT:
            break
        if cmd == F.FN_VERBATIM:
            for _ in range(r.uvar(F.VERBATIM_CKSIZE_SIZE)):
                r.uvar(F.VERBATIM_BYTE_SIZE)
            continue
        if cmd == F.FN_BITSHIFT:
            bitshift = r.uvar(F.BITSHIFTSIZE)
            if bitshift > 31:
                raise ShortenError(f"bad bitshift {bitshift}")
            continue
        if cmd == F.FN_BLOCKSIZE:
            new = r.ulong(version, blocksize.bit_length() - 1)
            if not 1 <= new <= blocksize:
                raise ShortenError(f"bad block size change {blocksize} -> {new}")
            blocksize = new
            continue
        if cmd not in (F.FN_DIFF0, F.FN_DIFF1, F.FN_DIFF2, F.FN_DIFF3, F.FN_QLPC, F.FN_ZERO):
            raise ShortenError(f"unknown function code {cmd} (corrupt stream)")
        ch = len(current)
        residual_bits = 0
        if cmd != F.FN_ZERO:
            residual_bits = r.uvar(F.ENERGYSIZE) - (1 if version == 0 else 0)
            if not -1 <= residual_bits <= 31:
                raise ShortenError(f"bad residual width {residual_bits} (corrupt stream)")
        if nmean == 0:
            coffset = offsets[ch][0]
        else:
            total = nmean // 2 if version >= 2 else 0
            total += sum(offsets[ch])
            coffset = c_div(total, nmean)
            if version >= 2 and bitshift:
                coffset = (coffset >> (bitshift - 1)) >> 1
        hist = history[ch]
        out: list[int] = []
        if cmd == F.FN_ZERO:
            out = [0] * blocksize
        else:
            if cmd == F.FN_QLPC:
                order = r.uvar(F.LPCQSIZE)
                if order > nwrap:
                    raise ShortenError(f"QLPC order {order} above the header's {nwrap}")
                coeffs = [r.svar(F.LPCQUANT) for _ in range(order)]
                shift, init = F.LPCQUANT, lpcq
                if coffset:  # ffmpeg subtracts it in place from the last `order` samples
                    cut = len(hist) - order
                    hist = hist[:cut] + [x - coffset for x in hist[cut:]]
            else:
                order, coeffs, shift = cmd, list(F.FIXED_COEFFS[cmd]), 0
                init = 0 if order else coffset
            window = hist[len(hist) - order :] if order else []  # oldest .. newest
            for _ in range(blocksize):
                pred = init
                for j in range(order):
                    pred += coeffs[j] * window[order - 1 - j]
                value = r.svar(residual_bits) + (pred >> shift)
                out.append(value)
                if order:
                    window = window[1:] + [value]
            if cmd == F.FN_QLPC and coffset:
                out = [x + coffset for x in out]
        if nmean > 0:
            total = blocksize // 2 if version >= 2 else 0
            total += sum(out)
            mean = c_div(total, blocksize)
            offsets[ch] = offsets[ch][1:] + [mean << bitshift if version >= 2 else mean]
        # history keeps the unshifted samples; a block shorter than nwrap also keeps older
        # ones, offset-corrected where QLPC changed them in place (as in ffmpeg's buffer)
        history[ch] = (hist + out)[-nwrap:]
        current.append([x << bitshift for x in out] if bitshift else out)
        if len(current) == channels:
            blocks.append(current)
            current = []
    if current:
        raise ShortenError(
            f"stream ends inside a block ({len(current)} of {channels} channels decoded)"
        )
    if not blocks:
        return np.zeros((0, channels), dtype=np.int32), h
    samples = np.concatenate([np.asarray(b, dtype=np.int64).T for b in blocks], axis=0)
    return samples.astype(np.int32), h
