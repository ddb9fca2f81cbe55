"""``asr-synth-corpus --out-dir DIR [--config corpus.yaml] [flags]``: make the corpus."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from asr.data.synth.config import SPLITS, SynthConfig
from asr.data.synth.corpus import synthesize_corpus
from asr.data.synth.engine import EngineError


def _parse_snr(values: list[str] | None) -> tuple[float, float] | None | str:
    """``--noise-snr-db 10 30`` or ``--noise-snr-db off``; ``"unset"`` when not given."""
    if values is None:
        return "unset"
    if len(values) == 1 and values[0].lower() in {"off", "none"}:
        return None
    if len(values) != 2:
        raise argparse.ArgumentTypeError("--noise-snr-db takes MIN MAX (dB) or 'off'")
    return float(values[0]), float(values[1])


def build_parser() -> argparse.ArgumentParser:
    """The ``asr-synth-corpus`` command line."""
    p = argparse.ArgumentParser(
        prog="asr-synth-corpus",
        description="Synthesise an English speech corpus with espeak-ng, flite and festival "
        "(train/dev/test/test_unseen/test_unseen_engine).",
    )
    p.add_argument("--out-dir", required=True, help="folder for audio/ and <split>.jsonl manifests")
    p.add_argument("--config", help="YAML mapping of SynthConfig fields; flags override it")
    for split in SPLITS:
        flag = split.replace("_", "-")
        p.add_argument(f"--num-{flag}", type=int, help=f"utterances in {split}")
        p.add_argument(
            f"--{flag}-hours", type=float, help=f"hours in {split} (replaces --num-{flag})"
        )
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--held-out-engine",
        help="engine whose voices speak only test_unseen_engine ('none': no such split)",
    )
    p.add_argument(
        "--jobs", type=int, help="worker processes (default 2; output does not depend on it)"
    )
    p.add_argument(
        "--noise-snr-db", nargs="+", metavar="DB", help="MIN MAX, or 'off' for clean audio"
    )
    p.add_argument("--overwrite", action="store_true", help="redo even if manifests exist")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> SynthConfig:
    """SynthConfig from ``--config`` (if any) with the given flags on top."""
    overrides = {f"num_{s}": getattr(args, f"num_{s}") for s in SPLITS}
    overrides.update({f"{s}_hours": getattr(args, f"{s}_hours") for s in SPLITS})
    overrides.update(seed=args.seed, jobs=args.jobs)
    held_out = args.held_out_engine
    cfg = SynthConfig.from_yaml(args.config, **overrides) if args.config else None
    if cfg is None:
        cfg = SynthConfig(**{k: v for k, v in overrides.items() if v is not None})
    if held_out is not None:
        none = held_out.lower() in {"none", "off", ""}
        cfg = dataclasses.replace(cfg, held_out_engine=None if none else held_out)
    snr = _parse_snr(args.noise_snr_db)
    if snr != "unset":
        cfg = dataclasses.replace(cfg, noise_snr_db=snr)
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asr-synth-corpus``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
        synthesize_corpus(
            cfg, args.out_dir, overwrite=args.overwrite, progress=not args.no_progress
        )
    except (
        EngineError,
        FileNotFoundError,
        FileExistsError,
        ValueError,
        argparse.ArgumentTypeError,
    ) as e:
        print(f"asr-synth-corpus: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
