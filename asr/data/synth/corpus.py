"""Making the corpus: find the engines, plan, render every utterance (in worker processes),
augment the training audio if asked, write manifests.

Output in ``out_dir``: ``audio/<split>/<id>.flac``, ``<split>.jsonl`` manifests
(:mod:`asr.data.manifest`), ``lm_text.txt`` (LM text disjoint from the evaluation sentences),
``synth_config.json`` (what made it, with the voices that could be spoken) and
``synth_summary.json`` (sizes, and each engine's speed in x real time). With augmentation, the
unaugmented training audio stays in ``audio/train_clean`` and ``train_clean.jsonl``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm import tqdm

from asr.data.augment import augment_manifest
from asr.data.manifest import Utterance, write_manifest
from asr.data.synth.config import SPLITS, SynthConfig
from asr.data.synth.engine import EngineError, SpeechEngine, Voice, find_engines
from asr.data.synth.plan import UttSpec, plan_corpus
from asr.data.synth.render import Failed, RenderContext, Rendered, render_batch
from asr.data.text_sources import SentenceFilter, fortune_sentences

CONFIG_FILE = "synth_config.json"
SUMMARY_FILE = "synth_summary.json"
# Text for language models: every source sentence except those spoken in the evaluation
# splits, like WSJ's LM text, which is far larger than its acoustic transcripts.
LM_TEXT_FILE = "lm_text.txt"
CLEAN_TRAIN = "train_clean"  # the training split before augmentation
# Utterances per worker task: one voice each, so festival starts once per batch.
BATCH_SIZE = 16
MAX_FAILURES_SHOWN = 10


def manifest_paths(out_dir: str | Path) -> dict[str, Path]:
    """Where :func:`synthesize_corpus` writes each split's manifest."""
    return {s: Path(out_dir) / f"{s}.jsonl" for s in SPLITS}


def _one_thread() -> None:
    """Render on one thread: the workers use every core between them, and one utterance is
    too small a job to split."""
    torch.set_num_threads(1)


def _write_manifest_atomically(path: Path, utterances: list[Utterance]) -> None:
    """An interrupted run must never leave a manifest that looks done."""
    tmp = path.with_suffix(".jsonl.tmp")
    write_manifest(tmp, utterances)
    os.replace(tmp, path)


def _batches(
    plans: dict[str, list[UttSpec]], split_dirs: dict[str, str]
) -> Iterator[tuple[list[UttSpec], str]]:
    """Each split's utterances grouped by voice, in plan order, cut into batches."""
    for split, specs in plans.items():
        by_voice: dict[Voice, list[UttSpec]] = {}
        for spec in specs:
            by_voice.setdefault(spec.voice, []).append(spec)
        for voice_specs in by_voice.values():
            for i in range(0, len(voice_specs), BATCH_SIZE):
                yield voice_specs[i : i + BATCH_SIZE], split_dirs[split]


def _render_task(
    args: tuple[list[UttSpec], RenderContext, str],
) -> tuple[list[Rendered | Failed], float]:
    """Render one batch; also returns its wall time (for each engine's speed)."""
    start = time.perf_counter()
    results = render_batch(*args)
    return results, time.perf_counter() - start


def _render_all(
    plans: dict[str, list[UttSpec]], ctx: RenderContext, split_dirs: dict[str, str],
    jobs: int, progress: bool,
) -> tuple[dict[str, Rendered | Failed], dict[str, float]]:  # fmt: skip
    """Every planned utterance, by id; and the worker seconds each engine took."""
    tasks = [(specs, ctx, d) for specs, d in _batches(plans, split_dirs)]
    total = sum(len(t[0]) for t in tasks)
    bar = tqdm(total=total, desc="synth", unit="utt", disable=not progress)
    results: dict[str, Rendered | Failed] = {}
    seconds: dict[str, float] = {}

    def collect(task: tuple, out: tuple[list[Rendered | Failed], float]) -> None:
        engine = task[0][0].voice.engine
        seconds[engine] = seconds.get(engine, 0.0) + out[1]
        results.update((r.id, r) for r in out[0])
        bar.update(len(out[0]))

    if jobs == 1:
        threads = torch.get_num_threads()
        _one_thread()
        try:
            for task in tasks:
                collect(task, _render_task(task))
        finally:
            torch.set_num_threads(threads)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(jobs, initializer=_one_thread) as pool:
            for task, out in zip(tasks, pool.imap(_render_task, tasks), strict=True):
                collect(task, out)
    bar.close()
    return results, seconds


def _report_failures(
    plans: dict[str, list[UttSpec]], results: dict[str, Rendered | Failed]
) -> list[str]:
    """Print the sentences an engine could not say (they are left out); a voice that said
    nothing at all is an error, not a bad sentence."""
    failed = [r for r in results.values() if isinstance(r, Failed)]
    for f in failed[:MAX_FAILURES_SHOWN]:
        print(f"synth: left out {f.id}: {f.error}")
    if len(failed) > MAX_FAILURES_SHOWN:
        print(f"synth: ... and {len(failed) - MAX_FAILURES_SHOWN} more left out")
    by_voice: dict[Voice, list[bool]] = {}
    for specs in plans.values():
        for spec in specs:
            by_voice.setdefault(spec.voice, []).append(isinstance(results[spec.id], Failed))
    for voice, fails in by_voice.items():
        if all(fails):
            first = next(
                r for r in failed if r.id.startswith(f"{voice.slug}_")
            )  # the voice's first error says why
            raise EngineError(f"voice {voice} failed on all {len(fails)} sentences: {first.error}")
    return [f.id for f in failed]


def synthesize_corpus(
    cfg: SynthConfig,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    engines: dict[str, SpeechEngine] | None = None,
) -> dict[str, Path]:
    """Synthesise the corpus into ``out_dir``; returns ``{split: manifest path}``.

    Skips the work when all manifests exist for the same config and the same usable voices
    (so recipe stages can be re-run); a different config there is an error unless
    ``overwrite``. ``engines`` replaces the engines found on PATH (by engine name).
    """
    out = Path(out_dir)
    paths = manifest_paths(out)
    cfg_path = out / CONFIG_FILE
    all_voices = [Voice.parse(v) for v in (*cfg.voices, *cfg.train_only_voices, cfg.unseen_voice)]
    found, available = find_engines(all_voices, engines)
    fingerprint = {**cfg.fingerprint(), "voices_spoken": [str(v) for v in available]}
    if not overwrite and all(p.exists() for p in paths.values()):
        stored = json.loads(cfg_path.read_text()) if cfg_path.exists() else None
        if stored is not None and stored != fingerprint:
            raise FileExistsError(
                f"{out} holds a corpus made with a different config or other voices "
                f"({cfg_path}); pass --overwrite (overwrite=True) or choose another --out-dir"
            )
        print(f"synth: manifests already in {out}; skipping (use --overwrite to redo)")
        return paths
    if not set(available) & {Voice.parse(v) for v in cfg.training_voices()}:
        raise EngineError(
            f"none of the training voices can be spoken ({', '.join(cfg.training_voices())}); "
            "install their engines: 'make system-deps'"
        )

    sentences = fortune_sentences(cfg.text_dir, SentenceFilter(cfg.min_words, cfg.max_words))
    plans = plan_corpus(cfg, sentences, available)
    split_dirs = {s: s for s in SPLITS}
    if cfg.augment is not None:
        split_dirs["train"] = CLEAN_TRAIN
    for d in (*SPLITS, CLEAN_TRAIN):
        split_dir = out / "audio" / d
        if split_dir.exists():
            shutil.rmtree(split_dir)  # stale files of an earlier, larger run
    for d in split_dirs.values():
        (out / "audio" / d).mkdir(parents=True)
    for p in (*paths.values(), out / f"{CLEAN_TRAIN}.jsonl"):
        p.unlink(missing_ok=True)

    ctx = RenderContext(str(out), found, cfg.sample_rate)
    start = time.perf_counter()
    results, engine_seconds = _render_all(plans, ctx, split_dirs, cfg.jobs, progress)
    synth_elapsed = time.perf_counter() - start
    failed = _report_failures(plans, results)

    summary: dict[str, dict] = {}
    engine_audio: dict[str, float] = {}
    for split in SPLITS:
        utts = []
        for spec in plans[split]:
            res = results[spec.id]
            if isinstance(res, Failed):
                continue
            duration = round(res.frames / cfg.sample_rate, 6)
            engine_audio[spec.voice.engine] = engine_audio.get(spec.voice.engine, 0.0) + duration
            utts.append(
                Utterance(spec.id, str(out / res.path), duration, spec.text, str(spec.voice))
            )
        manifest = paths[split]
        if split == "train" and cfg.augment is not None:
            manifest = out / f"{CLEAN_TRAIN}.jsonl"
        _write_manifest_atomically(manifest, utts)
        summary[split] = {
            "utterances": len(utts),
            "hours": sum(u.duration for u in utts) / 3600,
            "voices": sorted({u.speaker for u in utts if u.speaker}),
            "vocabulary": len({w for u in utts for w in u.text.split()}),
        }
    augment_elapsed = 0.0
    if cfg.augment is not None:
        start = time.perf_counter()
        augment_manifest(
            out / f"{CLEAN_TRAIN}.jsonl", paths["train"], cfg.augment, seed=(cfg.seed,),
            jobs=cfg.jobs, audio_dir=out / "audio" / "train", progress=progress,
        )  # fmt: skip
        augment_elapsed = time.perf_counter() - start
    total_hours = sum(s["hours"] for s in summary.values())
    summary["_engines"] = {
        name: {
            "hours": engine_audio.get(name, 0.0) / 3600,
            "worker_seconds": engine_seconds[name],
            "x_real_time_per_worker": engine_audio.get(name, 0.0) / max(engine_seconds[name], 1e-9),
        }
        for name in sorted(engine_seconds)
    }
    summary["_total"] = {
        "sentences_available": len(sentences),
        "hours": total_hours,
        "seconds_elapsed": synth_elapsed,
        "x_real_time": total_hours * 3600 / max(synth_elapsed, 1e-9),
        "augment_seconds": augment_elapsed,
        "jobs": cfg.jobs,
        "left_out": failed,
    }
    held_out = {spec.text for split in SPLITS if split != "train" for spec in plans[split]}
    lm_text = [s.text for s in sentences if s.text not in held_out]
    (out / LM_TEXT_FILE).write_text("\n".join(lm_text) + "\n")
    summary["_total"]["lm_text_sentences"] = len(lm_text)
    cfg_path.write_text(json.dumps(fingerprint, indent=2) + "\n")
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    print(format_summary(summary, out))
    return paths


def format_summary(summary: dict, out_dir: Path) -> str:
    """Human-readable table of what was written."""
    lines = [
        f"synthetic corpus in {out_dir}:",
        f"  {'split':<20}{'utts':>7}{'hours':>8}{'vocab':>7}  voices",
    ]
    for split in SPLITS:
        s = summary[split]
        lines.append(
            f"  {split:<20}{s['utterances']:>7}{s['hours']:>8.3f}{s['vocabulary']:>7}  {len(s['voices'])}: {', '.join(s['voices'])}"
        )
    for name, e in summary.get("_engines", {}).items():
        lines.append(
            f"  {name}: {e['hours']:.3f} h in {e['worker_seconds']:.1f} worker-seconds "
            f"({e['x_real_time_per_worker']:.0f}x real time per worker)"
        )
    t = summary["_total"]
    lines.append(
        f"  total {t['hours']:.3f} h in {t['seconds_elapsed']:.1f} s "
        f"({t['x_real_time']:.0f}x real time, {t['jobs']} jobs); "
        f"{t['sentences_available']} sentences available"
    )
    if t.get("augment_seconds"):
        lines.append(f"  training audio augmented in {t['augment_seconds']:.1f} s")
    if t.get("left_out"):
        lines.append(f"  {len(t['left_out'])} utterances left out (the engine failed on them)")
    return "\n".join(lines)
