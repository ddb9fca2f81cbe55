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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm import tqdm

from asr.audio import load_audio
from asr.decode import BeamSearchConfig, BeamSearchDecoder, Hypothesis, WordLookup, greedy_decode
from asr.inference.inputs import AudioItem, collect_inputs, failure_reason, item_duration
from asr.inference.long_audio import feature_shift_s, featurize_in_pieces, log_probs_chunked
from asr.package import load_package
from asr.transcripts import Result, trn_id

SAMPLE_RATE = 16000


@dataclass
class DecodeOptions:
    """How to decode: the ``asr-decode`` options (each flag is a field name with dashes).

    :param search: greedy (best path) or beam (lexicon, LM, n-best).
    :param lexicon: lexicon file (asr-lm lexicon): constrains beam search; with greedy search
        it maps each word's tokens back to a word (phoneme models; CMUdict names words the
        lexicon lacks), see asr.decode.WordLookup.
    :param lm: ARPA or KenLM binary word LM (asr-lm arpa) for beam search; with greedy search
        and a lexicon, its unigrams pick among homophones.
    :param word_separator: separator token (default: found in the tokenizer, see
        asr.decode.find_word_separator).
    :param device: cpu or cuda.
    :param batch_seconds: audio seconds per batch (padded length x batch size).
    :param chunk_seconds: decode audio longer than this in overlapping chunks (default: whole,
        except beyond max_whole_seconds).
    :param chunk_overlap_seconds: context added on each side of a chunk, then discarded.
    :param max_whole_seconds: without chunk_seconds, longer utterances are still chunked (at
        fallback_chunk_seconds): the conv front end's activations grow with length, and
        chunking changes the output only near chunk edges. None (null) never chunks.
    :param fallback_chunk_seconds: chunk length used past max_whole_seconds.
    :param featurize_piece_seconds: compute filterbanks of longer audio in exact pieces
        (asr.inference.long_audio.featurize_in_pieces); None: in one go.
    :param progress: show a progress bar on stderr (``asr-decode`` does unless --no-progress).
    :param beam: beam-search settings (:class:`asr.decode.BeamSearchConfig`; on the command
        line its fields are flags of their own: --lm-weight, --beam-size, ...).
    """

    search: Literal["greedy", "beam"] = "greedy"
    lexicon: str | None = None
    lm: str | None = None
    word_separator: str | None = None
    device: str = "cpu"
    batch_seconds: float = 120.0
    chunk_seconds: float | None = None
    chunk_overlap_seconds: float = 4.0
    max_whole_seconds: float | None = 600.0
    fallback_chunk_seconds: float = 60.0
    featurize_piece_seconds: float | None = 60.0
    progress: bool = False
    beam: BeamSearchConfig = field(default_factory=BeamSearchConfig)

    def __post_init__(self) -> None:
        if self.search not in ("greedy", "beam"):
            raise ValueError(f"search must be greedy or beam, got {self.search!r}")

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
        ``(T, F)`` features; utterances past the chunk length are decoded in stitched chunks."""
        opt = self.options
        frames_per_s = 1.0 / feature_shift_s(self.package)
        longest = max(f.shape[0] for f in features) / frames_per_s
        chunk_s = opt.chunk_seconds
        if (
            chunk_s is None
            and opt.max_whole_seconds is not None
            and longest > opt.max_whole_seconds
        ):
            chunk_s = opt.fallback_chunk_seconds
        chunk = int(chunk_s * frames_per_s) if chunk_s else None
        overlap = int(opt.chunk_overlap_seconds * frames_per_s)
        if chunk is not None and any(f.shape[0] > chunk for f in features):
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
    """Yield results in input order; errors are yielded, not raised.

    Inputs that cannot be listed (a bad manifest) come first. Items whose id (or sclite
    ``spk-utt`` id) is in ``skip_ids`` are left out. Batches run longest first; a result is
    held back only until every earlier input's result has been yielded.
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
    batches = list(tr.batches(items, durations))
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
        for batch in batches:
            for it, r in zip(batch, tr.decode_batch(batch), strict=True):
                bar.update(tenths[id(it)])
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
    fields (``search="beam", lm="lm.arpa", lm_weight=3.0``). Returns results in input order;
    unreadable inputs have ``error`` set.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if options is None or fields:
        given = (
            {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
            if options
            else {}
        )
        options = DecodeOptions.from_flat(**{**given, **fields})
    return list(iter_transcribe(model_or_path, paths, options))
