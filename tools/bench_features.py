"""Throughput of the training feature pipeline: audio decode + fbank + CMVN + SpecAugment
(+ speed perturbation), through ASRDataModule's DataLoader with worker processes.

Prints one markdown row (command, machine, audio hours, wall time, hours of audio per minute,
times real time) for scratch/data/BENCHMARKS_data.md. Target: >= 100x real time on 2 cores.

    python tools/bench_features.py --hours 0.5 --num-workers 2 [--speed-perturb] [--manifest M]
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from asr.data.datamodule import ASRDataModule
from asr.data.manifest import Utterance, read_manifest, write_manifest
from asr.data.tokenizer import train_tokenizer
from asr.features import GlobalCMVN
from asr.machine import cpu_model


def synthetic_manifest(out_dir: Path, hours: float, seed: int, min_s: float, max_s: float) -> Path:
    """FLAC clips of tones in noise, lengths uniform in [min_s, max_s]."""
    rng = np.random.default_rng(seed)
    utts, total, i = [], 0.0, 0
    while total < hours * 3600:
        dur = float(rng.uniform(min_s, max_s))
        t = np.arange(int(dur * 16000)) / 16000
        x = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t) + 0.05 * rng.standard_normal(
            t.size
        )
        p = out_dir / f"b{i:05d}.flac"
        sf.write(p, x.astype(np.float32), 16000)
        utts.append(Utterance(f"b{i:05d}", str(p), dur, "a synthetic clip"))
        total += dur
        i += 1
    m = out_dir / "bench.jsonl"
    write_manifest(m, utts)
    return m


def machine() -> str:
    cpu = cpu_model()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--manifest", help="benchmark on this manifest instead of synthetic audio")
    p.add_argument("--hours", type=float, default=0.25, help="synthetic audio to generate")
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--max-seconds", type=float, default=15.0)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--num-mel-bins", type=int, default=80)
    p.add_argument("--max-batch-seconds", type=float, default=120.0)
    p.add_argument("--speed-perturb", action="store_true", help="factors 0.9/1.0/1.1")
    p.add_argument("--no-spec-augment", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # the workers do the work; the main process only collates

    with tempfile.TemporaryDirectory() as tmp:
        manifest = (
            Path(args.manifest)
            if args.manifest
            else synthetic_manifest(
                Path(tmp), args.hours, args.seed, args.min_seconds, args.max_seconds
            )
        )
        utts = read_manifest(manifest)
        audio_s = sum(u.duration for u in utts)
        dm = ASRDataModule(
            train_manifest=str(manifest),
            fbank={"num_mel_bins": args.num_mel_bins},
            spec_augment=None if args.no_spec_augment else {},
            speed_perturb=[0.9, 1.0, 1.1] if args.speed_perturb else None,
            max_batch_seconds=args.max_batch_seconds,
            num_workers=args.num_workers,
            seed=args.seed,
        )
        # statistics are not what is measured: identity CMVN, char tokenizer
        dm.tokenizer = train_tokenizer("char", (u.text for u in utts))
        dm.cmvn = GlobalCMVN(torch.zeros(args.num_mel_bins), torch.ones(args.num_mel_bins))
        loader = dm.train_dataloader()
        start = time.perf_counter()
        frames = 0
        for batch in loader:
            frames += int(batch["feature_lengths"].sum())
        wall = time.perf_counter() - start
    cmd = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    hours_per_min = audio_s / 3600 / (wall / 60)
    print("| command | machine | audio h | wall s | audio h / min | x real time | frames |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| `{cmd}` | {machine()} | {audio_s / 3600:.3f} | {wall:.1f} | {hours_per_min:.2f} "
        f"| {audio_s / wall:.0f} | {frames} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
