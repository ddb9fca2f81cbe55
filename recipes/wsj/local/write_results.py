"""Write the WSJ recipe's RESULTS.md: this run's scores beside the paper's Table 3.

Reads what the run left behind (``score/<split>/<search>/summary.json`` from ``asr-score``,
``timing.tsv`` from ``run.sh``, the decoding bundle of the model package, the training log ``csv/metrics.csv``, the
manifests for hours of audio, the model package) through the helpers of
``tools/write_results.py`` and ``tools/compare_runs.py``, so every figure comes from a file. A run on the
miniature corpus (``--corpus miniature``) is labelled a pipeline check and fills no cell of
the paper's table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tools"))

from compare_runs import best_validation  # noqa: E402
from write_results import _decode_options, _git_commit, _model_info, _timings  # noqa: E402
from yaml_get import load_config, lookup  # noqa: E402

from asr.machine import machine_description  # noqa: E402
from asr.models import EncoderConfig  # noqa: E402

#: Katharopoulos et al. (2020), Table 3: validation (dev93) PER % and seconds per epoch on
#: one GTX 1080 Ti; the encoder kind each of our configs trains
PAPER_TABLE3 = (
    ("Bi-LSTM (3 x 320)", "lstm", 10.94, 1047),
    ("softmax transformer", "softmax", 5.12, 2711),
    ("LSH-4 (Reformer)", None, 9.33, 2250),
    ("linear transformer", "linear", 8.08, 824),
)
#: Miao et al. (2015), EESEN: phoneme CTC with its lexicon and trigram, eval92 WER %
EESEN_EVAL92_WER = 7.87
NOT_RUN = "not run (needs the LDC corpus)"


def _hours(manifest: Path) -> float:
    if not manifest.exists():
        return 0.0
    with open(manifest, encoding="utf-8") as f:
        return sum(json.loads(line)["duration"] for line in f if line.strip()) / 3600


def _summary(exp: Path, split: str, search: str) -> dict | None:
    path = exp / "score" / split / search / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def _encoder_kind(config: dict) -> str:
    """``lstm``, or the attention kind of a transformer encoder (``linear``, ``softmax``)."""
    enc = EncoderConfig.from_dict(lookup(config, "train.model.encoder", {}))
    return "lstm" if enc.lstm is not None else enc.transformer.attention


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--exp-dir", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--corpus", choices=("wsj", "miniature"), required=True)
    p.add_argument("--splits", nargs=2, required=True, metavar=("DEV", "TEST"))
    p.add_argument("--searches", nargs="+", required=True)
    p.add_argument("--wsj0", default="", help="run.sh's --wsj0, for the reproduce command")
    p.add_argument("--wsj1", default="", help="run.sh's --wsj1, for the reproduce command")
    args = p.parse_args(argv)
    config = load_config(args.config)
    dev, test = args.splits
    wsj = args.corpus == "wsj"
    train = lookup(config, "data.train", "train_si284")
    hours = {s: _hours(args.data_dir / f"{s}.jsonl") for s in (train, dev, test)}
    timings = _timings(args.exp_dir)
    seconds = {stage: sec for stage, _, sec in timings}
    epochs = lookup(config, "train.trainer.max_epochs", 1)
    partial = lookup(config, "train.trainer.limit_train_batches", None) is not None

    lines = [f"# WSJ results: `{args.config}`", ""]
    if not wsj:
        lines += [
            "**Pipeline check on the miniature corpus** (`tools/wsj_mini_corpus.py`: espeak-ng "
            "speech in the LDC's layout and formats). These numbers say nothing about WSJ.",
            "",
        ]
    lines += [
        "## This run",
        "| split | search | metric | % | CER % | utterances | reference tokens |",
        "|---|---|---|---|---|---|---|",
    ]
    for split in (dev, test):
        for search in args.searches:
            s = _summary(args.exp_dir, split, search)
            metric = "PER" if search == "greedy_phones" else "WER"
            if s is None:
                lines.append(f"| {split} | {search} | {metric} | missing | | | |")
                continue
            cer = "" if metric == "PER" else f"{100 * s['cer']:.2f}"
            lines.append(
                f"| {split} | {search} | {metric} | {100 * s['wer']:.2f} | {cer} "
                f"| {s['utterances']} | {s['words']['n']} |"
            )
    lines += [
        "",
        "`greedy_phones`: best-path phones against the reference phones (CMUdict, stress removed);"
        " `greedy`: best path, phones mapped to words through the lexicon; `beam_lm`: lexicon "
        "beam search with the LDC trigram. `<NOISE>`, `<SPOKEN_NOISE>` and `<UNK>` are removed "
        "from both sides before scoring, as the Kaldi and ESPnet WSJ recipes do.",
        "",
        f"Decoding (`beam_lm`: the package's decoding bundle, the config's `decode:` section, "
        f"`asr-bundle show {args.exp_dir / 'model.safetensors'}`): {_decode_options(args.exp_dir)}"
        "; every other `asr-decode` option at its default.",
        "",
        f"Best validation error during training ({dev}, greedy, `csv/metrics.csv`): "
        f"{best_validation(args.exp_dir)}. For a phoneme model this `val_per` counts the word "
        "boundaries `|` as tokens too, so it differs from the `greedy_phones` PER above, which "
        "compares phones only and is the one set beside the paper's below.",
        "",
        f"Machine: {machine_description()}. Commit: {_git_commit()}.",
        "",
        "## The paper's Table 3 beside ours",
        "Validation = dev93 phoneme error rate; seconds per epoch of train_si284 (the paper's on "
        "one NVIDIA GTX 1080 Ti; ours: training wall time / epochs, validation included, on the "
        "machine above).",
        "",
        "| model | PER % (paper) | PER % (ours) | s/epoch (paper) | s/epoch (ours) |",
        "|---|---|---|---|---|",
    ]
    kind = _encoder_kind(config)
    dev_per = _summary(args.exp_dir, dev, "greedy_phones")
    for label, row_kind, per, sec in PAPER_TABLE3:
        if row_kind is None:
            ours_per = ours_sec = "not implemented here"
        elif not wsj:
            ours_per = ours_sec = NOT_RUN
        elif row_kind != kind:
            ours_per = ours_sec = f"see its own config's RESULTS.md ({row_kind})"
        else:
            ours_per = f"{100 * dev_per['wer']:.2f}" if dev_per else "missing"
            ours_sec = f"{seconds['3'] / epochs:.0f}" if "3" in seconds else "missing"
        lines.append(f"| {label} | {per} | {ours_per} | {sec} | {ours_sec} |")
    test_wer = _summary(args.exp_dir, test, "beam_lm")
    ours_wer = f"{100 * test_wer['wer']:.2f}" if wsj and test_wer else NOT_RUN
    lines += [
        "",
        f"Published CTC baseline: EESEN phoneme CTC (Miao et al. 2015) with its lexicon and "
        f"trigram, eval92 WER {EESEN_EVAL92_WER}%; ours (beam + LDC trigram, {test}): {ours_wer}.",
        "",
        "## Reproduce",
        "```",
        *(
            [f"python tools/wsj_mini_corpus.py --out-dir recipes/wsj/{Path(args.wsj0).parent}"]
            if not wsj and args.wsj0
            else []
        ),
        f"cd recipes/wsj && ./run.sh --wsj0 {args.wsj0 or 'WSJ0_DIR'} --wsj1 "
        f"{args.wsj1 or 'WSJ1_DIR'} --config {args.config} --data-dir {args.data_dir} "
        f"--exp-dir {args.exp_dir}",
        "```",
        f"The training config actually used is `{args.exp_dir / 'train.yaml'}`.",
        "",
        "## Time taken (wall clock, this machine)",
        f"Audio: {train} {hours[train]:.3f} h, {dev} {hours[dev]:.3f} h, {test} {hours[test]:.3f} h.",
        "",
        "| stage | what | seconds | per hour of audio |",
        "|---|---|---|---|",
    ]
    basis = {
        "0": (sum(hours.values()), "s per hour prepared"),
        "1": (hours[train], "s per training hour"),
        "3": (hours[train] * epochs, "s per training hour per epoch"),
        "5": (hours[dev] + hours[test], "s per hour decoded"),
    }
    for stage, what, sec in timings:
        rate = ""
        if stage in basis and basis[stage][0] > 0 and not (stage == "3" and partial):
            per_hour, unit = basis[stage]
            rate = f"{sec / per_hour:.0f} {unit}"
        lines.append(f"| {stage} | {what} | {sec} | {rate} |")
    lines.append(f"| | total | {sum(t[2] for t in timings)} | |")
    if partial:
        lines += ["", "Training ran a few batches only (`limit_train_batches`): no per-hour rate."]
    if not wsj:
        lines += [
            "",
            "On a corpus this small the fixed costs (starting Python, loading the model and the "
            "LM) dominate every stage: the per-hour rates are upper bounds, not WSJ predictions.",
        ]
    info = _model_info(args.exp_dir / "model.safetensors")
    if info:
        lines += ["", "## Model", "```", json.dumps(info, indent=2), "```"]
    (args.exp_dir / "RESULTS.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
