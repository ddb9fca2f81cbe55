"""Write a recipe's RESULTS.md from the scoring summaries, stage timings and the machine.

Reads ``EXP/score/<split>/<search>/summary.json`` (written by ``asr-score --out-dir``),
the decoding bundle of ``EXP/model.safetensors`` (the options stage 5 put into the package, which
stage 6's ``asr-decode MODEL`` used) and ``EXP/timing.tsv`` (written by ``run.sh``), so every
figure in RESULTS.md comes from files the run produced.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

from asr.machine import machine_description


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _timings(exp_dir: Path) -> list[tuple[str, str, int]]:
    """Last recorded wall time of each stage (a rerun overwrites earlier entries)."""
    path = exp_dir / "timing.tsv"
    latest: dict[str, tuple[str, str, int]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            stage, what, seconds = line.split("\t")
            latest[stage] = (stage, what, int(seconds))
    return [latest[k] for k in sorted(latest, key=int)]


def _decode_options(exp_dir: Path) -> str:
    """The decoding options the package carries (stage 5): what ``beam_lm`` decoded with."""
    from asr.bundle import BundleError, read_bundle

    try:
        bundle = read_bundle(exp_dir / "model.safetensors")
    except BundleError:
        bundle = None
    if bundle is None:
        return "defaults (the package carries no decoding bundle)"
    tuned = bundle.provenance.get("tuning")
    where = f", lm_weight and word_score tuned on {tuned.get('manifest')}" if tuned else ""
    return f"{bundle.describe()}{where}"


def _model_info(package: Path) -> dict:
    """Model config and parameter count, read from the package the run wrote."""
    if not package.exists():
        return {}
    from safetensors import safe_open

    with safe_open(str(package), framework="pt") as f:
        config = json.loads((f.metadata() or {}).get("model_config", "{}"))
        params = sum(_numel(f, k) for k in f.keys() if k.startswith("model."))
    return {"parameters": params, **config}


def _numel(f: Any, key: str) -> int:
    n = 1
    for d in f.get_slice(key).get_shape():
        n *= d
    return n


def engine_counts(summary: dict) -> dict[str, dict[str, int]]:
    """Word error counts per synthesiser, from the per-speaker figures of one summary.

    The synthetic corpus names a speaker ``engine:voice`` (``flite:kal``); speakers without an
    engine prefix are grouped under their own name.
    """
    out: dict[str, dict[str, int]] = {}
    for speaker, figures in summary.get("speakers", {}).items():
        total = out.setdefault(speaker.split(":", 1)[0], {"n": 0, "errors": 0})
        total["n"] += figures["words"]["n"]
        total["errors"] += figures["words"]["errors"]
    return out


def _engine_table(exp_dir: Path, splits: list[str], searches: list[str]) -> list[str]:
    """WER per engine for each split and search; empty when the run heard fewer than two."""
    rows, engines = [], set()
    for split in splits:
        for search in searches:
            path = exp_dir / "score" / split / search / "summary.json"
            if not path.exists():
                continue
            counts = engine_counts(json.loads(path.read_text()))
            engines |= {e for e, c in counts.items() if c["n"]}
            cells = [
                f"{e} {100 * c['errors'] / c['n']:.2f} ({c['n']} words)"
                for e, c in sorted(counts.items())
                if c["n"]
            ]
            rows.append(f"| {split} | {search} | {'; '.join(cells)} |")
    if len(engines) < 2:
        return []
    return [
        "",
        "## WER % by synthesiser",
        "| split | search | engine WER % (words) |",
        "|---|---|---|",
        *rows,
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--data-dir", help="the run's --data-dir, for the reproduce command")
    parser.add_argument("--splits", nargs="+", required=True)
    parser.add_argument("--searches", nargs="+", required=True)
    args = parser.parse_args(argv)

    rows = []
    for split in args.splits:
        for search in args.searches:
            summary_path = args.exp_dir / "score" / split / search / "summary.json"
            if not summary_path.exists():
                rows.append(f"| {split} | {search} | missing | missing | | |")
                continue
            s = json.loads(summary_path.read_text())
            rows.append(
                f"| {split} | {search} | {100 * s['wer']:.2f} | {100 * s['cer']:.2f} "
                f"| {s['utterances']} | {s['words']['n']} |"
            )
    timings = _timings(args.exp_dir)
    total = sum(t[2] for t in timings)
    model_info = _model_info(args.exp_dir / "model.safetensors")

    lines = [
        f"# Results: `{args.config}`",
        "",
        "| split | search | WER % | CER % | utterances | words |",
        "|---|---|---|---|---|---|",
        *rows,
        *_engine_table(args.exp_dir, args.splits, args.searches),
        "",
        f"Decoding (`beam_lm`: the package's decoding bundle, `asr-bundle show "
        f"{args.exp_dir / 'model.safetensors'}`): {_decode_options(args.exp_dir)}; "
        "every other `asr-decode` option at its default.",
        "",
        f"Machine: {machine_description()}. Commit: {_git_commit()}.",
        "",
        "## Reproduce",
        "```",
        f"cd recipes/synth && ./run.sh --config {args.config} --exp-dir {args.exp_dir}"
        + (f" --data-dir {args.data_dir}" if args.data_dir else ""),
        "```",
        "Stage commands are in `run.sh`; the training config actually used is "
        f"`{args.exp_dir / 'train.yaml'}`.",
        "",
        "## Time taken (wall clock, this machine)",
        "| stage | what | seconds |",
        "|---|---|---|",
        *[f"| {s} | {w} | {sec} |" for s, w, sec in timings],
        f"| | total | {total} |",
    ]
    if model_info:
        lines += ["", "## Model", "```", json.dumps(model_info, indent=2), "```"]
    (args.exp_dir / "RESULTS.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
