"""Write an autoregressive recipe's RESULTS.md from the files its run produced.

    write_ar_results.py copy  --exp-dir EXP --config CONF --recipe copy  --models causal-linear causal-softmax
    write_ar_results.py image --exp-dir EXP --config CONF --recipe mnist --models ... [--paper mnist]

Reads, per model ``EXP/<kind>/``: ``model.safetensors`` (config, parameters, updates),
``csv/metrics.csv`` (losses), ``train_seconds``; then ``copy_eval.json`` (copy) or
``test_bpd.json`` and ``EXP/generation.json`` (images); and ``EXP/timing.tsv``. The paper's
figures are printed beside ours; every number of ours comes from those files.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
from pathlib import Path

from asr.machine import machine_description

# Katharopoulos et al. 2020, Table 1 (MNIST) and Table 2 (CIFAR-10): bits/dim and images/s
# of their GPU generation benchmark.
PAPER = {
    "mnist": {
        "causal-softmax": {"bpd": 0.621, "images_per_s": 0.45},
        "causal-linear": {"bpd": 0.644, "images_per_s": 142.8},
        "speedup": 317,
    },
    "cifar10": {
        "causal-softmax": {"bpd": 3.47, "images_per_s": 0.004},
        "causal-linear": {"bpd": 3.40, "images_per_s": 17.85},
        "speedup": 4462,
    },
}


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _package_info(package: Path) -> dict:
    if not package.is_file():
        return {}
    from safetensors import safe_open

    with safe_open(str(package), framework="pt") as f:
        meta = f.metadata() or {}
        params = 0
        for key in f.keys():  # noqa: SIM118 (safe_open has no iter)
            n = 1
            for d in f.get_slice(key).get_shape():
                n *= d
            params += n if key.startswith("model.") else 0
    training = json.loads(meta.get("training", "{}"))
    return {
        "parameters": params,
        "config": json.loads(meta.get("model_config", "{}")),
        "updates": training.get("global_step"),
    }


def _last(metrics: Path, name: str) -> float | None:
    if not metrics.is_file():
        return None
    value = None
    with metrics.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get(name) not in (None, ""):
                value = float(row[name])
    return value


def _seconds(path: Path) -> int | None:
    if not path.is_file():
        return None
    return sum(int(x) for x in path.read_text().split())


def _fmt(x: float | int | None, digits: int = 3) -> str:
    if x is None:
        return "not run"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _timings(exp_dir: Path) -> list[str]:
    latest: dict[str, tuple[str, int]] = {}
    path = exp_dir / "timing.tsv"
    if path.is_file():
        for line in path.read_text().splitlines():
            stage, what, seconds = line.split("\t")
            latest[stage] = (what, int(seconds))
    rows = [
        f"| {s} | {w} | {sec} |" for s, (w, sec) in sorted(latest.items(), key=lambda i: int(i[0]))
    ]
    return ["| stage | what | seconds |", "|---|---|---|", *rows]


def copy_rows(exp_dir: Path, models: list[str]) -> list[str]:
    rows = [
        "| model | parameters | updates | training (s) | final train loss | val loss "
        "| val accuracy (teacher forced) | greedy copy: symbols | greedy copy: whole sequences |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in models:
        d = exp_dir / kind
        info, ev = _package_info(d / "model.safetensors"), _json(d / "copy_eval.json")
        metrics = d / "csv" / "metrics.csv"
        rows.append(
            f"| {kind} | {_fmt(info.get('parameters'))} | {_fmt(info.get('updates'))} "
            f"| {_fmt(_seconds(d / 'train_seconds'))} | {_fmt(_last(metrics, 'train_loss'), 4)} "
            f"| {_fmt(_last(metrics, 'val_loss'), 4)} | {_fmt(_last(metrics, 'val_accuracy'), 4)} "
            f"| {_fmt(ev.get('symbol_accuracy'), 4)} | {_fmt(ev.get('sequence_accuracy'), 4)} |"
        )
    return rows


def image_rows(exp_dir: Path, models: list[str], paper: str | None) -> list[str]:
    ref = PAPER.get(paper or "", {})
    rows = [
        "| model | parameters | updates | training (s) | val bits/dim | test bits/dim | test images "
        f"| paper bits/dim ({paper or '-'}) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in models:
        d = exp_dir / kind
        info, bpd = _package_info(d / "model.safetensors"), _json(d / "test_bpd.json")
        rows.append(
            f"| {kind} | {_fmt(info.get('parameters'))} | {_fmt(info.get('updates'))} "
            f"| {_fmt(_seconds(d / 'train_seconds'))} "
            f"| {_fmt(_last(d / 'csv' / 'metrics.csv', 'val_bpd'), 4)} "
            f"| {_fmt(bpd.get('bits_per_dim'), 4)} | {_fmt(bpd.get('sequences'))} "
            f"| {ref.get(kind, {}).get('bpd', '')} |"
        )
    gen = _json(exp_dir / "generation.json")
    if gen:
        rows += [
            "",
            f"Generation throughput ({gen.get('setting', '')}), measured in one run:",
            "",
            "| mode | images/s | linear recurrent is faster by | paper images/s |",
            "|---|---|---|---|",
        ]
        paper_fig = {
            "linear_recurrent": ref.get("causal-linear", {}).get("images_per_s", ""),
            "softmax_nocache": ref.get("causal-softmax", {}).get("images_per_s", ""),
            "softmax_cache": "not reported",
        }
        base = gen.get("images_per_s", {}).get("linear_recurrent")
        for mode, rate in gen.get("images_per_s", {}).items():
            ratio = f"{base / rate:.2f}x" if base and rate else ""
            rows.append(f"| {mode} | {rate:.4g} | {ratio} | {paper_fig.get(mode, '')} |")
        if ref:
            rows.append(f"\nThe paper's linear/softmax (no cache) ratio: {ref['speedup']}x.")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=["copy", "image"])
    parser.add_argument("--exp-dir", type=Path, required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--recipe", required=True, help="folder name under recipes/")
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument(
        "--paper", help=f"print the paper's numbers for this dataset ({sorted(PAPER)})"
    )
    parser.add_argument(
        "--extra", default="", help="more run.sh options, as --extra='--data-dir D'"
    )
    args = parser.parse_args(argv)
    exp = args.exp_dir
    rows = (
        copy_rows(exp, args.models)
        if args.task == "copy"
        else image_rows(exp, args.models, args.paper)
    )
    lines = [
        f"# Results: `recipes/{args.recipe}` with `{args.config}`",
        "",
        *rows,
        "",
        f"Machine: {machine_description()}. Commit: {_git_commit()}.",
        "",
        "## Reproduce",
        "```",
        f"cd recipes/{args.recipe} && ./run.sh --config {args.config} --exp-dir {exp}"
        + (f" {args.extra}" if args.extra else ""),
        "```",
        f"The training config used is `{exp / 'train.yaml'}`; logs are under `{exp}/<model>/`.",
        "",
        "## Time taken (wall clock, this machine)",
        *_timings(exp),
    ]
    for kind in args.models:
        info = _package_info(exp / kind / "model.safetensors")
        if info:
            lines += ["", f"## Model `{kind}`", "```", json.dumps(info["config"]), "```"]
    (exp / "RESULTS.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
