"""Shorten encoder: writes the streams the decoders are tested on, and the miniature corpus.

Lossless, so the encoder knows every sample the decoder will reconstruct: it mirrors the
decoder's state (running means, history, bit shift) and, per block and channel, writes the
cheapest of ZERO, DIFF0-DIFF3 and (with ``maxnlpc``) QLPC with its best Rice width. Residuals
of a whole block are computed and bit-packed with numpy, so encoding a corpus is quick enough
for tests; compression is close to, not equal to, the original ``shorten`` program's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.shorten import format as F


@dataclass(frozen=True)
class EncoderOptions:
    """How to write a stream.

    :param version: 1, 2 or 3 (2 is what NIST's ``embedded-shorten-v2.00`` files use).
    :param blocksize: samples per block and channel (the last block may be shorter).
    :param nmean: blocks in the running mean that DIFF0 and QLPC predict around (0 = none).
    :param maxnlpc: highest QLPC order to try (0 = fixed predictors only).
    :param file_type: a ``TYPE_*`` of :mod:`asr.shorten.format`; signed 16-bit by default.
    :param bitshift: drop trailing zero bits shared by a block (``BITSHIFT`` commands).
    :param zero_blocks: write all-zero blocks as ``ZERO``.
    """

    version: int = 2
    blocksize: int = F.DEFAULT_BLOCKSIZE
    nmean: int = F.DEFAULT_NMEAN
    maxnlpc: int = 0
    file_type: int = F.TYPE_S16HL
    bitshift: bool = True
    zero_blocks: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.version <= F.MAX_VERSION:
            raise ValueError(f"version must be 1..{F.MAX_VERSION}, got {self.version}")
        if not 1 <= self.blocksize <= F.MAX_BLOCKSIZE:
            raise ValueError(f"blocksize must be 1..{F.MAX_BLOCKSIZE}, got {self.blocksize}")
        if self.nmean < 0 or self.maxnlpc < 0:
            raise ValueError("nmean and maxnlpc must be >= 0")
        if self.file_type not in F.TYPE_MEAN:
            raise ValueError(f"unknown file type {self.file_type}")


class BitWriter:
    """Collects bits (as 0/1 arrays) and packs them most significant bit first."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def uvar(self, values: np.ndarray | int, n: int) -> None:
        if isinstance(values, int):  # header fields and commands: one code
            if values < 0:
                raise ValueError("uvar codes unsigned values")
            low = [(values >> (n - 1 - b)) & 1 for b in range(n)]
            self.chunks.append(np.array([0] * (values >> n) + [1] + low, dtype=np.uint8))
            return
        u = np.atleast_1d(np.asarray(values, dtype=np.int64))
        if (u < 0).any():
            raise ValueError("uvar codes unsigned values")
        high = u >> n
        lengths = high + 1 + n
        starts = np.cumsum(lengths) - lengths
        bits = np.zeros(int(lengths.sum()), dtype=np.uint8)
        bits[starts + high] = 1
        for b in range(n):
            bits[starts + high + 1 + b] = (u >> (n - 1 - b)) & 1
        self.chunks.append(bits)

    def svar(self, values: np.ndarray | int, n: int) -> None:
        if isinstance(values, int):
            self.uvar(values << 1 if values >= 0 else ((-values - 1) << 1) | 1, n + 1)
            return
        v = np.atleast_1d(np.asarray(values, dtype=np.int64))
        self.uvar(np.where(v >= 0, v << 1, ((-v - 1) << 1) | 1), n + 1)

    def ulong(self, value: int) -> None:
        nbits = int(value).bit_length()
        self.uvar(nbits, F.ULONGSIZE)
        self.uvar(value, nbits)

    def raw(self, value: int, n: int) -> None:
        self.chunks.append(np.array([(value >> (n - 1 - b)) & 1 for b in range(n)], np.uint8))

    def getvalue(self) -> bytes:
        bits = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.uint8)
        return np.packbits(bits).tobytes()  # zero-padded to a whole byte


def _svar_cost(res: np.ndarray) -> tuple[int, int]:
    """(bits, width) of the cheapest ``svar`` width for a block of residuals."""
    u = np.where(res >= 0, res << 1, ((-res - 1) << 1) | 1)
    best = (1 << 62, 0)
    for n in range(0, 32):
        bits = int((u >> (n + 1)).sum()) + u.size * (n + 2)
        if bits < best[0]:
            best = (bits, n)
        elif n > 2 and bits > best[0]:
            break  # the cost is convex in n
    return best


def _lpc(z: np.ndarray, order: int) -> np.ndarray:
    """Least-squares predictor of ``order`` on z, quantised to shorten's fixed point."""
    if z.size <= 2 * order:
        return np.zeros(order, dtype=np.int64)
    rows = np.stack([z[order - 1 - j : z.size - 1 - j] for j in range(order)], axis=1)
    coef, *_ = np.linalg.lstsq(rows.astype(np.float64), z[order:].astype(np.float64), rcond=None)
    return np.clip(np.round(coef * (1 << F.LPCQUANT)), -(1 << 15), 1 << 15).astype(np.int64)


def _trailing_zeros(block: np.ndarray) -> int:
    nz = block[block != 0]
    if nz.size == 0:
        return 0
    low = np.bitwise_or.reduce(nz.astype(np.int64) & -nz.astype(np.int64))
    return int(low).bit_length() - 1


class _ChannelState:
    """The decoder's per-channel state, kept in step with it."""

    def __init__(self, opts: EncoderOptions, nwrap: int) -> None:
        self.offsets = [F.TYPE_MEAN[opts.file_type]] * max(1, opts.nmean)
        self.history = [0] * nwrap


def encode(
    samples: np.ndarray, options: EncoderOptions | None = None, verbatim: bytes = b""
) -> bytes:
    """Encode integer samples ``(T,)`` or ``(T, channels)`` as a shorten stream.

    :param verbatim: bytes stored in a ``VERBATIM`` chunk before the audio (a RIFF/WAVE header
        makes the stream a ``.shn`` file that other decoders, ffmpeg's included, accept).
    """
    opts = options or EncoderOptions()
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or not 1 <= x.shape[1] <= F.MAX_CHANNELS:
        raise ValueError(f"samples must be (T,) or (T, 1..{F.MAX_CHANNELS}), got {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"samples must be integers, got {x.dtype}")
    x = x.astype(np.int64)
    channels = x.shape[1]
    nwrap = max(F.NWRAP, opts.maxnlpc)
    lpcq = F.lpc_offset(opts.version)
    w = BitWriter()
    for byte in F.MAGIC:
        w.raw(byte, 8)
    w.raw(opts.version, 8)
    for value in (opts.file_type, channels, opts.blocksize, opts.maxnlpc, opts.nmean, 0):
        w.ulong(value)  # ... nskip = 0
    if verbatim:
        w.uvar(F.FN_VERBATIM, F.FNSIZE)
        w.uvar(len(verbatim), F.VERBATIM_CKSIZE_SIZE)
        w.uvar(np.frombuffer(verbatim, dtype=np.uint8), F.VERBATIM_BYTE_SIZE)
    states = [_ChannelState(opts, nwrap) for _ in range(channels)]
    blocksize, bitshift = opts.blocksize, 0
    for start in range(0, x.shape[0], opts.blocksize):
        block = x[start : start + opts.blocksize]
        if block.shape[0] != blocksize:
            blocksize = block.shape[0]
            w.uvar(F.FN_BLOCKSIZE, F.FNSIZE)
            w.ulong(blocksize)
        for ch in range(channels):
            target = block[:, ch]
            if opts.bitshift and target.any():
                shift = min(_trailing_zeros(target), 31)
                if shift != bitshift:
                    bitshift = shift
                    w.uvar(F.FN_BITSHIFT, F.FNSIZE)
                    w.uvar(bitshift, F.BITSHIFTSIZE)
            if target.any() and ((target >> bitshift) << bitshift != target).any():
                bitshift = 0  # a zero block under a stale shift, or bitshift disabled
                w.uvar(F.FN_BITSHIFT, F.FNSIZE)
                w.uvar(0, F.BITSHIFTSIZE)
            _encode_block(w, states[ch], target >> bitshift, opts, bitshift, nwrap, lpcq)
    w.uvar(F.FN_QUIT, F.FNSIZE)
    return w.getvalue()


def _encode_block(
    w: BitWriter,
    st: _ChannelState,
    y: np.ndarray,
    opts: EncoderOptions,
    bitshift: int,
    nwrap: int,
    lpcq: int,
) -> None:
    """One channel's block ``y`` (already shifted down): pick a command, write, update state."""
    version, nmean = opts.version, opts.nmean
    if nmean == 0:
        coffset = st.offsets[0]
    else:
        total = (nmean // 2 if version >= 2 else 0) + sum(st.offsets)
        coffset = F.c_div(total, nmean)
        if version >= 2 and bitshift:
            coffset = (coffset >> (bitshift - 1)) >> 1
    hist = np.asarray(st.history, dtype=np.int64)
    full = np.concatenate([hist, y])
    n = y.size
    choice: tuple[int, int, int, np.ndarray, np.ndarray] | None = None  # bits cmd width res lpc
    if opts.zero_blocks and not y.any():
        choice = (0, F.FN_ZERO, 0, np.zeros(0, np.int64), np.zeros(0, np.int64))
    else:
        for order, coeffs in enumerate(F.FIXED_COEFFS):
            pred = np.full(n, coffset if order == 0 else 0, dtype=np.int64)
            for j, c in enumerate(coeffs):
                pred += c * full[nwrap - 1 - j : nwrap - 1 - j + n]
            res = y - pred
            bits, width = _svar_cost(res)
            if choice is None or bits < choice[0]:
                choice = (bits, order, width, res, np.zeros(0, np.int64))
        for order in range(1, min(opts.maxnlpc, nwrap) + 1):
            z = full.copy()
            z[nwrap - order : nwrap] -= coffset  # what the decoder does to its history
            z[nwrap:] -= coffset
            coeffs = _lpc(z[nwrap - order :], order)
            pred = np.full(n, lpcq, dtype=np.int64)
            for j in range(order):
                pred += coeffs[j] * z[nwrap - 1 - j : nwrap - 1 - j + n]
            res = z[nwrap:] - (pred >> F.LPCQUANT)
            bits, width = _svar_cost(res)
            bits += 4 + sum(_svar_cost(np.array([c]))[0] for c in coeffs)
            if bits < choice[0]:
                choice = (bits, F.FN_QLPC, width, res, coeffs)
    _, cmd, width, res, coeffs = choice
    w.uvar(cmd, F.FNSIZE)
    if cmd != F.FN_ZERO:
        w.uvar(width, F.ENERGYSIZE)
    if cmd == F.FN_QLPC:
        w.uvar(coeffs.size, F.LPCQSIZE)
        w.svar(coeffs, F.LPCQUANT)
        if coffset:
            hist = hist.copy()
            hist[nwrap - coeffs.size :] -= coffset
    if cmd != F.FN_ZERO:
        w.svar(res, width)
    decoded = np.zeros(n, dtype=np.int64) if cmd == F.FN_ZERO else y
    if nmean > 0:
        total = (n // 2 if version >= 2 else 0) + int(decoded.sum())
        mean = F.c_div(total, n)
        st.offsets = st.offsets[1:] + [mean << bitshift if version >= 2 else mean]
    st.history = np.concatenate([hist, decoded])[-nwrap:].tolist()
