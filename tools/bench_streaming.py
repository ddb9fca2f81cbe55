"""Streaming recognition: memory over hours, per-chunk compute, latency, RTF, concurrent streams.

Subcommands; each measurement runs in a fresh subprocess (its RSS is its own):

* ``memory``: stream a synthetic speech-like signal (harmonic syllables, pauses, and a 10-minute
  digital silence every hour) for ``--hours`` through one recogniser, reading ``--chunk-ms`` at a
  time; RSS every minute of stream time and the per-chunk compute time per 10-minute window;
  a PNG of both against stream time. The check: RSS after 2 h within 10 MB of RSS after 1 min.
* ``latency``: one stream on one core (pinned, 1 thread): per-chunk compute time, RTF and the
  algorithmic look-ahead, per model and search; interleaved per utterance with the offline
  decoding of the same audio (whole-utterance forward + the same search) as the baseline.
* ``concurrency``: N streams on ``--threads`` cores, each fed one chunk per step, stepped as one
  batch (:class:`asr.stream.StreamBatch`) and, interleaved, one by one; the step time per chunk
  of audio and the largest N whose 95th-percentile step stays within the chunk's duration.
* ``position``: accuracy along a long stream: a manifest's utterances played as one continuous
  stream with pauses, the state carried throughout or reset at endpoints, beside one fresh
  stream per utterance; WER overall and by position in the stream.

Results are appended as markdown (command, machine, numbers) to ``--out``, with JSON beside it.

    python tools/bench_streaming.py memory --model exp/demo_streaming/model.safetensors --hours 8
    python tools/bench_streaming.py latency --model A.safetensors --model B.safetensors \\
        --manifest data/demo/corpus/test.jsonl --lexicon lm/lexicon.txt --lm lm/lm.arpa
    python tools/bench_streaming.py concurrency --model A.safetensors --manifest test.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "scratch" / "streaming" / "BENCHMARKS_streaming.md"
SAMPLE_RATE = 16000


# --------------------------------------------------------------------------------------------
# audio


class SyntheticSignal:
    """A deterministic speech-like signal of any length, made block by block in O(1) memory.

    Two minutes of "utterances" (words of 2-5 harmonic syllables with a gliding pitch and a
    random spectral envelope, short gaps between words, 0.3-2 s pauses between utterances, faint
    noise) are made once and looped; minutes 30-40 of every hour are digital silence.
    """

    LOOP_S = 120.0

    def __init__(self, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> None:
        self.sr = sample_rate
        self.loop = self._make_loop(np.random.default_rng(seed))
        self.pos = 0

    def _make_loop(self, rng: np.random.Generator) -> np.ndarray:
        sr, n = self.sr, int(self.LOOP_S * self.sr)
        out = (1e-3 * rng.standard_normal(n + 30 * sr)).astype(np.float32)  # room to finish
        at = int(0.5 * sr)
        harmonics = np.arange(1, 16)
        while at < n - 3 * sr:
            for _ in range(rng.integers(3, 10)):  # words
                for _ in range(rng.integers(2, 6)):  # syllables
                    m = int(rng.uniform(0.08, 0.3) * sr)
                    t = np.arange(m) / sr
                    f0 = rng.uniform(90, 240) * (1 + 0.1 * rng.uniform(-1, 1) * t / t[-1])
                    phase = 2 * np.pi * np.cumsum(f0) / sr
                    weights = rng.uniform(0, 1, harmonics.size) / harmonics
                    tone = (weights[:, None] * np.sin(harmonics[:, None] * phase)).sum(0)
                    tone *= np.hanning(m) * rng.uniform(0.1, 0.4) / np.abs(tone).max()
                    out[at : at + m] += tone.astype(np.float32)
                    at += m
                at += int(rng.uniform(0.03, 0.15) * sr)
            at += int(rng.uniform(0.3, 2.0) * sr)
        out[at:] = 1e-3 * rng.standard_normal(out.size - at).astype(np.float32)  # cut mid-word
        return out[:n]

    def read(self, n: int) -> np.ndarray:
        """The next ``n`` samples."""
        out = np.empty(n, dtype=np.float32)
        filled = 0
        while filled < n:
            t = (self.pos + filled) / self.sr
            in_hour = t % 3600.0
            take = n - filled
            if 1800.0 <= in_hour < 2400.0:  # digital silence
                take = min(take, int(math.ceil((2400.0 - in_hour) * self.sr)))
                out[filled : filled + take] = 0.0
            else:
                at = (self.pos + filled) % self.loop.size
                take = min(take, self.loop.size - at)
                if in_hour < 1800.0:
                    take = min(take, max(1, int(math.ceil((1800.0 - in_hour) * self.sr))))
                out[filled : filled + take] = self.loop[at : at + take]
            filled += take
        self.pos += n
        return out


def _manifest_audio(manifest: str, limit_s: float | None = None) -> list[tuple[str, str, Any]]:
    """(id, text, waveform) of a manifest's utterances, up to ``limit_s`` seconds in all."""
    from asr.audio import load_audio
    from asr.data.manifest import read_manifest

    out, total = [], 0.0
    for u in read_manifest(manifest):
        wav = load_audio(u.audio, SAMPLE_RATE, float(u.offset or 0.0), u.duration).waveform
        out.append((u.id, u.text, wav.numpy()))
        total += wav.numel() / SAMPLE_RATE
        if limit_s and total >= limit_s:
            break
    return out


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _options(cfg: dict) -> dict:
    opts: dict[str, Any] = {"search": cfg.get("search", "greedy")}
    for key in ("lexicon", "lm", "lm_weight", "word_score", "beam_size"):
        if cfg.get(key) is not None:
            opts[key] = cfg[key]
    if cfg.get("max_segment_s"):
        opts["max_segment_s"] = cfg["max_segment_s"]
    return opts


# --------------------------------------------------------------------------------------------
# workers (run in a subprocess each)


def _worker_memory(cfg: dict) -> dict:
    import torch

    from asr.stream import Recognizer
    from asr.stream.search import Histogram

    torch.set_num_threads(1)
    rec = Recognizer(cfg["model"], **_options(cfg))
    signal = SyntheticSignal(cfg.get("seed", 0))
    chunk = int(cfg["chunk_ms"] * SAMPLE_RATE / 1000)
    total = int(cfg["hours"] * 3600 * SAMPLE_RATE)
    every = int(cfg.get("sample_every_s", 60) * SAMPLE_RATE)
    window = int(600 * SAMPLE_RATE)
    rss: list[tuple[float, float]] = [(0.0, _rss_mb())]
    windows: list[tuple[float, float, float]] = []
    hist = Histogram.log(0.01, 1e6)
    words = 0
    done = 0
    start = time.perf_counter()
    while done < total:
        block = signal.read(chunk)
        t0 = time.perf_counter()
        results = rec.accept_waveform(block)
        hist.add((time.perf_counter() - t0) * 1000.0)
        words += sum(len(r.words) for r in results if r.kind == "final")
        done += chunk
        if done % every < chunk:
            rss.append((done / SAMPLE_RATE, _rss_mb()))
        if done % window < chunk:
            windows.append((done / SAMPLE_RATE, hist.quantile(0.5), hist.quantile(0.95)))
            hist = Histogram.log(0.01, 1e6)
    rec.finalize()
    if hist.n:
        windows.append((done / SAMPLE_RATE, hist.quantile(0.5), hist.quantile(0.95)))
    return {
        "rss": rss,
        "windows": windows,
        "audio_s": done / SAMPLE_RATE,
        "compute_s": rec.stats.compute_s,
        "rtf": rec.stats.rtf,
        "wall_s": time.perf_counter() - start,
        "final_words": words,
        "state_bytes": rec.batch.streams[0].state.nbytes(),
    }


def _offline_decode(pkg: Any, wav: Any, opts: dict, beam: Any) -> None:
    import torch

    from asr.decode import greedy_decode

    feats = pkg.featurize(torch.from_numpy(wav), SAMPLE_RATE)
    lp, n = pkg.log_probs(feats)
    if beam is not None:
        beam(lp, n, pkg.frame_shift_s)
    else:
        greedy_decode(lp, n, pkg.tokenizer, pkg.frame_shift_s)


def _worker_latency(cfg: dict) -> dict:
    import torch

    from asr.decode import BeamSearchConfig
    from asr.package import load_package
    from asr.stream import Recognizer
    from asr.stream.beam import SharedBeamSearch
    from asr.stream.search import Histogram

    torch.set_num_threads(1)
    os.sched_setaffinity(0, {int(cfg["cpu"])})
    pkg = load_package(cfg["model"])
    opts = _options(cfg)
    rec = Recognizer(pkg, **opts, max_block_s=cfg["chunk_ms"] / 1000.0)
    beam = None
    if opts["search"] == "beam":
        config = BeamSearchConfig(
            **{k: opts[k] for k in ("lm_weight", "word_score", "beam_size") if k in opts}
        )
        beam = SharedBeamSearch(pkg.tokenizer, opts.get("lexicon"), opts.get("lm"), config=config)
        beam = beam.new_decoder()
    utts = _manifest_audio(cfg["manifest"], cfg.get("limit_s"))
    chunk = int(cfg["chunk_ms"] * SAMPLE_RATE / 1000)
    hist = Histogram.log(0.01, 1e6)
    rounds = []
    for r in range(cfg["repeats"]):
        stream_s = offline_s = audio_s = 0.0
        for i, (_, _, wav) in enumerate(utts):
            order = ("stream", "offline") if (i + r) % 2 == 0 else ("offline", "stream")
            for what in order:
                t0 = time.perf_counter()
                if what == "offline":
                    _offline_decode(pkg, wav, opts, beam)
                    offline_s += time.perf_counter() - t0
                    continue
                rec.reset()
                for at in range(0, wav.size, chunk):
                    c0 = time.perf_counter()
                    rec.accept_waveform(wav[at : at + chunk])
                    if r > 0 or i > 0:  # the very first chunks warm up the allocator
                        hist.add((time.perf_counter() - c0) * 1000.0)
                rec.finalize()
                stream_s += time.perf_counter() - t0
            audio_s += wav.size / SAMPLE_RATE
        rounds.append({"audio_s": audio_s, "stream_s": stream_s, "offline_s": offline_s})
    lo, hi = rec.lookahead_ms()
    return {
        "rounds": rounds,
        "chunk_median_ms": hist.quantile(0.5),
        "chunk_p95_ms": hist.quantile(0.95),
        "chunk_max_ms": hist.max,
        "lookahead_ms": [lo, hi],
        "chunk_frames": rec.batch.ctc.chunk,
    }


def _worker_concurrency(cfg: dict) -> dict:
    import torch

    from asr.package import load_package
    from asr.stream import Recognizer, StreamBatch

    torch.set_num_threads(cfg["threads"])
    pkg = load_package(cfg["model"])
    opts = _options(cfg)
    utts = _manifest_audio(cfg["manifest"], 300.0)
    audio = np.concatenate([w for _, _, w in utts])
    chunk = int(cfg["chunk_ms"] * SAMPLE_RATE / 1000)
    n, steps, warm = cfg["streams"], cfg["steps"], 5
    offsets = [(k * 7919 * chunk) % (audio.size - chunk * (steps + warm)) for k in range(n)]
    out: dict[str, list[float]] = {}
    order = ["batched", "single"] if cfg.get("batched_first", True) else ["batched", "single"][::-1]
    for mode in order:
        times = []
        if mode == "batched":
            batch = StreamBatch(pkg, **opts, max_block_s=cfg["chunk_ms"] / 1000.0)
            for k in range(n):
                batch.open(k)
            for s in range(steps + warm):
                feed = {
                    k: audio[offsets[k] + s * chunk : offsets[k] + (s + 1) * chunk]
                    for k in range(n)
                }
                t0 = time.perf_counter()
                batch.accept(feed)
                if s >= warm:
                    times.append(time.perf_counter() - t0)
        else:
            recs = [Recognizer(pkg, **opts, max_block_s=cfg["chunk_ms"] / 1000.0) for _ in range(n)]
            for s in range(steps + warm):
                t0 = time.perf_counter()
                for k, rec in enumerate(recs):
                    rec.accept_waveform(
                        audio[offsets[k] + s * chunk : offsets[k] + (s + 1) * chunk]
                    )
                if s >= warm:
                    times.append(time.perf_counter() - t0)
        out[mode] = times
    return out


def _worker_position(cfg: dict) -> dict:
    import jiwer
    import torch

    from asr.stream import Recognizer
    from asr.text import normalize_text

    torch.set_num_threads(1)
    utts = _manifest_audio(cfg["manifest"], cfg.get("limit_s"))
    rng = np.random.default_rng(0)
    gaps = [int(rng.uniform(1.2, 2.0) * SAMPLE_RATE) for _ in utts]
    chunk = int(cfg["chunk_ms"] * SAMPLE_RATE / 1000)
    refs = [normalize_text(text) for _, text, _ in utts]
    results: dict[str, Any] = {}
    opts = _options(cfg)
    # one fresh stream per utterance (the offline equivalent)
    rec = Recognizer(cfg["model"], **opts)
    hyps = []
    for _, _, wav in utts:
        rec.reset()
        texts = []
        for at in range(0, wav.size, chunk):
            texts += [
                r.text for r in rec.accept_waveform(wav[at : at + chunk]) if r.kind == "final"
            ]
        texts.append(rec.finalize().text)
        hyps.append(" ".join(t for t in texts if t))
    results["per utterance"] = hyps
    spans, at = [], 0
    for (_, _, wav), gap in zip(utts, gaps, strict=True):
        spans.append((at / SAMPLE_RATE, (at + wav.size) / SAMPLE_RATE))
        at += wav.size + gap
    for mode, reset in (
        ("one stream, state carried", False),
        ("one stream, reset at endpoints", True),
    ):
        rec = Recognizer(cfg["model"], **opts, silence_s=cfg["endpoint_s"], reset_encoder=reset)
        words: list[Any] = []
        for (_, _, wav), gap in zip(utts, gaps, strict=True):
            stream = np.concatenate([wav, np.zeros(gap, dtype=np.float32)])
            for a in range(0, stream.size, chunk):
                words += [
                    w
                    for r in rec.accept_waveform(stream[a : a + chunk])
                    if r.kind == "final"
                    for w in r.words
                ]
        words += rec.finalize().words
        hyp_words: list[list[str]] = [[] for _ in utts]
        for w in words:  # a word belongs to the utterance its middle falls in (pauses split)
            mid = 0.5 * (w.start + w.end)
            i = int(np.searchsorted([s for s, _ in spans], mid, side="right")) - 1
            hyp_words[max(i, 0)].append(w.word)
        results[mode] = [" ".join(h) for h in hyp_words]
    out: dict[str, Any] = {"audio_s": spans[-1][1], "utterances": len(utts), "modes": {}}
    quarters = np.array_split(np.arange(len(utts)), 4)
    for mode, hyps in results.items():
        hyps_n = [normalize_text(h) for h in hyps]
        wer = jiwer.wer(refs, hyps_n) * 100
        by_q = [jiwer.wer([refs[i] for i in q], [hyps_n[i] for i in q]) * 100 for q in quarters]
        out["modes"][mode] = {"wer": wer, "wer_by_quarter": by_q}
    return out


WORKERS = {
    "memory": _worker_memory,
    "latency": _worker_latency,
    "concurrency": _worker_concurrency,
    "position": _worker_position,
}


def _run(kind: str, cfg: dict, cpus: str | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(cfg.get("threads", 1))}
    cmd = ["taskset", "-c", cpus] if cpus else []
    cmd += [sys.executable, __file__, "--_worker", json.dumps({"kind": kind, **cfg})]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# reports


def _machine() -> str:
    from asr.machine import machine_description

    return machine_description()


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.4f} ({min(values):.4f}-{max(values):.4f})"


def _plot_memory(res: dict, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    hours = [t / 3600 for t, _ in res["rss"]]
    a.plot(hours, [m for _, m in res["rss"]], lw=1)
    a.set_ylabel("RSS (MB)")
    a.set_title(title, fontsize=9)
    a.grid(alpha=0.3)
    wh = [t / 3600 for t, _, _ in res["windows"]]
    b.plot(wh, [m for _, m, _ in res["windows"]], label="median", lw=1)
    b.plot(wh, [p for _, _, p in res["windows"]], label="95th percentile", lw=1)
    b.set_ylabel("compute per chunk (ms)")
    b.set_xlabel("stream time (hours)")
    b.set_ylim(bottom=0)
    b.legend()
    b.grid(alpha=0.3)
    for hour in range(int(max(wh + [0])) + 1):  # the silent stretches
        for ax in (a, b):
            ax.axvspan(hour + 0.5, hour + 2 / 3, color="0.9", lw=0)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def _report_memory(args: argparse.Namespace, cfg: dict) -> list[str]:
    res = _run("memory", cfg)
    rss = dict(res["rss"])
    at = {s: rss[min(rss, key=lambda t, s=s: abs(t - s))] for s in (60, 7200, res["audio_s"])}
    png = Path(args.out).with_name(f"streaming_memory_{args.search}.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    _plot_memory(
        res, png, f"{Path(args.model[0]).parent.name}, {args.search}, {args.chunk_ms:g} ms chunks"
    )
    Path(png.with_suffix(".json")).write_text(json.dumps(res))
    meds = [m for _, m, _ in res["windows"]]
    return [
        f"- {res['audio_s'] / 3600:.2f} h of synthetic signal in {res['wall_s'] / 60:.1f} min "
        f"(RTF {res['rtf']:.4f}); {res['final_words']} words in final results; encoder state "
        f"{res['state_bytes'] / 1024:.0f} KiB",
        f"- RSS after 1 min {at[60]:.1f} MB, after 2 h {at[7200]:.1f} MB "
        f"(difference {at[7200] - at[60]:+.1f} MB), at the end {at[res['audio_s']]:.1f} MB; "
        f"max {max(rss.values()):.1f} MB",
        f"- per-chunk compute, medians of 10-minute windows: {min(meds):.2f}-{max(meds):.2f} ms "
        f"(first window {meds[0]:.2f}, last {meds[-1]:.2f})",
        f"- plot: `{png.relative_to(REPO) if png.is_relative_to(REPO) else png}`",
    ]


def _report_latency(args: argparse.Namespace, common: dict) -> list[str]:
    lines = [
        "| model | search | chunk frames | look-ahead (ms) | compute per chunk median / p95 / max (ms) "
        "| RTF streamed, median (range) | RTF offline | streamed / offline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in args.model:
        for search in _searches(args):
            cfg = {**common, "model": model, **search}
            res = _run("latency", cfg, cpus=str(args.cpu))
            rtf_s = [r["stream_s"] / r["audio_s"] for r in res["rounds"]]
            rtf_o = [r["offline_s"] / r["audio_s"] for r in res["rounds"]]
            ratio = [s / o for s, o in zip(rtf_s, rtf_o, strict=True)]
            lo, hi = res["lookahead_ms"]
            lines.append(
                f"| {Path(model).parent.name} | {search['search']} | {res['chunk_frames']} | "
                f"{lo:g}-{hi:g} | {res['chunk_median_ms']:.2f} / {res['chunk_p95_ms']:.2f} / "
                f"{res['chunk_max_ms']:.2f} | {_spread(rtf_s)} | {_spread(rtf_o)} | "
                f"{statistics.median(ratio):.2f}x |"
            )
            print(lines[-1], file=sys.stderr)
    return lines


def _report_concurrency(args: argparse.Namespace, common: dict) -> list[str]:
    chunk_s = args.chunk_ms / 1000.0
    lines = [
        f"| streams | batched step median / p95 (ms) | one by one median / p95 (ms) | batched speed-up "
        f"| real time ({args.chunk_ms:g} ms per step), batched / one by one |",
        "|---|---|---|---|---|",
    ]
    best = {"batched": 0, "single": 0}
    for search in _searches(args):
        lines.append(f"| **{search['search']}** | | | | |")
        for n in args.streams:
            cfg = {
                **common,
                "model": args.model[0],
                "streams": n,
                "threads": args.threads,
                **search,
            }
            res = _run("concurrency", cfg, cpus=args.cpus or None)
            q = {m: (np.median(t) * 1000, np.quantile(t, 0.95) * 1000) for m, t in res.items()}
            ok = {m: q[m][1] <= chunk_s * 1000 for m in q}
            for m in ok:
                if ok[m]:
                    best[m] = max(best[m], n) if search["search"] == "greedy" else best[m]
            lines.append(
                f"| {n} | {q['batched'][0]:.1f} / {q['batched'][1]:.1f} | {q['single'][0]:.1f} / "
                f"{q['single'][1]:.1f} | {q['single'][0] / q['batched'][0]:.2f}x | "
                f"{'yes' if ok['batched'] else 'no'} / {'yes' if ok['single'] else 'no'} |"
            )
            print(lines[-1], file=sys.stderr)
    return lines


def _report_position(args: argparse.Namespace, common: dict) -> list[str]:
    lines = [
        "| model | search | decoding | WER % | WER % by quarter of the stream |",
        "|---|---|---|---|---|",
    ]
    for model in args.model:
        for search in _searches(args):
            res = _run("position", {**common, "model": model, **search})
            for mode, r in res["modes"].items():
                q = " / ".join(f"{w:.1f}" for w in r["wer_by_quarter"])
                lines.append(
                    f"| {Path(model).parent.name} | {search['search']} | {mode} | "
                    f"{r['wer']:.2f} | {q} |"
                )
                print(lines[-1], file=sys.stderr)
    lines.insert(
        0, f"- {res['utterances']} utterances, {res['audio_s'] / 60:.1f} min as one stream"
    )
    return lines


def _searches(args: argparse.Namespace) -> list[dict]:
    out = [] if args.no_greedy else [{"search": "greedy"}]
    if args.lexicon and args.lm:
        out.append(
            {
                "search": "beam",
                "lexicon": args.lexicon,
                "lm": args.lm,
                "lm_weight": args.lm_weight,
                "word_score": args.word_score,
                "beam_size": args.beam_size,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=sorted(WORKERS), nargs="?")
    p.add_argument("--model", action="append", default=[], help="streaming model package(s)")
    p.add_argument(
        "--manifest", help="JSONL manifest of the audio (latency, concurrency, position)"
    )
    p.add_argument("--limit-minutes", type=float, help="use only this much of the manifest")
    p.add_argument("--chunk-ms", type=float, default=160.0)
    p.add_argument("--hours", type=float, default=8.0, help="memory: stream length")
    p.add_argument("--search", default="greedy", choices=("greedy", "beam"), help="memory")
    p.add_argument("--max-segment", type=float, default=None, help="memory: max_segment_s")
    p.add_argument("--lexicon")
    p.add_argument("--lm")
    p.add_argument("--lm-weight", type=float, default=3.0)
    p.add_argument("--word-score", type=float, default=1.0)
    p.add_argument("--beam-size", type=int, default=50)
    p.add_argument("--no-greedy", action="store_true", help="only beam search")
    p.add_argument("--repeats", type=int, default=3, help="latency rounds")
    p.add_argument("--cpu", type=int, default=0, help="latency: the core to pin to")
    p.add_argument(
        "--streams", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8, 16, 32, 64]
    )
    p.add_argument("--steps", type=int, default=100, help="concurrency: steps measured")
    p.add_argument("--threads", type=int, default=2, help="concurrency: torch threads")
    p.add_argument("--cpus", default="0,1", help="concurrency: taskset CPU list ('' = none)")
    p.add_argument("--endpoint-s", type=float, default=0.8, help="position: endpoint silence")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker:
        cfg = json.loads(args._worker)
        print(json.dumps(WORKERS[cfg["kind"]](cfg)))
        return 0
    if not args.kind or not args.model:
        p.error("give a subcommand and --model")
    if args.kind in ("latency", "concurrency", "position") and not args.manifest:
        p.error(f"{args.kind} needs --manifest")
    common = {
        "chunk_ms": args.chunk_ms,
        "manifest": args.manifest,
        "limit_s": args.limit_minutes * 60 if args.limit_minutes else None,
        "repeats": args.repeats,
        "cpu": args.cpu,
        "steps": args.steps,
        "endpoint_s": args.endpoint_s,
    }
    load = [os.getloadavg()[0]]
    if args.kind == "memory":
        cfg = {**common, "model": args.model[0], "hours": args.hours, "search": args.search}
        if args.search == "beam":
            cfg.update(_searches(args)[-1])
        cfg["max_segment_s"] = args.max_segment
        body = _report_memory(args, cfg)
    else:
        body = {
            "latency": _report_latency,
            "concurrency": _report_concurrency,
            "position": _report_position,
        }[args.kind](args, common)
    load.append(os.getloadavg()[0])
    cmd = "python tools/bench_streaming.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"\n## {args.kind}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- command: `{cmd}`",
        f"- machine: {_machine()}; 1-min load average {min(load):.1f}-{max(load):.1f} at start/end",
        *body,
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        out.write_text("# Streaming benchmarks (tools/bench_streaming.py)\n")
    with open(out, "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
