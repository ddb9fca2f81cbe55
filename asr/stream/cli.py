"""``asr-decode --stream``: recognise a file, a pipe or stdin as it arrives, JSONL out.

    asr-decode --stream MODEL talk.wav
    sox talk.flac -r 16000 -c 1 -t raw - | asr-decode --stream MODEL - --raw-rate 16000
    arecord -f S16_LE -r 16000 | asr-decode --stream MODEL - --search beam --lexicon L --lm LM

Reads ``--chunk-ms`` of audio at a time, steps the streaming model on it (:mod:`asr.stream`)
and writes one JSON line per event: ``partial`` results whenever the text changes, a ``final``
one per segment (segments end at pauses, see ``--endpoint-silence-s``), each with word times in
stream seconds, and a ``summary`` (audio, compute, RTF, per-chunk compute time, algorithmic
look-ahead, word delay). Beam and endpoint flags are the fields of
:class:`~asr.decode.BeamSearchConfig` and :class:`~asr.stream.EndpointConfig` (``--lm-weight``,
``--endpoint-silence-s``); ``--config`` reads them from YAML, e.g. a recipe's ``decode:`` section.
A package's decoding bundle (lexicon, LM, tuned options; :mod:`asr.bundle`) gives the defaults,
as offline; flags override it, ``--lexicon none``/``--lm none`` drop a member, ``--units`` all
of it. A stream that breaks midway (a pipe closing mid-sample, a WAV header
promising more than arrives, a wrong rate) ends with the final words first and then one line on
stderr saying what broke; the exit status is then 1. ``--format text`` prints one
``id text`` line per input instead (for ``asr-score``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
import time
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import docstring_parser
import torch
from jsonargparse import ActionConfigFile, ArgumentParser

from asr.decode import BeamSearchConfig
from asr.models.streaming import NotStreamableError
from asr.stream.recognizer import Recognizer, StreamOptions
from asr.stream.search import EndpointConfig, StreamResult
from asr.stream.sources import ENCODINGS, AudioSource, RawFormat, StreamInputError, open_source

PROG = "asr-decode --stream"


#: BeamSearchConfig fields without a flag here: a stream reports its best hypothesis only.
_NOT_BEAM_FLAGS = ("nbest",)


def _dataclass_flags(cls: type, prefix: str = "", skip: tuple[str, ...] = ()) -> list[tuple]:
    """(flag, dest, type, default, help) for each field of ``cls`` (help from its docstring),
    so the stream's beam and endpoint settings are the dataclasses' own, defaults included."""
    hints = typing.get_type_hints(cls)
    docs = {p.arg_name: p.description for p in docstring_parser.parse(cls.__doc__ or "").params}
    return [
        (
            "--" + prefix + f.name.replace("_", "-"),
            prefix.replace("-", "_") + f.name,
            hints[f.name],
            f.default,
            " ".join((docs.get(f.name) or "").split()),
        )
        for f in dataclasses.fields(cls)
        if f.name not in skip
    ]


BEAM_FLAGS = _dataclass_flags(BeamSearchConfig, skip=_NOT_BEAM_FLAGS)
ENDPOINT_FLAGS = _dataclass_flags(EndpointConfig, prefix="endpoint-")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Recognise audio as it arrives with a streaming model (JSONL events out).",
    )
    p.add_argument("model", help="model package of a streaming model (demo_streaming.yaml)")
    p.add_argument(
        "inputs",
        nargs="+",
        help="WAV files, '-' for stdin (WAV, or raw PCM with --raw-rate), or JSONL manifests",
    )
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p.add_argument(
        "--format",
        choices=("events", "text"),
        default="events",
        help="events: JSONL partial/final/summary lines; text: one 'id text' line per input",
    )
    p.add_argument(
        "--config",
        action=ActionConfigFile,
        help="YAML mapping of the options by field name (a recipe's decode: section)",
    )
    p.add_argument("--raw-rate", type=int, help="input is headerless PCM at this rate (Hz)")
    p.add_argument("--raw-format", default="s16le", choices=sorted(ENCODINGS))
    p.add_argument("--raw-channels", type=int, default=1)
    p.add_argument("--chunk-ms", type=float, default=160.0, help="audio read per step")
    p.add_argument("--search", choices=("greedy", "beam"), default="greedy")
    p.add_argument(
        "--lexicon",
        help="lexicon (beam search; greedy: phones -> words); default: the package's decoding "
        "bundle; 'none': no lexicon",
    )
    p.add_argument(
        "--lm",
        help="ARPA / KenLM word LM (beam search; greedy: homophones); default: the package's "
        "decoding bundle; 'none': no LM",
    )
    p.add_argument(
        "--units", action="store_true", help="the model's own units: leave the bundle out"
    )
    p.add_argument("--word-separator", help="word separator token (default: auto)")
    for flag, dest, annotation, default, help_text in BEAM_FLAGS + ENDPOINT_FLAGS:
        p.add_argument(flag, dest=dest, type=annotation, default=default, help=help_text)
    p.add_argument("--no-partials", action="store_true", help="only final results")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 suits one stream)")
    p.add_argument("--device", default="cpu")
    return p


def _file_or_none(value: str | None) -> str | None:
    return None if value is None or value.lower() in ("none", "null", "") else value


def apply_bundle(args: Any, given: Any) -> None:
    """Fill what the command line left unset from the model package's decoding bundle
    (:mod:`asr.bundle`: lexicon, LM, tuned search options), as ``asr-decode`` does offline."""
    from asr.bundle import MEMBERS, read_bundle

    if args.units or not Path(args.model).is_file():
        return
    bundle = read_bundle(args.model)
    if bundle is None:
        return
    for name, value in bundle.options.items():
        if name in args and name not in given:  # options a stream has no flag for are skipped
            args[name] = value
    for member in MEMBERS:
        if member not in given and bundle.has(member):
            args[member] = str(bundle.member_path(member))


def options_from_args(args: Any) -> StreamOptions:
    """The :class:`StreamOptions` a parsed command line asks for."""
    return StreamOptions(
        search=args.search,
        lexicon=_file_or_none(args.lexicon),
        lm=_file_or_none(args.lm),
        beam=BeamSearchConfig(**{f[1]: args[f[1]] for f in BEAM_FLAGS}),
        word_separator=args.word_separator,
        endpoint=EndpointConfig(
            **{f[1].removeprefix("endpoint_"): args[f[1]] for f in ENDPOINT_FLAGS}
        ),
        partials=not args.no_partials,
        max_block_s=max(args.chunk_ms / 1000.0, 0.001),
        device=args.device,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asr-decode --stream``; 0 ok, 1 a stream broke, 2 unusable arguments."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    torch.set_num_threads(max(1, args.threads))
    try:
        apply_bundle(args, parser.parse_args(argv, defaults=False))
        raw = (
            RawFormat(args.raw_rate, args.raw_format, args.raw_channels) if args.raw_rate else None
        )
        rec = Recognizer(_load(args.model, args.device), options_from_args(args))
    except NotStreamableError as e:
        return _fail(f"{args.model}: {e}", 2)
    except (FileNotFoundError, TypeError, ValueError) as e:
        return _fail(str(e), 2)
    out: TextIO = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    failed = 0
    try:
        for name, utt_id, blocks in _inputs(args.inputs, raw, rec.sample_rate):
            failed += _run(rec, name, utt_id, blocks, out, args.format, args.chunk_ms)
    finally:
        if out is not sys.stdout:
            out.close()
    return 1 if failed else 0


def _load(model: str, device: str) -> Any:
    from asr.package import load_package

    if not Path(model).is_file():
        raise FileNotFoundError(f"model package not found: {model}")
    return load_package(model, device=device)


def _fail(message: str, status: int) -> int:
    print(f"asr-decode: error: {message}", file=sys.stderr)
    return status


class _Blocks:
    """One input's audio blocks, with the error that ended it (if any) known afterwards."""

    def __init__(
        self, source: AudioSource | None, error: str | None = None, wav: Any = None, rate: int = 0
    ) -> None:
        self.source, self._error, self.wav, self.rate = source, error, wav, rate

    @property
    def error(self) -> str | None:
        return self._error or (self.source.error if self.source is not None else None)

    def __call__(self, block_s: float) -> Any:
        if self.source is not None:
            yield from self.source.blocks(block_s)
            self.source.close()
        elif self.wav is not None:
            n = max(1, int(block_s * self.rate))
            for i in range(0, len(self.wav), n):
                yield self.wav[i : i + n]


def _inputs(names: Sequence[str], raw: RawFormat | None, rate: int) -> Any:
    """(name, id, blocks) per input; manifests expand to their utterances."""
    for name in names:
        if name.endswith(".jsonl") and Path(name).is_file():
            yield from _manifest_inputs(name, rate)
            continue
        utt_id = "stdin" if name == "-" else Path(name).stem
        try:
            source = open_source(name, raw)
        except StreamInputError as e:
            yield name, utt_id, _Blocks(None, str(e))
            continue
        if source.sample_rate != rate:
            source.close()
            how = "--raw-rate" if raw is not None else "its header"
            yield (
                name,
                utt_id,
                _Blocks(
                    None,
                    f"{name}: {how} says {source.sample_rate} Hz but the model takes {rate} Hz; "
                    f"resample first, e.g. `sox IN -r {rate} -t wav - | {PROG} MODEL -`",
                ),
            )
            continue
        yield name, utt_id, _Blocks(source)


def _manifest_inputs(path: str, rate: int) -> Any:
    from asr.audio import AudioError, load_audio
    from asr.data.manifest import read_manifest

    for u in read_manifest(path):
        try:
            audio = load_audio(u.audio, rate, float(u.offset or 0.0), u.duration)
        except AudioError as e:
            yield str(u.audio), u.id, _Blocks(None, str(e))
            continue
        yield str(u.audio), u.id, _Blocks(None, wav=audio.waveform.numpy(), rate=rate)


def _run(
    rec: Recognizer,
    name: str,
    utt_id: str,
    blocks: _Blocks,
    out: TextIO,
    fmt: str,
    chunk_ms: float,
) -> int:
    """Stream one input; 1 if it ended in an error (reported after its words)."""
    rec.reset()
    finals: list[StreamResult] = []
    started = time.perf_counter()

    def emit(results: list[StreamResult]) -> None:
        for r in results:
            if r.kind == "final":
                finals.append(r)
            if fmt == "events":
                out.write(json.dumps({"id": utt_id, **r.to_json()}, ensure_ascii=False) + "\n")
        if results and fmt == "events":
            out.flush()

    if blocks.source is None and blocks.wav is None:
        if fmt == "text":
            out.write(f"{utt_id}\n")
        return _fail(blocks.error or f"{name}: unreadable", 1)
    try:
        for block in blocks(chunk_ms / 1000.0):
            emit(rec.accept_waveform(block))
        final = rec.finalize()
    except KeyboardInterrupt:
        final = rec.finalize()
        blocks._error = f"{name}: interrupted"
    if final.text:
        emit([final])
    wall = time.perf_counter() - started
    if fmt == "text":
        out.write(f"{utt_id} {' '.join(r.text for r in finals)}".rstrip() + "\n")
    else:
        out.write(json.dumps(_summary(rec, utt_id, wall, chunk_ms, blocks.error)) + "\n")
    out.flush()
    stats = rec.stats
    print(
        f"{PROG}: {utt_id}: {stats.audio_s:.1f} s of audio in {stats.compute_s:.2f} s of compute "
        f"(RTF {stats.rtf:.4f}), {len(finals)} segment(s)",
        file=sys.stderr,
    )
    if blocks.error:
        return _fail(blocks.error, 1)
    return 0


def _ms(x: float) -> float | None:
    return None if math.isnan(x) else round(x * 1000.0, 1)


def _summary(
    rec: Recognizer, utt_id: str, wall: float, chunk_ms: float, error: str | None
) -> dict[str, Any]:
    stats, delay = rec.stats, rec.word_delay
    lo, hi = rec.lookahead_ms()
    return {
        "id": utt_id,
        "type": "summary",
        "audio_seconds": round(stats.audio_s, 3),
        "compute_seconds": round(stats.compute_s, 3),
        "wall_seconds": round(wall, 3),
        "rtf": round(stats.rtf, 5) if stats.audio_s else None,
        "chunk_ms": chunk_ms,
        "chunk_compute_ms": {
            "median": round(stats.block_ms.quantile(0.5), 2),
            "p95": round(stats.block_ms.quantile(0.95), 2),
            "max": round(stats.block_ms.max, 2) if stats.blocks else None,
        },
        "lookahead_ms": {"min": lo, "max": hi},
        "word_delay_ms": {"median": _ms(delay.quantile(0.5)), "p95": _ms(delay.quantile(0.95))},
        "error": error,
    }


if __name__ == "__main__":
    raise SystemExit(main())
