"""Side-by-side table of several recipe runs (e.g. linear vs softmax vs Bi-LSTM encoders).

Reads what each run wrote: ``EXP/score/<split>/<search>/summary.json``, ``EXP/timing.tsv``
(the stage "train the model": stage 4 of recipes/synth, 3 of recipes/wsj), the model package's
config and the training log ``EXP/csv/metrics.csv`` (best validation error rate), so the table
can be remade from the experiment folders at any time.

    python tools/compare_runs.py recipes/synth/exp/demo recipes/synth/exp/demo_softmax \\
        recipes/synth/exp/demo_bilstm --splits test test_unseen --searches beam_lm greedy
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from write_results import _model_info, _timings

from asr.metrics import find_error_metric
from asr.models import EncoderConfig


def encoder_name(info: dict) -> str:
    """Short encoder description from a package's model config (either config layout)."""
    if not info.get("encoder"):
        return "?"
    enc = EncoderConfig.from_dict(info["encoder"])
    if enc.lstm is not None:
        return f"Bi-LSTM {enc.lstm.n_layers}x{enc.lstm.hidden_size}"
    layers = enc.transformer
    return f"{layers.attention} transformer {layers.n_layers}x{enc.d_model}"


def best_validation(exp: Path) -> str:
    """Lowest validation error rate in the run's metrics log, e.g. ``val_per 0.1150``; logs of
    runs from before ``val_per`` existed call a phoneme model's error rate ``val_wer``."""
    path = exp / "csv" / "metrics.csv"
    if not path.exists():
        return "?"
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        name = find_error_metric(reader.fieldnames or [])
        values = [float(r[name]) for r in reader if name and r.get(name)]
    return f"{name} {min(values):.4f}" if values else "?"


TRAINING_STAGE = "train the model"  # its description in every recipe's run.sh


def training_seconds(exp: Path) -> int | None:
    """Wall time of the run's training stage; stage 4 when no stage has that description."""
    timings = _timings(exp)
    by_name = [sec for _, what, sec in timings if what == TRAINING_STAGE]
    if by_name:
        return by_name[0]
    return {stage: sec for stage, _, sec in timings}.get("4")


def row(exp: Path, splits: list[str], searches: list[str]) -> list[str]:
    info = _model_info(exp / "model.safetensors")
    train_s = training_seconds(exp)
    cells = [exp.name, encoder_name(info), f"{info.get('parameters', 0) / 1e6:.2f}M"]
    cells.append(f"{train_s / 60:.1f}" if train_s is not None else "?")
    cells.append(best_validation(exp))
    for split in splits:
        for search in searches:
            path = exp / "score" / split / search / "summary.json"
            if path.exists():
                s = json.loads(path.read_text())
                cells.append(f"{100 * s['wer']:.2f} / {100 * s['cer']:.2f}")
            else:
                cells.append("missing")
    return cells


def table(exps: list[Path], splits: list[str], searches: list[str]) -> str:
    head = ["run", "encoder", "parameters", "training min", "best validation error"]
    head += [f"{split} {search} WER / CER" for split in splits for search in searches]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row(e, splits, searches)) + " |" for e in exps]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exp_dirs", nargs="+", type=Path)
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen"])
    parser.add_argument("--searches", nargs="+", default=["beam_lm", "greedy"])
    args = parser.parse_args(argv)
    print(table(args.exp_dirs, args.splits, args.searches))


if __name__ == "__main__":
    main()
