"""``asr-decode MODEL INPUT... [-o OUT]``: transcribe audio with a trained model package.

The decoding flags are generated from :class:`~asr.inference.transcriber.DecodeOptions` and
:class:`~asr.decode.BeamSearchConfig` (field ``lm_weight`` is ``--lm-weight``; types, defaults
and help come from the dataclasses), so a setting and its default are defined once.
``--config FILE`` reads the same fields from YAML (a recipe's ``decode:`` section); flags
after it override it.

Results are written in input order (text, JSONL, CTM or sclite trn, see
:mod:`asr.transcripts`) and flushed one by one, so an interrupted run keeps a prefix of its
inputs and ``--resume`` appends the rest. A file that cannot be read is reported on one line
naming it; the exit status is then 1. Bad arguments or a missing model: status 2.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import docstring_parser
import torch
from jsonargparse import ActionConfigFile, ActionYesNo, ArgumentParser
from tqdm import tqdm

from asr.bundle import DecodingBundle, read_bundle
from asr.decode import BeamSearchConfig
from asr.inference.transcriber import (
    DecodeOptions,
    DecodeStats,
    iter_transcribe,
    options_for_model,
)
from asr.transcripts import FORMATS, format_for_path, format_result, resume_ids

#: DecodeOptions fields that are no flag of their own: the nested beam settings (flattened
#: into flags), and the progress bar (``--no-progress``).
_NOT_FLAGS = ("beam", "progress")


def _option_fields() -> list[tuple[dataclasses.Field, Any, str]]:
    """(field, type, help) of every decoding option, DecodeOptions first."""
    out = []
    for cls in (DecodeOptions, BeamSearchConfig):
        hints = typing.get_type_hints(cls)
        docs = {p.arg_name: p.description for p in docstring_parser.parse(cls.__doc__ or "").params}
        for f in dataclasses.fields(cls):
            if f.name not in _NOT_FLAGS:
                help_text = " ".join((docs.get(f.name) or "").split())
                out.append((f, hints[f.name], help_text))
    return out


def build_parser() -> ArgumentParser:
    """The ``asr-decode`` command line."""
    p = ArgumentParser(
        prog="asr-decode",
        description="Transcribe audio with a trained model package.",
    )
    p.add_argument("model", help="model package (.safetensors from training)")
    p.add_argument("inputs", nargs="+", help="audio files, folders, JSONL manifests, wav.scp")
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p.add_argument("--format", choices=FORMATS, help="default: from the -o suffix, else text")
    p.add_argument(
        "--resume", action="store_true", help="append to -o, skipping the ids it already holds"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--stream",
        action="store_true",
        help="recognise files, pipes or stdin as streams with a streaming model, JSONL events "
        "out; its own options: asr-decode --stream --help (asr.stream.cli)",
    )
    p.add_argument(
        "--config",
        action=ActionConfigFile,
        help="YAML mapping of the options below by field name (lm_weight: 3.0)",
    )
    for f, annotation, help_text in _option_fields():
        flag = "--" + f.name.replace("_", "-")
        if annotation is bool:  # a switch: --units / --no-units
            p.add_argument(
                flag,
                dest=f.name,
                action=ActionYesNo(no_prefix="no-"),
                default=f.default,
                help=help_text,
            )
        else:
            p.add_argument(flag, dest=f.name, type=annotation, default=f.default, help=help_text)
    return p


def options_from_args(args: Any) -> DecodeOptions:
    """The :class:`DecodeOptions` a parsed command line asks for (no package bundle)."""
    values = {f.name: args[f.name] for f, _, _ in _option_fields()}
    return DecodeOptions.from_flat(**values, progress=not args.no_progress)


def given_options(parser: ArgumentParser, argv: Sequence[str] | None) -> dict[str, Any]:
    """The decoding options the command line (flags and ``--config`` files) sets itself, so a
    package's bundle fills in only the rest."""
    given = parser.parse_args(argv, defaults=False)
    names = [f.name for f, _, _ in _option_fields()]
    return {name: given[name] for name in names if name in given}


def _describe(options: DecodeOptions, bundle: DecodingBundle, given: dict[str, Any]) -> str:
    """One line: the search that will run and what of it comes from the package's bundle."""
    from_bundle = [m for m in ("lexicon", "lm") if bundle.has(m) and m not in given]
    text = f"{options.search} search"
    if options.search == "beam":
        b = options.beam
        text += f" (beam {b.beam_size}, lm_weight {b.lm_weight:g}, word_score {b.word_score:g})"
    if from_bundle:
        text += " with the package's " + " and ".join(from_bundle)
    return text + " (--units for the model's own units)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asr-decode``; exit status 1 if any input failed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--stream" in argv:  # streaming recognition has its own options and output
        from asr.stream.cli import main as stream_main

        argv.remove("--stream")
        return stream_main(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        given = {**given_options(parser, argv), "progress": not args.no_progress}
        options = options_for_model(args.model, given)
        model_file = Path(args.model).is_file()
        bundle = read_bundle(args.model) if model_file and not options.units else None
    except (TypeError, ValueError) as e:  # BundleError is a ValueError
        print(f"asr-decode: error: {e}", file=sys.stderr)
        return 2
    if bundle is not None and not args.no_progress:
        print(f"asr-decode: {_describe(options, bundle, given)}", file=sys.stderr)
    fmt = args.format or format_for_path(args.output)
    if options.device.startswith("cuda") and not torch.cuda.is_available():
        print("asr-decode: error: --device cuda but no CUDA device is visible", file=sys.stderr)
        return 2
    skip: set[str] = set()
    out: TextIO
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        skip = resume_ids(path, fmt) if args.resume else set()
        out = open(path, "a" if args.resume else "w", encoding="utf-8")  # noqa: SIM115
    else:
        out = sys.stdout
    stats = DecodeStats()
    try:
        for r in iter_transcribe(args.model, args.inputs, options, skip_ids=skip, stats=stats):
            if r.error:
                tqdm.write(f"asr-decode: error: {r.error}", file=sys.stderr)
                continue
            out.write(format_result(r, fmt, with_nbest=options.beam.nbest > 1))
            out.flush()
    except (FileNotFoundError, ValueError) as e:
        print(f"asr-decode: error: {e}", file=sys.stderr)
        return 2
    finally:
        if out is not sys.stdout:
            out.close()
    if stats.audio_seconds:
        print(
            f"decoded {stats.audio_seconds:.1f} s of audio in {stats.elapsed_seconds:.1f} s "
            f"(RTF {stats.rtf:.4f}); {stats.failed} failed",
            file=sys.stderr,
        )
    elif stats.failed:
        print(f"asr-decode: all {stats.failed} inputs failed", file=sys.stderr)
    elif skip:
        print(f"asr-decode: every input is already in {args.output}", file=sys.stderr)
    return 1 if stats.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
