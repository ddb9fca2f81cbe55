"""Shorten decoding throughput on one core, in times real time (target: >= 200x).

Times reading whole ``.wv1`` files (file read, SPHERE header, shorten decode, int16 -> float32)
with the compiled decoder, alone and through ``load_audio`` as training reads them, against
baselines measured in the same run, interleaved, on the same audio: libsndfile reading it as
PCM SPHERE and as FLAC (what a one-off conversion would give), and the plain-Python reference
decoder (on the first files only: it is slow). The process is pinned to one core; the decoder
is single-threaded.

Audio: espeak-ng speech in WSJ-like utterances (about 8 s each, 16 kHz, shorten version 2,
block size 256, nmean 4: the parameters of LDC's ``embedded-shorten-v2.00`` files), or real
files with ``--files``.

    python tools/bench_shorten.py [--minutes 10] [--repeats 7] [--files 'wsj0/**/*.wv1']
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import load_audio
from asr.machine import machine_description
from asr.shorten import native_decoder, reference
from asr.sphere import read_sphere, read_sphere_header, write_sphere

SENTENCES = (
    "Stocks rose sharply on Wall Street today as bond yields fell to their lowest level.",
    "The company said its third quarter profit climbed twelve percent on strong sales.",
    "Analysts expect the airline industry to recover slowly over the next two years.",
    "Federal regulators approved the merger after the banks agreed to sell some branches.",
)


def make_corpus(out: Path, minutes: float) -> list[Path]:
    """WSJ-like .wv1 files of espeak-ng speech (8 s each) totalling ``minutes``."""
    import torch
    import torchaudio

    speech = []
    for i, text in enumerate(SENTENCES):
        wav = subprocess.run(
            ["espeak-ng", "--stdout", "-v", ("en-us", "en-gb")[i % 2], text],
            capture_output=True,
            check=True,
        ).stdout
        x, sr = sf.read(io.BytesIO(wav), dtype="float32")
        speech.append(torchaudio.functional.resample(torch.from_numpy(x), sr, 16000).numpy())
    signal = np.concatenate(speech)
    rng = np.random.default_rng(0)
    files, total, i = [], 0, 0
    while total < minutes * 60 * 16000:
        start = int(rng.integers(0, signal.size - 8 * 16000))
        x = signal[start : start + 8 * 16000] + rng.normal(0, 3e-4, 8 * 16000)
        pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
        path = out / f"b{i:04d}.wv1"
        write_sphere(path, pcm, 16000, coding="shorten", byte_format="10")
        write_sphere(out / f"b{i:04d}.sph", pcm, 16000, coding="pcm", byte_format="01")
        sf.write(out / f"b{i:04d}.flac", pcm, 16000)
        files.append(path)
        total += pcm.size
        i += 1
    return files


def _time(fn, paths: list[Path]) -> float:
    start = time.perf_counter()
    for p in paths:
        fn(p)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="synthetic audio to generate")
    p.add_argument("--files", help="glob of real .wv1 files instead (recursive ** allowed)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--reference-files", type=int, default=3, help="files for the Python decoder")
    args = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    if native_decoder() is None:
        print("the compiled decoder could not be built: nothing to benchmark", file=sys.stderr)
        return 1
    tmp = tempfile.TemporaryDirectory()
    if args.files:
        wv1 = sorted(Path(f) for f in glob.glob(args.files, recursive=True))
        if not wv1:
            print(f"no files match {args.files!r}", file=sys.stderr)
            return 1
    else:
        wv1 = make_corpus(Path(tmp.name), args.minutes)
    seconds = sum(read_sphere_header(f).duration for f in wv1)
    methods = {
        "native shorten (.wv1)": (lambda f: read_sphere(f), wv1),
        "asr.audio.load_audio (.wv1)": (lambda f: load_audio(f), wv1),
    }
    if not args.files:
        sph = [f.with_suffix(".sph") for f in wv1]
        flac = [f.with_suffix(".flac") for f in wv1]
        methods["libsndfile PCM SPHERE (.sph)"] = (lambda f: sf.read(f, dtype="float32"), sph)
        methods["libsndfile FLAC (.flac)"] = (lambda f: sf.read(f, dtype="float32"), flac)
    ref_files = wv1[: args.reference_files]
    ref_seconds = sum(read_sphere_header(f).duration for f in ref_files)

    def ref_decode(f: Path) -> None:
        h = read_sphere_header(f)
        reference.decode(f.read_bytes()[h.header_bytes :])

    for fn, paths in methods.values():  # warm the page cache and the extension
        _time(fn, paths[:2])
    runs: dict[str, list[float]] = {name: [] for name in [*methods, "plain-Python reference"]}
    for _ in range(args.repeats):  # interleaved: every method once per round
        for name, (fn, paths) in methods.items():
            runs[name].append(seconds / _time(fn, paths))
        runs["plain-Python reference"].append(ref_seconds / _time(ref_decode, ref_files))
    base = statistics.median(runs["native shorten (.wv1)"])
    cmd = "python tools/bench_shorten.py " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:])
    )
    print(f"command: `{cmd.strip()}`")
    print(f"machine: {machine_description()}; pinned to one core; load {os.getloadavg()[0]:.2f}")
    print(f"audio: {len(wv1)} files, {seconds / 60:.1f} min; {args.repeats} interleaved rounds\n")
    print("| reader | x real time, median | min - max | native / this |")
    print("|---|---|---|---|")
    for name, xs in runs.items():
        med = statistics.median(xs)
        print(f"| {name} | {med:.0f} | {min(xs):.0f} - {max(xs):.0f} | {base / med:.2f} |")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
