"""Shorten: our decoders against ffmpeg's and each other; SPHERE headers; damaged files.

Streams are written by our encoder from random, speech (espeak-ng) and silent signals over
versions 1-3, block sizes, channel counts, nmean 0 and 4 and QLPC on/off; the command coverage
test proves together they use every command real files use.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from collections import Counter
from functools import lru_cache

import numpy as np
import pytest
import soundfile as sf

from asr import shorten
from asr.audio import AudioError, audio_info, load_audio
from asr.shorten import format as F
from asr.shorten import reference
from asr.shorten.encoder import BitWriter, EncoderOptions
from asr.sphere import (
    SHORTEN_CODING,
    format_sphere_header,
    parse_sphere_header,
    read_sphere,
    write_sphere,
)

SEED = 20261130
FFMPEG = shutil.which("ffmpeg")
ESPEAK = shutil.which("espeak-ng")


@lru_cache(maxsize=1)
def _speech() -> np.ndarray:
    if ESPEAK is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng): no speech stream")
    wav = subprocess.run(
        [ESPEAK, "--stdout", "Stocks rose sharply on Wall Street as bond yields fell."],
        capture_output=True,
        check=True,
    ).stdout

    x, _ = sf.read(io.BytesIO(wav), dtype="int16")
    return x[:12000]


def signal(kind: str, channels: int, rng: np.random.Generator) -> np.ndarray:
    """int16 (T, channels): ``random`` white noise with an AR(2) tail, ``speech``, ``silence``,
    ``mixed`` (speech, a silent stretch, and a stretch of multiples of 8 for BITSHIFT)."""
    n = 3001  # not a multiple of any block size used: the last block is short (BLOCKSIZE)
    if kind == "random":
        white = rng.integers(-30000, 30000, size=(n // 2, channels))
        ar = np.zeros((n - n // 2, channels))
        e = rng.normal(0, 200, size=ar.shape)
        for t in range(2, ar.shape[0]):
            ar[t] = 1.6 * ar[t - 1] - 0.8 * ar[t - 2] + e[t]
        x = np.concatenate([white, np.clip(ar, -30000, 30000)])
    elif kind == "silence":
        x = np.zeros((n, channels))
    else:
        sp = _speech()
        x = np.stack([np.roll(sp, 37 * c)[:n] // (c + 1) for c in range(channels)], axis=1)
        if kind == "mixed":
            x[600:1200] = 0
            x[1500:2200] = x[1500:2200] // 8 * 8
    return np.asarray(x, dtype=np.int16)


def wav_header(channels: int, frames: int, rate: int = 16000) -> bytes:
    data = frames * channels * 2
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data)
        + b"WAVEfmt "
        + fmt
        + b"data"
        + struct.pack("<I", data)
    )


STREAMS = [
    # (signal, channels, options)
    ("random", 1, EncoderOptions()),
    ("random", 2, EncoderOptions(version=1, nmean=0)),
    ("random", 3, EncoderOptions(version=3, blocksize=100, maxnlpc=8)),
    ("speech", 1, EncoderOptions(maxnlpc=8)),
    ("speech", 2, EncoderOptions(blocksize=128, nmean=0)),
    ("speech", 1, EncoderOptions(version=1, blocksize=37, nmean=4, maxnlpc=3)),
    ("mixed", 1, EncoderOptions(nmean=4)),
    ("mixed", 2, EncoderOptions(version=3, blocksize=512, maxnlpc=5)),
    ("mixed", 1, EncoderOptions(blocksize=2, maxnlpc=4)),  # blocks shorter than the history
    ("silence", 1, EncoderOptions()),
    ("silence", 2, EncoderOptions(version=1, nmean=0)),
]
IDS = [f"{k}-{c}ch-v{o.version}-b{o.blocksize}-m{o.nmean}-lpc{o.maxnlpc}" for k, c, o in STREAMS]


def make_stream(i: int, with_wav_header: bool = False) -> tuple[np.ndarray, bytes]:
    kind, channels, opts = STREAMS[i]
    rng = np.random.default_rng(SEED + i)
    x = signal(kind, channels, rng)
    verbatim = wav_header(channels, x.shape[0]) if with_wav_header else b""
    return x, shorten.encode(x, opts, verbatim=verbatim)


def test_seed_is_printed() -> None:
    print(f"shorten test streams use seed {SEED}")


@pytest.mark.parametrize("i", range(len(STREAMS)), ids=IDS)
def test_native_and_reference_decode_our_streams_exactly(i) -> None:
    x, stream = make_stream(i, with_wav_header=i % 2 == 0)
    ours, header = shorten.decode(stream)
    slow, slow_header = reference.decode(stream)
    np.testing.assert_array_equal(ours, x)
    np.testing.assert_array_equal(slow, x)
    assert header == slow_header and header.channels == x.shape[1]


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed (apt-get install ffmpeg)")
@pytest.mark.parametrize("i", range(len(STREAMS)), ids=IDS)
def test_ffmpeg_decodes_our_streams_to_the_same_pcm(i, tmp_path) -> None:
    """ffmpeg's shorten decoder is the independent implementation; it needs a WAVE header."""
    x, stream = make_stream(i, with_wav_header=True)
    path = tmp_path / "s.shn"
    path.write_bytes(stream)
    out = subprocess.run(
        [FFMPEG, "-v", "error", "-f", "shn", "-i", str(path), "-f", "s16le", "-"],
        capture_output=True,
    )
    assert out.returncode == 0, out.stderr.decode()
    theirs = np.frombuffer(out.stdout, dtype="<i2").reshape(-1, x.shape[1])
    ours, _ = shorten.decode(stream)
    np.testing.assert_array_equal(theirs, ours)
    np.testing.assert_array_equal(theirs, x)


def _commands(stream: bytes) -> Counter:
    counts: Counter = Counter()
    reference.decode(stream, commands=counts)
    return counts


def test_test_streams_use_every_command() -> None:
    used: Counter = Counter()
    for i in range(len(STREAMS)):
        used += _commands(make_stream(i, with_wav_header=True)[1])
    assert set(used) == set(F.FN_NAMES), f"unused: {set(F.FN_NAMES) - set(used)}"


def test_stream_without_quit_ends_cleanly_between_blocks() -> None:
    x = signal("random", 1, np.random.default_rng(SEED))[:512]
    stream = shorten.encode(x, EncoderOptions(bitshift=False))
    bits = np.unpackbits(np.frombuffer(stream, np.uint8))
    cut = np.flatnonzero(bits)[-1] - 1  # QUIT is uvar(4, 2) = 0 1 00, then zero padding
    assert bits[cut : cut + 4].tolist() == [0, 1, 0, 0]
    truncated = np.packbits(bits[:cut]).tobytes()
    for decode in (shorten.decode, reference.decode):
        np.testing.assert_array_equal(decode(truncated)[0], x)


@pytest.mark.parametrize("fraction", [0.3, 0.55, 0.9])
def test_truncated_stream_fails_the_same_way_in_both_decoders(fraction) -> None:
    _, stream = make_stream(3)
    cut = stream[: int(len(stream) * fraction)]
    for decode in (shorten.decode, reference.decode):
        with pytest.raises(shorten.ShortenError, match="ends"):
            decode(cut)


def _with_bad_command() -> bytes:
    w = BitWriter()
    for byte in F.MAGIC + bytes([2]):
        w.raw(byte, 8)
    for value in (F.TYPE_S16HL, 1, 256, 0, 4, 0):
        w.ulong(value)
    w.uvar(12, F.FNSIZE)  # there is no function 12
    return w.getvalue()


def test_corrupt_stream_is_an_error_in_both_decoders() -> None:
    for decode in (shorten.decode, reference.decode):
        with pytest.raises(shorten.ShortenError, match="unknown function code 12"):
            decode(_with_bad_command())
        with pytest.raises(shorten.ShortenError, match="not a shorten stream"):
            decode(b"RIFF" + bytes(100))


# --------------------------------------------------------------------------------------------
# SPHERE


WSJ_HEADER = (
    "NIST_1A\n   1024\n"
    "database_id -s7 CSR-WSJ\n"
    "database_version -s3 1.0\n"
    "utterance_id -s8 011c0201\n"
    "speaking_mode -s14 read-verbatim\n"
    "recording_site -s12 SRI Intl. A\n"  # a string with spaces: -s12 takes 12 characters
    "channel_count -i 1\n"
    "sample_count -i 79360\n"
    "sample_rate -i 16000\n"
    "sample_n_bytes -i 2\n"
    "sample_byte_format -s2 10\n"
    "sample_sig_bits -i 16\n"
    "sample_coding -s26 pcm,embedded-shorten-v2.00\n"
    "sample_checksum -i 31715\n"
    "end_head\n"
)


def test_sphere_header_fields_of_a_wsj_file() -> None:
    h = parse_sphere_header(WSJ_HEADER.encode().ljust(1024, b" "))
    assert h is not None and h.header_bytes == 1024
    assert h.sample_coding == "pcm,embedded-shorten-v2.00" == SHORTEN_CODING
    assert h.is_shorten and h.sample_byte_format == "10"
    assert (h.sample_count, h.channel_count, h.sample_rate, h.sample_n_bytes) == (
        79360,
        1,
        16000,
        2,
    )
    assert h.fields["recording_site"] == "SRI Intl. A"
    assert h.duration == pytest.approx(4.96)
    assert parse_sphere_header(b"RIFF....WAVE") is None


def test_sphere_header_larger_than_1024_bytes(tmp_path) -> None:
    fields = {f"note_{i:03d}": "x" * 40 for i in range(40)}
    x = (np.random.default_rng(SEED).normal(0, 1000, 3000)).astype(np.int16)
    p = tmp_path / "big.wv1"
    body = shorten.encode(x)
    fields.update(sample_count=3000, sample_rate=16000, sample_coding=SHORTEN_CODING)
    p.write_bytes(format_sphere_header(fields, 4096) + body)
    y, h = read_sphere(p)
    assert h.header_bytes == 4096
    np.testing.assert_array_equal((y[:, 0] * 32768).astype(np.int16), x)


@pytest.mark.parametrize("byte_format", ["10", "01"])
@pytest.mark.parametrize("coding", ["shorten", "pcm"])
def test_wv1_reads_through_load_audio(tmp_path, coding, byte_format) -> None:
    x = signal("mixed", 2, np.random.default_rng(SEED))
    p = tmp_path / "011c0201.wv1"
    write_sphere(p, x, 16000, coding=coding, byte_format=byte_format)
    y, h = read_sphere(p)
    np.testing.assert_array_equal(np.round(y * 32768).astype(np.int16), x)
    assert h.is_shorten == (coding == "shorten")
    a = load_audio(p)
    np.testing.assert_allclose(a.waveform.numpy(), x.mean(axis=1) / 32768.0, atol=1e-6)
    assert a.original_channels == 2 and a.original_sample_rate == 16000
    assert audio_info(p) == (pytest.approx(x.shape[0] / 16000), 16000, 2)
    part = load_audio(p, offset=0.05, duration=0.05)
    assert part.waveform.numel() == 800


def test_truncated_wv1_names_the_file_and_the_fix(tmp_path) -> None:
    x = signal("speech", 1, np.random.default_rng(SEED))
    p = tmp_path / "011c0202.wv1"
    write_sphere(p, x, 16000)
    data = p.read_bytes()
    p.write_bytes(data[: 1024 + (len(data) - 1024) // 2])
    with pytest.raises(AudioError) as e:
        load_audio(p)
    msg = str(e.value)
    assert str(p) in msg and "truncated" in msg and "copy it again" in msg
    assert "\n" not in msg


def test_corrupt_wv1_names_the_file_and_the_fix(tmp_path) -> None:
    p = tmp_path / "011c0203.wv1"
    header = {"sample_count": 256, "sample_rate": 16000, "sample_coding": SHORTEN_CODING}
    p.write_bytes(format_sphere_header(header, 1024) + _with_bad_command())
    with pytest.raises(AudioError) as e:
        load_audio(p)
    msg = str(e.value)
    assert str(p) in msg and "corrupt shorten stream" in msg and "copy it again" in msg


def test_decoded_samples_outside_16_bits_are_corruption(tmp_path) -> None:
    x = np.array([0, 40000, -40000, 5] * 100, dtype=np.int64)  # a stream no 16-bit file has
    p = tmp_path / "wide.wv1"
    header = {"sample_count": x.size, "sample_rate": 16000, "sample_coding": SHORTEN_CODING}
    p.write_bytes(format_sphere_header(header, 1024) + shorten.encode(x))
    with pytest.raises(AudioError, match="out of the 16-bit range"):
        load_audio(p)


def test_pure_python_fallback_reads_the_same(tmp_path, monkeypatch) -> None:
    from asr.shorten import native

    x = signal("speech", 1, np.random.default_rng(SEED))
    p = tmp_path / "f.wv1"
    write_sphere(p, x, 16000)
    fast = load_audio(p).waveform
    monkeypatch.setenv(native.DISABLE_ENV, "1")
    slow = load_audio(p).waveform
    assert np.array_equal(fast.numpy(), slow.numpy())
