"""Making the corpus: plan it, render every utterance (in worker processes), write manifests.

Output in ``out_dir``: ``audio/<split>/<id>.flac``, ``<split>.jsonl`` manifests
(:mod:`asr.data.manifest`), ``lm_text.txt`` (LM text disjoint from the evaluation sentences),
``synth_config.json`` (what made it) and ``synth_summary.json``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path

import torch
from tqdm import tqdm

from asr.data.manifest import Utterance, write_manifest
from asr.data.synth.config import SPLITS, SynthConfig
from asr.data.synth.engine import SpeechEngine, make_engine
from asr.data.synth.plan import UttSpec, plan_corpus
from asr.data.synth.render import RenderContext, render_utterance
from asr.data.text_sources import SentenceFilter, fortune_sentences

CONFIG_FILE = "synth_config.json"
SUMMARY_FILE = "synth_summary.json"
# Text for language models: every source sentence except those spoken in dev/test/test_unseen,
# like WSJ's LM text, which is far larger than its acoustic transcripts.
LM_TEXT_FILE = "lm_text.txt"


def manifest_paths(out_dir: str | Path) -> dict[str, Path]:
    """Where :func:`synthesize_corpus` writes each split's manifest."""
    return {s: Path(out_dir) / f"{s}.jsonl" for s in SPLITS}


def _render_star(args: tuple[UttSpec, RenderContext]) -> tuple[str, int]:
    return render_utterance(*args)


def _one_thread() -> None:
    """Render on one thread: the workers use every core between them, and one utterance is
    too small a job to split."""
    torch.set_num_threads(1)


def _write_manifest_atomically(path: Path, utterances: list[Utterance]) -> None:
    """An interrupted run must never leave a manifest that looks done."""
    tmp = path.with_suffix(".jsonl.tmp")
    write_manifest(tmp, utterances)
    os.replace(tmp, path)


def synthesize_corpus(
    cfg: SynthConfig,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    engine: SpeechEngine | None = None,
) -> dict[str, Path]:
    """Synthesise the corpus into ``out_dir``; returns ``{split: manifest path}``.

    Skips the work when all manifests exist for the same config (so recipe stages can be
    re-run); a different config there is an error unless ``overwrite``. ``engine`` replaces
    the one the config names (:func:`~asr.data.synth.engine.make_engine`).
    """
    out = Path(out_dir)
    paths = manifest_paths(out)
    cfg_path = out / CONFIG_FILE
    if not overwrite and all(p.exists() for p in paths.values()):
        stored = json.loads(cfg_path.read_text()) if cfg_path.exists() else None
        if stored is not None and stored != cfg.fingerprint():
            raise FileExistsError(
                f"{out} holds a corpus made with a different config ({cfg_path}); "
                "pass --overwrite (overwrite=True) or choose another --out-dir"
            )
        print(f"synth: manifests already in {out}; skipping (use --overwrite to redo)")
        return paths

    engine = engine or make_engine(cfg)
    engine.check_voices((*cfg.voices, cfg.unseen_voice))
    sentences = fortune_sentences(cfg.text_dir, SentenceFilter(cfg.min_words, cfg.max_words))
    plans = plan_corpus(cfg, sentences)
    for split in SPLITS:
        split_dir = out / "audio" / split
        if split_dir.exists():
            shutil.rmtree(split_dir)  # stale files of an earlier, larger run
        split_dir.mkdir(parents=True)
    for p in paths.values():
        p.unlink(missing_ok=True)

    ctx = RenderContext(str(out), engine, cfg.sample_rate)
    jobs_list = [(spec, ctx) for split in SPLITS for spec in plans[split]]
    start = time.perf_counter()
    bar = tqdm(total=len(jobs_list), desc="synth", unit="utt", disable=not progress)
    results: list[tuple[str, int]] = []
    if cfg.jobs == 1:
        threads = torch.get_num_threads()
        _one_thread()
        try:
            for job in jobs_list:
                results.append(_render_star(job))
                bar.update()
        finally:
            torch.set_num_threads(threads)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(cfg.jobs, initializer=_one_thread) as pool:
            for res in pool.imap(_render_star, jobs_list, chunksize=8):
                results.append(res)
                bar.update()
    bar.close()
    elapsed = time.perf_counter() - start

    it = iter(results)
    summary: dict[str, dict] = {}
    for split in SPLITS:
        utts = []
        for spec in plans[split]:
            rel, frames = next(it)
            duration = round(frames / cfg.sample_rate, 6)
            utts.append(Utterance(spec.id, str(out / rel), duration, spec.text, spec.voice))
        _write_manifest_atomically(paths[split], utts)
        summary[split] = {
            "utterances": len(utts),
            "hours": sum(u.duration for u in utts) / 3600,
            "voices": sorted({u.speaker for u in utts}),
            "vocabulary": len({w for u in utts for w in u.text.split()}),
        }
    total_hours = sum(s["hours"] for s in summary.values())
    summary["_total"] = {
        "sentences_available": len(sentences),
        "hours": total_hours,
        "seconds_elapsed": elapsed,
        "x_real_time": total_hours * 3600 / max(elapsed, 1e-9),
        "jobs": cfg.jobs,
    }
    held_out = {spec.text for split in SPLITS if split != "train" for spec in plans[split]}
    lm_text = [s.text for s in sentences if s.text not in held_out]
    (out / LM_TEXT_FILE).write_text("\n".join(lm_text) + "\n")
    summary["_total"]["lm_text_sentences"] = len(lm_text)
    cfg_path.write_text(json.dumps(cfg.fingerprint(), indent=2) + "\n")
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    print(format_summary(summary, out))
    return paths


def format_summary(summary: dict, out_dir: Path) -> str:
    """Human-readable table of what was written."""
    lines = [
        f"synthetic corpus in {out_dir}:",
        f"  {'split':<12}{'utts':>7}{'hours':>8}{'vocab':>7}  voices",
    ]
    for split in SPLITS:
        s = summary[split]
        lines.append(
            f"  {split:<12}{s['utterances']:>7}{s['hours']:>8.3f}{s['vocabulary']:>7}  {len(s['voices'])}: {', '.join(s['voices'])}"
        )
    t = summary["_total"]
    lines.append(
        f"  total {t['hours']:.3f} h in {t['seconds_elapsed']:.1f} s "
        f"({t['x_real_time']:.0f}x real time, {t['jobs']} jobs); "
        f"{t['sentences_available']} sentences available"
    )
    return "\n".join(lines)
