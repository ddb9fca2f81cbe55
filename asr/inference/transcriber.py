"""Batching and search: :class:`Transcriber` turns audio items into decoded results.

Inference path: :mod:`asr.inference.inputs` items -> ``load_audio`` (any rate/channels -> 16 kHz
mono, as in training) -> ``package.featurize`` (in pieces, :mod:`asr.inference.long_audio`) ->
``package.log_probs`` in length-sorted batches (long audio in stitched chunks) ->
:mod:`asr.decode` greedy or beam search -> :class:`asr.transcripts.Result`.

:func:`iter_transcribe` decodes the longest utterances first (batches pad least that way) but
yields results in input order, each as soon as every earlier input's result is out, so an
interrupted ``asr-decode`` leaves a prefix of its inputs written and ``--resume`` continues it.
An item that cannot be read becomes a result with ``error`` set; the others are still decoded.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm import tqdm

from asr.audio import load_audio
from asr.bundle import MEMBERS, read_bundle
from asr.decode import (
    BeamSearchConfig,
    BeamSearchDecoder,
    Hypothesis,
    WordLookup,
    WordTiming,
    greedy_decode,
)
from asr.inference.inputs import AudioItem, collect_inputs, failure_reason, item_duration
from asr.inference.long_audio import feature_shift_s, featurize_in_pieces, log_probs_chunked
from asr.inference.segmenter import PauseConfig, find_segments, frame_levels_db
from asr.models import compile_layers
from asr.package import load_package
from asr.transcripts import Result, trn_id

SAMPLE_RATE = 16000


@dataclass
class DecodeOptions:
    """How to decode: the ``asr-decode`` options (each flag is a field name with dashes).

    A model package may carry a decoding bundle (:mod:`asr.bundle`: lexicon, LM, tuned
    weights); :func:`options_for_model` makes its settings the defaults, under what is given.

    :param search: greedy (best path) or beam (lexicon, LM, n-best). Default: the package's
        bundle (beam search with its lexicon and LM), else greedy.
    :param lexicon: lexicon file (asr-lm lexicon): constrains beam search; with greedy search
        it maps each word's tokens back to a word (phoneme models; CMUdict names words the
        lexicon lacks), see asr.decode.WordLookup. Default: the package's; none: no lexicon.
    :param lm: ARPA or KenLM binary word LM (asr-lm arpa) for beam search; with greedy search
        and a lexicon, its unigrams pick among homophones. Default: the package's; none: no LM.
    :param units: print the model's own units (phones, characters, pieces) instead of words:
        no lexicon or LM, not even the package's.
    :param word_separator: separator token (default: found in the tokenizer, see
        asr.decode.find_word_separator).
    :param device: cpu or cuda.
    :param batch_seconds: audio seconds per batch (padded length x batch size).
    :param long_audio: how inputs longer than long_audio_seconds are decoded. segment: cut at
        pauses (asr.inference.segmenter) and decoded piece by piece like utterances, words
        joined; chunk: the model runs on overlapping chunks of chunk_seconds, one search over
        the whole; whole: one pass over the whole input.
    :param long_audio_seconds: inputs longer than this are long audio.
    :param max_segment_seconds: segment: a segment is cut again (at its longest quiet stretch)
        when longer than this.
    :param min_pause_seconds: segment: the shortest quiet stretch that separates segments.
    :param chunk_seconds: chunk: chunk length.
    :param chunk_overlap_seconds: chunk: context added on each side of a chunk, then discarded.
    :param featurize_piece_seconds: compute filterbanks of longer audio in exact pieces
        (asr.inference.long_audio.featurize_in_pieces); None: in one go.
    :param progress: show a progress bar on stderr (``asr-decode`` does unless --no-progress).
    :param compile: run the encoder's transformer layers through ``torch.compile`` (inductor;
        :func:`asr.models.compile_layers`): the first batches compile (tens of seconds on a
        CPU); the results are the eager model's to float rounding.
    :param beam: beam-search settings (:class:`asr.decode.BeamSearchConfig`; on the command
        line its fields are flags of their own: --lm-weight, --beam-size, ...).
    """

    search: Literal["greedy", "beam"] = "greedy"
    lexicon: str | None = None
    lm: str | None = None
    units: bool = False
    word_separator: str | None = None
    device: str = "cpu"
    batch_seconds: float = 120.0
    long_audio: Literal["segment", "chunk", "whole"] = "segment"
    long_audio_seconds: float = 60.0
    max_segment_seconds: float = 20.0
    min_pause_seconds: float = 0.3
    chunk_seconds: float = 30.0
    chunk_overlap_seconds: float = 4.0
    featurize_piece_seconds: float | None = 60.0
    progress: bool = False
    compile: bool = False
    beam: BeamSearchConfig = field(default_factory=BeamSearchConfig)

    def __post_init__(self) -> None:
        if self.search not in ("greedy", "beam"):
            raise ValueError(f"search must be greedy or beam, got {self.search!r}")
        if self.long_audio not in ("segment", "chunk", "whole"):
            raise ValueError(f"long_audio must be segment, chunk or whole, got {self.long_audio!r}")
        for name in ("lexicon", "lm"):  # "--lm none" switches a package's LM off
            if str(getattr(self, name)).lower() in ("none", "null", ""):
                setattr(self, name, None)
        if self.units and (self.lexicon or self.lm):
            raise ValueError(
                "units prints the model's own units: it takes no lexicon or LM (drop --units "
                "for words, or --lexicon/--lm for units)"
            )
        for name in ("long_audio_seconds", "max_segment_seconds", "chunk_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @classmethod
    def from_flat(cls, **fields: Any) -> DecodeOptions:
        """Options from one flat mapping of :class:`DecodeOptions` and
        :class:`~asr.decode.BeamSearchConfig` field names (the form the command line and
        :func:`transcribe` take: ``lm_weight=3.0`` rather than ``beam=BeamSearchConfig(...)``)."""
        beam_names = {f.name for f in dataclasses.fields(BeamSearchConfig)}
        own_names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - beam_names - own_names)
        if unknown:
            raise TypeError(f"unknown decoding options {unknown}")
        beam = {k: v for k, v in fields.items() if k in beam_names}
        own = {k: v for k, v in fields.items() if k not in beam_names}
        if beam:
            own["beam"] = dataclasses.replace(own.get("beam") or BeamSearchConfig(), **beam)
        return cls(**own)

    def flat(self, changed_only: bool = False) -> dict[str, Any]:
        """The flat mapping :meth:`from_flat` takes; ``changed_only``: fields that differ from
        the defaults."""
        out: dict[str, Any] = {}
        for obj, default in ((self, DecodeOptions()), (self.beam, BeamSearchConfig())):
            for f in dataclasses.fields(obj):
                value = getattr(obj, f.name)
                if f.name != "beam" and not (changed_only and value == getattr(default, f.name)):
                    out[f.name] = value
        return out


def options_for_model(model_or_path: Any, given: Mapping[str, Any] | None = None) -> DecodeOptions:
    """Decoding options for a model: the defaults, under its package's decoding bundle
    (:mod:`asr.bundle`: lexicon, LM, tuned weights), under ``given`` (flat field names).

    ``units=True`` leaves the bundle out. A member given explicitly (``lm="other.arpa"`` or
    ``lm=None``) is not read from the package, so a damaged member can be bypassed.
    """
    given = dict(given or {})
    path = model_or_path if isinstance(model_or_path, (str, Path)) else None
    path = path or getattr(model_or_path, "path", None)
    bundle = read_bundle(path) if path is not None and Path(path).is_file() else None
    if bundle is None or given.get("units"):
        return DecodeOptions.from_flat(**given)
    layered: dict[str, Any] = dict(bundle.options)
    for member in MEMBERS:
        if member not in given and bundle.has(member):
            layered[member] = str(bundle.member_path(member))
    return DecodeOptions.from_flat(**{**layered, **given})


def load_model_package(path: str | Path) -> Any:
    """Load a model package file (``asr.package.load_package``), naming the file if absent."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model package not found: {path}")
    return load_package(path)


class Transcriber:
    """Loads the model once; decodes items in length-sorted batches.

    The steps are public so tools can reuse them (``tools/tune_decoding.py`` computes
    :meth:`log_probs` once and runs many searches over them): :meth:`featurize` one item,
    :meth:`log_probs` of a batch of features, :meth:`search` over log-probs;
    :meth:`decode_batch` does all three.
    """

    def __init__(self, model_or_path: Any, options: DecodeOptions | None = None) -> None:
        if isinstance(model_or_path, (str, Path)):
            self.package = load_model_package(model_or_path)
        else:
            self.package = model_or_path
        self.options = options = options or DecodeOptions()
        model = getattr(self.package, "model", None)
        if isinstance(model, torch.nn.Module):
            model.to(options.device).eval()
            if options.compile:
                compile_layers(model)
        shift = getattr(self.package, "frame_shift_s", None)
        if shift is None:
            raise ValueError("model package has no frame_shift_s: cannot time words")
        self.frame_shift_s = float(shift)
        self.tokenizer = self.package.tokenizer
        self.beam: BeamSearchDecoder | None = None
        if options.search == "beam":
            config = options.beam
            if not options.lexicon:  # no lexicon, no out-of-lexicon words to score
                config = dataclasses.replace(config, unk_score=0.0)
            self.beam = BeamSearchDecoder(
                self.tokenizer,
                lexicon=options.lexicon,
                lm=options.lm,
                word_separator=options.word_separator,
                config=config,
            )
        self.word_lookup = None
        if options.search == "greedy" and options.lexicon:
            lookup = WordLookup.from_lexicon(options.lexicon, options.lm)
            self.word_lookup = lookup.with_fallback(self.tokenizer.dictionary())

    def batches(
        self, items: list[AudioItem], durations: dict[int, float] | None = None
    ) -> Iterator[list[AudioItem]]:
        """Length-sorted batches (longest first) whose padded size stays under
        ``batch_seconds``; ``durations`` maps ``id(item)`` to seconds."""
        durs = durations or {id(it): item_duration(it) for it in items}
        ordered = sorted(items, key=lambda it: durs[id(it)], reverse=True)
        batch: list[AudioItem] = []
        for it in ordered:
            longest = durs[id(batch[0])] if batch else durs[id(it)]
            if batch and longest * (len(batch) + 1) > self.options.batch_seconds:
                yield batch
                batch = []
            batch.append(it)
        if batch:
            yield batch

    def featurize(self, item: AudioItem) -> tuple[torch.Tensor, float]:
        """Features of one item and its length in seconds; raises if it cannot be read."""
        audio = load_audio(item.path, offset=item.offset, duration=item.duration)
        wav = torch.as_tensor(audio.waveform, dtype=torch.float32)
        sr = int(getattr(audio, "sample_rate", SAMPLE_RATE))
        if wav.numel() == 0:
            raise ValueError(f"{item.path}: no audio samples")
        if not torch.isfinite(wav).all():
            raise ValueError(f"{item.path}: audio contains NaN or Inf")
        feats = featurize_in_pieces(self.package, wav, sr, self.options.featurize_piece_seconds)
        return feats, wav.numel() / sr

    @torch.inference_mode()
    def log_probs(self, features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded ``(B, T', V)`` float32 CPU log-probs and valid lengths of a batch of
        ``(T, F)`` features; with ``long_audio="chunk"``, inputs past ``long_audio_seconds``
        run in stitched chunks."""
        opt = self.options
        frames_per_s = 1.0 / feature_shift_s(self.package)
        if opt.long_audio == "chunk" and any(
            f.shape[0] > opt.long_audio_seconds * frames_per_s for f in features
        ):
            chunk = max(1, int(opt.chunk_seconds * frames_per_s))
            overlap = int(opt.chunk_overlap_seconds * frames_per_s)
            lps = [
                log_probs_chunked(self.package, f.to(opt.device), chunk, overlap) for f in features
            ]
            lengths = torch.tensor([lp.shape[0] for lp in lps])
            return torch.nn.utils.rnn.pad_sequence(lps, batch_first=True), lengths
        lengths = torch.tensor([f.shape[0] for f in features])
        x = torch.nn.utils.rnn.pad_sequence(list(features), batch_first=True).to(opt.device)
        log_probs, lengths = self.package.log_probs(x, lengths.to(opt.device))
        return log_probs.float().cpu(), lengths.cpu()

    def search(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        """The configured search over a batch: an n-best list (best first) per utterance."""
        if self.beam is not None:
            return self.beam(log_probs, lengths, self.frame_shift_s)
        hyps = greedy_decode(
            log_probs,
            lengths,
            self.tokenizer,
            self.frame_shift_s,
            word_separator=self.options.word_separator,
            word_lookup=self.word_lookup,
        )
        return [[h] for h in hyps]

    @torch.inference_mode()
    def decode_batch(self, batch: list[AudioItem]) -> list[Result]:
        """Decode one batch; unreadable items come back as error results."""
        results: dict[int, Result] = {}
        feats: list[torch.Tensor] = []
        ok: list[tuple[int, AudioItem, float]] = []
        for i, item in enumerate(batch):
            try:
                f, dur = self.featurize(item)
            except Exception as e:  # one bad file must not stop the others
                results[i] = Result(
                    item.id, item.path, speaker=item.speaker, error=failure_reason(e, item.path)
                )
                continue
            feats.append(f)
            ok.append((i, item, dur))
        if ok:
            nbests = self.search(*self.log_probs(feats))
            for (i, item, dur), hyps in zip(ok, nbests, strict=True):
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
        return [results[i] for i in range(len(batch))]

    def segments(self, item: AudioItem) -> list[AudioItem]:
        """``item`` cut at its pauses (:mod:`asr.inference.segmenter`), as items of its file;
        raises if it cannot be read."""
        opt = self.options
        config = PauseConfig(
            min_pause_s=opt.min_pause_seconds, max_segment_s=opt.max_segment_seconds
        )
        levels = frame_levels_db(item.path, item.offset, item.duration, config.frame_s)
        return [
            AudioItem(f"{item.id}~{k}", item.path, item.offset + a, b - a, item.speaker)
            for k, (a, b) in enumerate(find_segments(levels, config))
        ]

    def decode_long(self, item: AudioItem, progress: Any = None) -> Result:
        """One long input decoded segment by segment (in length-sorted batches), joined into
        one result with times from the start of ``item``; ``progress`` (a tqdm bar) advances
        by the item's length in 0.1 s steps."""
        duration = item_duration(item)
        total = round(duration * 10)
        try:
            segments = self.segments(item)
        except Exception as e:  # one bad file must not stop the others
            if progress is not None:
                progress.update(total)
            return Result(
                item.id, item.path, speaker=item.speaker, error=failure_reason(e, item.path)
            )
        decoded: dict[int, Result] = {}
        index = {id(seg): k for k, seg in enumerate(segments)}
        advanced = 0
        for batch in self.batches(segments):
            for seg, r in zip(batch, self.decode_batch(batch), strict=True):
                decoded[index[id(seg)]] = r
            step = min(total - advanced, round(sum(s.duration or 0.0 for s in batch) * 10))
            advanced += step
            if progress is not None:
                progress.update(step)
        if progress is not None:
            progress.update(total - advanced)
        return join_segments(item, duration, [(segments[k], decoded[k]) for k in sorted(decoded)])


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


def join_segments(
    item: AudioItem, duration: float, parts: Sequence[tuple[AudioItem, Result]]
) -> Result:
    """The result of a long input from its segments' results: words in order with times from
    the start of ``item``, text joined, confidence the token-weighted mean; the first failed
    segment fails it."""
    for _, r in parts:
        if r.error:
            return Result(
                item.id, item.path, duration=duration, speaker=item.speaker, error=r.error
            )
    words: list[WordTiming] = []
    tokens: list[int] = []
    score, weighted = 0.0, 0.0
    for seg, r in parts:
        shift = seg.offset - item.offset
        best = r.nbest[0] if r.nbest else Hypothesis(r.text, [], r.words, 0.0, r.confidence)
        words += [
            dataclasses.replace(w, start=round(w.start + shift, 3), end=round(w.end + shift, 3))
            for w in best.words
        ]
        tokens += best.tokens
        score += best.score
        weighted += best.confidence * len(best.tokens)
    text = " ".join(r.text for _, r in parts if r.text)
    confidence = weighted / len(tokens) if tokens else 1.0
    hyp = Hypothesis(text, tokens, words, score, confidence)
    return Result(item.id, item.path, text, words, confidence, duration, item.speaker, [hyp])


def iter_transcribe(
    model_or_path: Any,
    paths: Sequence[str | Path],
    options: DecodeOptions,
    skip_ids: set[str] | None = None,
    stats: DecodeStats | None = None,
) -> Iterator[Result]:
    """Yield results in input order; errors are yielded, not raised.

    ``options`` are used as they are (:func:`options_for_model` adds a package's bundle).
    Inputs that cannot be listed (a bad manifest) come first. Items whose id (or sclite
    ``spk-utt`` id) is in ``skip_ids`` are left out. With ``long_audio="segment"``, each input
    longer than ``long_audio_seconds`` is cut at its pauses and its segments decoded in
    batches of their own; the other inputs run in batches, longest first. A result is held
    back only until every earlier input's result has been yielded.
    """
    stats = stats if stats is not None else DecodeStats()
    start = time.perf_counter()
    items, errors = collect_inputs(paths)
    stats.failed += len(errors)
    yield from errors
    if skip_ids:
        items = [
            it
            for it in items
            if it.id not in skip_ids and trn_id(it.id, it.speaker) not in skip_ids
        ]
    if not items:
        return
    tr = Transcriber(model_or_path, options)
    durations = {id(it): item_duration(it) for it in items}
    position = {id(it): n for n, it in enumerate(items)}
    segmented = [
        it
        for it in items
        if options.long_audio == "segment" and durations[id(it)] > options.long_audio_seconds
    ]
    whole = [it for it in items if it not in segmented]
    tenths = {k: round(d * 10) for k, d in durations.items()}  # integer steps: no float drift
    held: dict[int, Result] = {}  # decoded, waiting for an earlier input
    next_out = 0
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
        work: list[tuple[AudioItem | None, list[AudioItem]]] = [(it, []) for it in segmented]
        work += [(None, batch) for batch in tr.batches(whole, durations)]
        for long_item, batch in work:
            if long_item is not None:
                done = [(long_item, tr.decode_long(long_item, bar))]
            else:
                done = list(zip(batch, tr.decode_batch(batch), strict=True))
                bar.update(sum(tenths[id(it)] for it in batch))
            for it, r in done:
                stats.audio_seconds += r.duration
                stats.failed += r.error is not None
                held[position[id(it)]] = r
            stats.elapsed_seconds = time.perf_counter() - start
            while next_out in held:
                yield held.pop(next_out)
                next_out += 1


def transcribe(
    model_or_path: Any,
    paths: str | Path | Sequence[str | Path],
    options: DecodeOptions | None = None,
    **fields: Any,
) -> list[Result]:
    """Transcribe audio files, folders, manifests and wav.scp files with a model package.

    Pass ``options`` or, flat, any :class:`DecodeOptions` / :class:`~asr.decode.BeamSearchConfig`
    fields (``search="greedy"``, ``lm_weight=2.5``, ``units=True``). What neither sets comes
    from the package's decoding bundle when it has one (:func:`options_for_model`: a bundled
    package gives words with its tuned beam search), else from the defaults; fields of
    ``options`` count as set where they differ from the defaults. Returns results in input
    order; unreadable inputs have ``error`` set.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    given = {**(options.flat(changed_only=True) if options else {}), **fields}
    resolved = options_for_model(model_or_path, given)
    return list(iter_transcribe(model_or_path, paths, resolved))
