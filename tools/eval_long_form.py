"""Long recordings: WER of long-form decoding against the same sentences decoded one by one,
and peak memory against recording length.

Accuracy (default mode): the utterances of held-out manifests are concatenated, in order, with
``--pause`` seconds between them, into one recording (``--group-seconds`` makes several of about
that length instead). A pause holds white noise at the level of the quieter utterance edge
beside it, so the background goes on through it as in a recording (silence between clean
utterances). The
recording is decoded long-form with each ``--modes`` entry (``asr-decode --long-audio``), the
sentences one by one, and each long hypothesis is scored against the concatenated reference
(the one-by-one hypotheses are concatenated the same way).

    python tools/eval_long_form.py exp/demo/model.safetensors \\
        --manifests data/demo/corpus/test.jsonl data/demo/corpus/test_unseen.jsonl

Memory (``--memory-minutes 10 60 180``): recordings of those lengths (the sentences repeated)
are decoded with ``asr-decode``'s defaults, each in a fresh process, and its peak RSS is
reported. Decoding options come from the package's bundle plus ``--set name=value``.
Results are printed as markdown with the command and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from asr.audio import load_audio
from asr.data.manifest import read_manifest
from asr.inference import DecodeStats, iter_transcribe, options_for_model
from asr.machine import machine_description
from asr.score import score
from asr.transcripts import Transcript

SR = 16000


def _edge_rms(wav: np.ndarray, head: bool, seconds: float = 0.1) -> float:
    """RMS of an utterance's first (``head``) or last ``seconds``: the background there."""
    n = max(1, int(seconds * SR))
    part = wav[:n] if head else wav[-n:]
    return float(np.sqrt(np.mean(np.square(part)))) if len(part) else 0.0


def build_recordings(
    manifests: list[str],
    out_dir: Path,
    pause_s: float,
    group_s: float | None = None,
    total_s: float | None = None,
    seed: int = 0,
) -> list[tuple[Path, str, list[str]]]:
    """Write the concatenated recordings; returns (path, reference text, utterance ids) each.

    ``total_s``: cycle through the utterances until the recording is this long (memory runs).
    A pause is white noise at the quieter of the two utterance edges around it (their first or
    last 0.1 s): the background the listener hears there goes on, a clean edge stays silent.
    Written block by block, so a 3-hour recording never sits in memory.
    """
    utts = [u for m in manifests for u in read_manifest(m)]
    if not utts:
        raise SystemExit("eval_long_form: the manifests hold no utterances")
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    recordings: list[tuple[Path, str, list[str]]] = []
    writer, texts, ids, seconds, k, tail = None, [], [], 0.0, 0, 0.0
    while True:
        u = utts[k % len(utts)]
        if writer is None:
            path = out_dir / f"long_{len(recordings):03d}.flac"
            writer = sf.SoundFile(path, "w", SR, 1, subtype="PCM_16")
            texts, ids, seconds = [], [], 0.0
        wav = load_audio(u.audio, SR, u.offset or 0.0, u.duration).waveform.numpy()
        if ids:  # a pause before every utterance but the first
            level = min(tail, _edge_rms(wav, head=True))
            writer.write((rng.standard_normal(int(pause_s * SR)) * level).astype(np.float32))
            seconds += pause_s
        tail = _edge_rms(wav, head=False)
        writer.write(wav)
        seconds += len(wav) / SR
        texts.append(u.text or "")
        ids.append(u.id)
        k += 1
        done = k >= len(utts) if total_s is None else seconds >= total_s
        if done or (group_s is not None and seconds >= group_s):
            writer.close()
            recordings.append((path, " ".join(t for t in texts if t), ids))
            writer = None
            if done:
                return recordings


def _decode(model: str, inputs: list[str], given: dict) -> tuple[dict[str, str], DecodeStats]:
    options = options_for_model(model, given)
    stats = DecodeStats()
    hyps = {}
    for r in iter_transcribe(model, inputs, options, stats=stats):
        if r.error:
            raise SystemExit(f"eval_long_form: {r.error}")
        hyps[r.id] = r.text
    return hyps, stats


def _in_subprocess(model: str, inputs: list[str], given: dict) -> dict:
    """Decode in a fresh process, so its peak RSS is this decode's alone."""
    cfg = {"model": model, "inputs": inputs, "given": given}
    proc = subprocess.run(
        [sys.executable, __file__, "--_worker", json.dumps(cfg)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _worker(cfg: dict) -> dict:
    start = time.perf_counter()
    hyps, stats = _decode(cfg["model"], cfg["inputs"], cfg["given"])
    return {
        "hyps": hyps,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wall_s": time.perf_counter() - start,
        "audio_s": stats.audio_seconds,
    }


def accuracy(args: argparse.Namespace, given: dict) -> list[str]:
    recordings = build_recordings(
        args.manifests, Path(args.work_dir), args.pause, args.group_seconds
    )
    audio_s = sum(sf.info(str(p)).duration for p, _, _ in recordings)
    print(f"{len(recordings)} recording(s), {audio_s / 60:.1f} min in all", file=sys.stderr)
    refs = {p.stem: Transcript(p.stem, text) for p, text, _ in recordings}
    cache = Path(args.work_dir) / "one_by_one.json"  # reused while model, inputs, options stay
    key = {
        "model": [str(args.model), Path(args.model).stat().st_mtime_ns],
        "manifests": args.manifests,
        "given": given,
    }
    previous = json.loads(cache.read_text()) if cache.is_file() else {}
    if previous.get("key") != key:
        previous = {"key": key, **_in_subprocess(args.model, args.manifests, given)}
        if "error" in previous:
            raise SystemExit(f"eval_long_form: one-by-one decoding failed: {previous['error']}")
        cache.write_text(json.dumps(previous))
    by_one = previous["hyps"]
    one_hyps = {
        p.stem: Transcript(p.stem, " ".join(by_one[i] for i in ids if by_one[i]))
        for p, _, ids in recordings
    }
    rows = [("sentences one by one", score(refs, one_hyps), previous)]
    for mode in args.modes:
        inputs = [str(p) for p, _, _ in recordings]
        run = _in_subprocess(args.model, inputs, {**given, "long_audio": mode})
        hyps = {k: Transcript(k, v) for k, v in run.get("hyps", {}).items()}
        rows.append((f"long form, {mode}", score(refs, hyps) if hyps else None, run))
        print(f"{mode}: done", file=sys.stderr)
    base = rows[0][1].words.rate
    lines = [
        "| decoding | WER % | CER % | relative to one by one | peak RSS MB | wall s | RTF |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, res, run in rows:
        if res is None:
            lines.append(f"| {name} | failed: {run.get('error')} | | | | | |")
            continue
        rel = f"{100 * (res.words.rate / base - 1):+.1f}%" if base else "-"
        lines.append(
            f"| {name} | {100 * res.words.rate:.2f} | {100 * res.chars.rate:.2f} | {rel} | "
            f"{run['peak_mb']:.0f} | {run['wall_s']:.0f} | {run['wall_s'] / run['audio_s']:.4f} |"
        )
    n_sentences = sum(len(i) for _, _, i in recordings)
    lines.append(
        f"\n{len(recordings)} recording(s) of {audio_s / 60:.1f} min in all, {n_sentences} "
        f"sentences, {args.pause:g} s pauses."
    )
    return lines


def memory(args: argparse.Namespace, given: dict) -> list[str]:
    lines = ["| recording | long_audio | peak RSS (MB) | wall s | RTF |", "|---|---|---|---|---|"]
    for minutes in args.memory_minutes:
        work = Path(args.work_dir) / f"memory_{minutes:g}min"
        ((path, _, _),) = build_recordings(args.manifests, work, args.pause, total_s=minutes * 60)
        for mode in args.modes:
            r = _in_subprocess(args.model, [str(path)], {**given, "long_audio": mode})
            if "error" in r:
                lines.append(f"| {minutes:g} min | {mode} | failed: {r['error']} | | |")
            else:
                lines.append(
                    f"| {r['audio_s'] / 60:.0f} min | {mode} | {r['peak_mb']:.0f} | "
                    f"{r['wall_s']:.0f} | {r['wall_s'] / r['audio_s']:.4f} |"
                )
            print(lines[-1], file=sys.stderr)
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_worker"]:  # one decode in this fresh process (see _in_subprocess)
        print(json.dumps(_worker(json.loads(argv[1]))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--manifests", nargs="+", required=True, help="held-out JSONL manifests")
    p.add_argument("--pause", type=float, default=0.5, help="seconds between sentences")
    p.add_argument("--group-seconds", type=float, help="several recordings of about this length")
    p.add_argument(
        "--modes",
        nargs="+",
        default=["segment", "chunk", "whole"],
        choices=["segment", "chunk", "whole"],
    )
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="decoding options over the bundle's (YAML values)",
    )
    p.add_argument("--memory-minutes", type=float, nargs="+", help="measure peak RSS instead")
    p.add_argument("--work-dir", default="scratch/long_form", help="where the recordings go")
    args = p.parse_args(argv)
    given = {}
    for item in args.set:
        name, _, value = item.partition("=")
        given[name] = yaml.safe_load(value)
    start = time.perf_counter()
    lines = memory(args, given) if args.memory_minutes else accuracy(args, given)
    cmd = "python tools/eval_long_form.py " + " ".join(argv)
    print(f"- command: `{cmd}`")
    print(
        f"- machine: {machine_description()}; load average {os.getloadavg()[0]:.1f} at the end; {time.perf_counter() - start:.0f} s in all"
    )
    print(f"- decoding options: {options_for_model(args.model, given).flat(changed_only=True)}\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
