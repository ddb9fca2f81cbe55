"""Transcribe audio with a trained model package: ``asr-decode`` and ``asr.transcribe``.

End of the inference path: inputs (audio files, folders, JSONL manifests, Kaldi ``wav.scp``)
-> ``load_audio`` (any rate/channels -> 16 kHz mono, as in training) -> ``package.featurize``
-> ``package.log_probs`` in length-sorted batches -> :mod:`asr.decode` -> results written one
by one (text, JSONL, CTM or sclite trn), flushed as they finish, so an interrupted run keeps
everything already written (``--resume`` skips those ids on the next run).

A file that cannot be read is reported on one line naming it and skipped; everything else is
still decoded, and the exit status is 1 if anything failed. Long recordings decode in one call
(linear attention is linear in length) or, with ``--chunk-seconds`` (and by default beyond
``--max-whole-seconds``), in overlapping chunks whose centres are stitched together, which
bounds memory for arbitrarily long audio.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from asr.audio import AudioError, audio_info, load_audio
from asr.decode import BeamSearchDecoder, Hypothesis, WordLookup, WordTiming, greedy_decode

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".sph", ".mp3", ".opus")
SAMPLE_RATE = 16000
FORMATS = ("text", "jsonl", "ctm", "trn")
_FORMAT_BY_SUFFIX = {".txt": "text", ".jsonl": "jsonl", ".ctm": "ctm", ".trn": "trn"}


@dataclass
class DecodeOptions:
    """How to decode (the ``asr-decode`` options).

    :param search: ``greedy`` or ``beam``.
    :param lexicon: lexicon file for beam search (``asr-lm lexicon``); with greedy search it
        maps each word's tokens back to a word (phoneme models; CMUdict names
        words the lexicon lacks), see :class:`WordLookup`.
    :param lm: ARPA / KenLM binary word LM for beam search (``asr-lm arpa``); with greedy
        search and a lexicon, its unigrams pick among homophones.
    :param batch_seconds: audio seconds per batch (padded length x batch size).
    :param chunk_seconds: decode longer audio in chunks of this length (``None``: whole,
        up to ``max_whole_seconds``).
    :param chunk_overlap_seconds: context added on each side of a chunk, then discarded.
    :param max_whole_seconds: without ``chunk_seconds``, utterances longer than this are
        still chunked (at ``fallback_chunk_seconds``): the conv front end's activations grow
        with length (a random 'small' model peaked at 1.9 GB on 10 min decoded whole), and
        chunking changes the output only near chunk edges. ``None`` never chunks.
    :param fallback_chunk_seconds: chunk length used past ``max_whole_seconds``.
    :param featurize_piece_seconds: compute filterbanks of longer audio in exact pieces
        (see :func:`featurize_in_pieces`); ``None``: in one go.
    :param word_separator: separator token override (see :func:`asr.decode.find_word_separator`).
    """

    search: str = "greedy"
    lexicon: str | None = None
    lm: str | None = None
    lm_weight: float = 2.0
    word_score: float = 0.0
    unk_score: float = float("-inf")
    beam_size: int = 50
    beam_threshold: float = 25.0
    nbest: int = 1
    device: str = "cpu"
    batch_seconds: float = 120.0
    chunk_seconds: float | None = None
    chunk_overlap_seconds: float = 4.0
    max_whole_seconds: float | None = 600.0
    featurize_piece_seconds: float | None = 60.0
    fallback_chunk_seconds: float = 60.0
    word_separator: str | None = None
    progress: bool = False


@dataclass
class Result:
    """One decoded utterance (``error`` set and ``text`` empty when it could not be read)."""

    id: str
    path: str
    text: str = ""
    words: list[WordTiming] = field(default_factory=list)
    confidence: float = 0.0
    duration: float = 0.0
    speaker: str | None = None
    nbest: list[Hypothesis] = field(default_factory=list)
    error: str | None = None

    def to_json(self, with_nbest: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "words": [asdict(w) for w in self.words],
            "confidence": self.confidence,
            "duration": self.duration,
            "audio": self.path,
        }
        if self.speaker is not None:
            d["speaker"] = self.speaker
        if with_nbest:
            d["nbest"] = [{"text": h.text, "score": h.score} for h in self.nbest]
        return d


@dataclass
class _Item:
    """One utterance to decode: where its audio is and, for manifests, which part."""

    id: str
    path: str
    offset: float = 0.0
    duration: float | None = None
    speaker: str | None = None


# --------------------------------------------------------------------------------------------
# inputs


def collect_inputs(paths: Iterable[str | Path]) -> tuple[list[_Item], list[Result]]:
    """Expand files, folders, manifests and wav.scp files into items; bad inputs become errors."""
    items: list[_Item] = []
    errors: list[Result] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS)
            items += [_Item(_file_id(f, p), str(f)) for f in found]
        elif p.suffix in (".jsonl", ".scp") or p.name.endswith("wav.scp"):
            try:
                items += _manifest_items(p) if p.suffix == ".jsonl" else _wav_scp_items(p)
            except (OSError, ValueError) as e:  # a bad list is one failed input, not a crash
                errors.append(Result(id=p.name, path=str(p), error=_reason(e, _Item("", str(p)))))
        else:
            items.append(_Item(p.stem, str(p)))
    seen: dict[str, int] = {}
    for it in items:  # ids must be unique for scoring; suffix duplicates from different folders
        if it.id in seen:
            seen[it.id] += 1
            it.id = f"{it.id}-{seen[it.id]}"
        else:
            seen[it.id] = 0
    return items, errors


def _file_id(f: Path, root: Path) -> str:
    rel = f.relative_to(root).with_suffix("")
    return "-".join(rel.parts)


def _manifest_items(path: Path) -> list[_Item]:
    from asr.data.manifest import read_manifest

    return [
        _Item(u.id, str(u.audio), float(u.offset or 0.0), u.duration, u.speaker)
        for u in read_manifest(path)
    ]


def _wav_scp_items(path: Path) -> list[_Item]:
    from asr.data.kaldi import parse_wav_scp_entry

    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        if len(parts) != 2:
            raise ValueError(f"{path}:{n}: expected '<id> <audio path>'")
        # the data module also unwraps `sph2pipe -f wav PATH |` entries
        audio = Path(parse_wav_scp_entry(parts[1], f"{path}:{n}"))
        if not audio.is_absolute() and not audio.exists():
            audio = path.parent / audio
        items.append(_Item(parts[0], str(audio)))
    return items


def _duration(item: _Item) -> float:
    """Seconds of audio, from the header only (sorting must not read whole files)."""
    if item.duration is not None:
        return float(item.duration)
    try:
        return audio_info(item.path)[0] - item.offset
    except AudioError:  # reported with its reason when the item is loaded
        return 0.0


# --------------------------------------------------------------------------------------------
# model


def load_model_package(path: str | Path) -> Any:
    """Load a model package file (``asr.package.load_package``), naming the file if absent."""
    from asr.package import load_package

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model package not found: {path}")
    return load_package(path)


def _frame_shift(package: Any) -> float:
    shift = getattr(package, "frame_shift_s", None)
    if shift is None:
        raise ValueError("model package has no frame_shift_s: cannot time words")
    return float(shift)


def featurize_in_pieces(
    package: Any, wav: torch.Tensor, sample_rate: int, piece_seconds: float | None
) -> torch.Tensor:
    """``package.featurize`` on frame-aligned overlapping pieces, concatenated.

    Filterbank frames are local (frame i reads samples [i*shift, i*shift + length)), so
    pieces that start on a frame boundary and overlap by ``length - shift`` samples give
    exactly the frames of the whole waveform, without the whole-file FFT buffers (about
    1.2 GB for 30 minutes at 16 kHz).
    """
    cfg = getattr(package, "fbank_config", None)
    shift_ms = _cfg_get(cfg, "frame_shift_ms", None)
    length_ms = _cfg_get(cfg, "frame_length_ms", None)
    total = wav.numel()
    if not piece_seconds or shift_ms is None or length_ms is None:
        return torch.as_tensor(package.featurize(wav, sample_rate))
    shift = int(round(shift_ms * sample_rate / 1000))
    length = int(round(length_ms * sample_rate / 1000))
    frames_per_piece = max(1, int(piece_seconds * sample_rate) // shift)
    if total <= frames_per_piece * shift + length:
        return torch.as_tensor(package.featurize(wav, sample_rate))
    n_frames = 1 + (total - length) // shift  # Kaldi snip_edges framing
    pieces = []
    for first in range(0, n_frames, frames_per_piece):
        count = min(frames_per_piece, n_frames - first)
        a = first * shift
        piece = wav[a : a + (count - 1) * shift + length]
        pieces.append(torch.as_tensor(package.featurize(piece, sample_rate))[:count])
    return torch.cat(pieces, dim=0)


def _cfg_get(cfg: Any, name: str, default: Any) -> Any:
    if isinstance(cfg, dict):
        return cfg.get(name, default)
    return getattr(cfg, name, default)


def _log_probs_chunked(package: Any, feats: torch.Tensor, chunk: int, overlap: int) -> torch.Tensor:
    """Log-probs of one long utterance, computed on overlapping chunks and stitched.

    Each chunk sees ``overlap`` input frames of context on both sides; only the output frames
    of its own centre are kept, so memory is bounded by the chunk length.
    """
    total = feats.shape[0]
    pieces = []
    for start in range(0, total, chunk):
        end = min(total, start + chunk)
        lo, hi = max(0, start - overlap), min(total, end + overlap)
        x = feats[lo:hi].unsqueeze(0)
        lp, out_len = package.log_probs(x, torch.tensor([hi - lo], device=x.device))
        n_out = int(out_len[0])
        ratio = n_out / (hi - lo)
        a = round((start - lo) * ratio)
        b = n_out if end == total else round((end - lo) * ratio)
        pieces.append(lp[0, a:b].float().cpu())
    return torch.cat(pieces, dim=0)


# --------------------------------------------------------------------------------------------
# decoding


class Transcriber:
    """Loads the model once; decodes items in length-sorted batches."""

    def __init__(self, model_or_path: Any, options: DecodeOptions) -> None:
        if isinstance(model_or_path, (str, Path)):
            self.package = load_model_package(model_or_path)
        else:
            self.package = model_or_path
        self.options = options
        model = getattr(self.package, "model", None)
        if isinstance(model, torch.nn.Module):
            model.to(options.device).eval()
        self.frame_shift_s = _frame_shift(self.package)
        self.tokenizer = self.package.tokenizer
        self.beam: BeamSearchDecoder | None = None
        if options.search == "beam":
            self.beam = BeamSearchDecoder(
                self.tokenizer,
                lexicon=options.lexicon,
                lm=options.lm,
                word_separator=options.word_separator,
                lm_weight=options.lm_weight,
                word_score=options.word_score,
                unk_score=options.unk_score if options.lexicon else 0.0,
                beam_size=options.beam_size,
                beam_threshold=options.beam_threshold,
                nbest=options.nbest,
            )
        elif options.search != "greedy":
            raise ValueError(f"--search must be greedy or beam, got {options.search!r}")
        self.word_lookup = None
        if options.search == "greedy" and options.lexicon:
            lookup = WordLookup.from_lexicon(options.lexicon, options.lm)
            self.word_lookup = lookup.with_fallback(self.tokenizer.dictionary())
        self.audio_seconds = 0.0

    def _features(self, item: _Item) -> tuple[torch.Tensor, float]:
        audio = load_audio(item.path, offset=item.offset, duration=item.duration)
        wav = torch.as_tensor(audio.waveform, dtype=torch.float32)
        sr = int(getattr(audio, "sample_rate", SAMPLE_RATE))
        if wav.numel() == 0:
            raise ValueError(f"{item.path}: no audio samples")
        if not torch.isfinite(wav).all():
            raise ValueError(f"{item.path}: audio contains NaN or Inf")
        feats = featurize_in_pieces(self.package, wav, sr, self.options.featurize_piece_seconds)
        return feats, wav.numel() / sr

    def batches(
        self, items: list[_Item], durations: dict[int, float] | None = None
    ) -> Iterator[list[_Item]]:
        """Length-sorted batches whose padded size stays under ``batch_seconds``."""
        durs = durations or {id(it): _duration(it) for it in items}
        ordered = sorted(items, key=lambda it: durs[id(it)], reverse=True)
        batch: list[_Item] = []
        for it in ordered:
            longest = durs[id(batch[0])] if batch else durs[id(it)]
            if batch and longest * (len(batch) + 1) > self.options.batch_seconds:
                yield batch
                batch = []
            batch.append(it)
        if batch:
            yield batch

    @torch.inference_mode()
    def decode_batch(self, batch: list[_Item]) -> list[Result]:
        """Decode one batch; unreadable items come back as error results."""
        results: dict[int, Result] = {}
        feats: list[torch.Tensor] = []
        ok: list[tuple[int, _Item, float]] = []
        for i, item in enumerate(batch):
            try:
                f, dur = self._features(item)
            except Exception as e:  # one bad file must not stop the others
                results[i] = Result(
                    item.id, item.path, speaker=item.speaker, error=_reason(e, item)
                )
                continue
            feats.append(f)
            ok.append((i, item, dur))
        if ok:
            for (i, item, dur), hyps in zip(ok, self._decode_features(feats), strict=True):
                best = hyps[0]
                results[i] = Result(
                    item.id,
                    item.path,
                    best.text,
                    best.words,
                    best.confidence,
                    dur,
                    item.speaker,
                    hyps,
                )
                self.audio_seconds += dur
        return [results[i] for i in range(len(batch))]

    def _decode_features(self, feats: list[torch.Tensor]) -> list[list[Hypothesis]]:
        opt = self.options
        device = opt.device
        frames_per_s = 1.0 / _feature_shift(self.package)
        longest = max(f.shape[0] for f in feats) / frames_per_s
        chunk_s = opt.chunk_seconds
        if (
            chunk_s is None
            and opt.max_whole_seconds is not None
            and longest > opt.max_whole_seconds
        ):
            chunk_s = opt.fallback_chunk_seconds
        chunk = int(chunk_s * frames_per_s) if chunk_s else None
        overlap = int(opt.chunk_overlap_seconds * frames_per_s)
        if chunk is not None and any(f.shape[0] > chunk for f in feats):
            lps = [_log_probs_chunked(self.package, f.to(device), chunk, overlap) for f in feats]
            lengths = torch.tensor([lp.shape[0] for lp in lps])
            log_probs = torch.nn.utils.rnn.pad_sequence(lps, batch_first=True)
        else:
            lengths = torch.tensor([f.shape[0] for f in feats])
            x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(device)
            log_probs, lengths = self.package.log_probs(x, lengths.to(device))
            log_probs, lengths = log_probs.float().cpu(), lengths.cpu()
        if self.beam is not None:
            return self.beam(log_probs, lengths, self.frame_shift_s)
        return [
            [h]
            for h in greedy_decode(
                log_probs,
                lengths,
                self.tokenizer,
                self.frame_shift_s,
                word_separator=opt.word_separator,
                word_lookup=self.word_lookup,
            )
        ]


def _feature_shift(package: Any) -> float:
    ms = _cfg_get(getattr(package, "fbank_config", None), "frame_shift_ms", None)
    return float(ms) / 1000.0 if ms else 0.01


def _reason(e: Exception, item: _Item) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg if item.path in msg else f"{item.path}: {msg}"


def transcribe(
    model_or_path: Any,
    paths: str | Path | Sequence[str | Path],
    **options: Any,
) -> list[Result]:
    """Transcribe audio files, folders, manifests and wav.scp files with a model package.

    ``options`` are :class:`DecodeOptions` fields (``search="beam"``, ``lm=...``).
    Returns results in input order; unreadable inputs have ``error`` set.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    results = list(iter_transcribe(model_or_path, paths, DecodeOptions(**options)))
    items, _ = collect_inputs(paths)
    order = {it.id: n for n, it in enumerate(items)}
    return sorted(results, key=lambda r: order.get(r.id, -1))


@dataclass
class DecodeStats:
    """Filled in by :func:`iter_transcribe`: how much audio, how long it took."""

    audio_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    failed: int = 0

    @property
    def rtf(self) -> float:
        """Real-time factor: processing seconds per audio second."""
        return self.elapsed_seconds / self.audio_seconds if self.audio_seconds else math.nan


def iter_transcribe(
    model_or_path: Any,
    paths: Sequence[str | Path],
    options: DecodeOptions,
    skip_ids: set[str] | None = None,
    stats: DecodeStats | None = None,
) -> Iterator[Result]:
    """Yield results as batches finish (longest first); errors are yielded, not raised."""
    stats = stats if stats is not None else DecodeStats()
    start = time.perf_counter()
    items, errors = collect_inputs(paths)
    stats.failed += len(errors)
    yield from errors
    if skip_ids:
        items = [it for it in items if it.id not in skip_ids]
    if not items:
        return
    tr = Transcriber(model_or_path, options)
    from tqdm import tqdm

    durations = {id(it): _duration(it) for it in items}
    batches = list(tr.batches(items, durations))
    tenths = {k: round(d * 10) for k, d in durations.items()}  # integer steps: no float drift
    with tqdm(
        total=sum(tenths.values()),
        unit="s",
        unit_scale=0.1,
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio [{elapsed}<{remaining}, {rate_fmt}]",
        desc="decoding",
        disable=not options.progress,
        file=sys.stderr,
        dynamic_ncols=True,
    ) as bar:
        for batch in batches:
            for it, r in zip(batch, tr.decode_batch(batch), strict=True):
                bar.update(tenths[id(it)])
                stats.audio_seconds += r.duration
                stats.failed += r.error is not None
                stats.elapsed_seconds = time.perf_counter() - start
                yield r


# --------------------------------------------------------------------------------------------
# output


def format_result(r: Result, fmt: str, with_nbest: bool = False) -> str:
    """One result in ``fmt`` (text, jsonl, ctm, trn), newline-terminated."""
    if fmt == "text":
        return f"{r.id} {r.text}".rstrip() + "\n"
    if fmt == "jsonl":
        return json.dumps(r.to_json(with_nbest), ensure_ascii=False) + "\n"
    if fmt == "ctm":
        return "".join(
            f"{r.id} 1 {w.start:.3f} {max(w.end - w.start, 0.0):.3f} {w.word} {w.confidence:.4f}\n"
            for w in r.words
        )
    if fmt == "trn":
        return f"{r.text} ({trn_id(r.id, r.speaker)})\n"
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def trn_id(utt_id: str, speaker: str | None) -> str:
    """sclite wants ``(spk-utt)`` so it can group by speaker; keep ids that already are."""
    if speaker and not utt_id.startswith(f"{speaker}-") and not utt_id.startswith(f"{speaker}_"):
        return f"{speaker}-{utt_id}"
    return utt_id


def _done_ids(path: Path, fmt: str) -> set[str]:
    if not path.is_file():
        return set()
    ids = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if fmt == "jsonl":
            try:
                ids.add(json.loads(line)["id"])
            except (ValueError, KeyError):
                continue
        elif fmt == "trn":
            ids.add(line.rsplit("(", 1)[-1].rstrip(")").strip())
        else:
            ids.add(line.split()[0])
    return ids


def build_parser() -> argparse.ArgumentParser:
    d = DecodeOptions()
    p = argparse.ArgumentParser(
        prog="asr-decode", description="Transcribe audio with a trained model package."
    )
    p.add_argument("model", help="model package (.safetensors from training)")
    p.add_argument("inputs", nargs="+", help="audio files, folders, JSONL manifests, wav.scp")
    p.add_argument("-o", "--output", help="output file (default: stdout)")
    p.add_argument("--format", choices=FORMATS, help="default: from -o suffix, else text")
    p.add_argument("--search", choices=("greedy", "beam"), default=d.search)
    p.add_argument(
        "--lexicon",
        help="lexicon (asr-lm lexicon): constrains beam search; with greedy, maps each "
        "word's tokens to a word (phoneme models)",
    )
    p.add_argument(
        "--lm", help="ARPA or KenLM binary word LM (asr-lm arpa); greedy: homophone tie-break"
    )
    p.add_argument("--lm-weight", type=float, default=d.lm_weight)
    p.add_argument("--word-score", type=float, default=d.word_score)
    p.add_argument("--unk-score", type=float, default=d.unk_score)
    p.add_argument("--beam-size", type=int, default=d.beam_size)
    p.add_argument("--beam-threshold", type=float, default=d.beam_threshold)
    p.add_argument("--nbest", type=int, default=d.nbest)
    p.add_argument("--word-separator", help="word separator token (default: auto)")
    p.add_argument("--device", default=d.device, help="cpu or cuda")
    p.add_argument("--batch-seconds", type=float, default=d.batch_seconds)
    p.add_argument(
        "--chunk-seconds",
        type=float,
        help="decode audio longer than this in overlapping chunks (default: whole, except "
        f"beyond --max-whole-seconds, chunked at {d.fallback_chunk_seconds:g} s)",
    )
    p.add_argument("--max-whole-seconds", type=float, default=d.max_whole_seconds)
    p.add_argument("--chunk-overlap-seconds", type=float, default=d.chunk_overlap_seconds)
    p.add_argument("--resume", action="store_true", help="append, skipping ids already in -o")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--stream",
        action="store_true",
        help="recognise files, pipes or stdin as streams with a streaming model, JSONL events "
        "out (options: asr-decode --stream --help)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asr-decode``; exit status 1 if any input failed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--stream" in argv:  # its own options and output: asr.stream.cli
        from asr.stream.cli import main as stream_main

        argv.remove("--stream")
        return stream_main(argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    fmt = args.format or (
        _FORMAT_BY_SUFFIX.get(Path(args.output).suffix, "text") if args.output else "text"
    )
    options = DecodeOptions(
        search=args.search,
        lexicon=args.lexicon,
        lm=args.lm,
        lm_weight=args.lm_weight,
        word_score=args.word_score,
        unk_score=args.unk_score,
        beam_size=args.beam_size,
        beam_threshold=args.beam_threshold,
        nbest=args.nbest,
        device=args.device,
        batch_seconds=args.batch_seconds,
        chunk_seconds=args.chunk_seconds,
        chunk_overlap_seconds=args.chunk_overlap_seconds,
        max_whole_seconds=args.max_whole_seconds,
        word_separator=args.word_separator,
        progress=not args.no_progress,
    )
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("asr-decode: error: --device cuda but no CUDA device is visible", file=sys.stderr)
        return 2
    skip: set[str] = set()
    out: TextIO
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        skip = _done_ids(path, fmt) if args.resume else set()
        out = open(path, "a" if args.resume else "w", encoding="utf-8")  # noqa: SIM115
    else:
        out = sys.stdout
    from tqdm import tqdm

    stats = DecodeStats()
    try:
        for r in iter_transcribe(args.model, args.inputs, options, skip_ids=skip, stats=stats):
            if r.error:
                tqdm.write(f"asr-decode: error: {r.error}", file=sys.stderr)
                continue
            out.write(format_result(r, fmt, with_nbest=args.nbest > 1))
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
    return 1 if stats.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
