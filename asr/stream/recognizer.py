"""Streaming recognition: audio in as it arrives, partial and final words out, constant memory.

The whole streaming path for one or many streams: samples -> :class:`StreamingFbank` (frames
equal to the whole-waveform fbank) -> :class:`asr.models.streaming.StreamingCTC` (the causal
encoder stepped with its carried state) -> :class:`SegmentedSearch` (greedy or beam + LM,
cut at endpoints). ``Recognizer`` is one stream; ``StreamBatch`` holds N streams and steps the
encoder once for all streams whose states line up (the serving case: a network server would
call it with each stream's newest audio).

    rec = Recognizer("model.safetensors", search="beam", lexicon="lexicon.txt", lm="lm.arpa")
    for block in audio_blocks:           # float32 samples at rec.sample_rate
        for r in rec.accept_waveform(block):
            print(r.kind, r.text)
    print(rec.finalize().text)
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr.decode import BeamSearchConfig, WordLookup
from asr.models.streaming import EncoderState, StreamingCTC, split_state, stack_states
from asr.stream.beam import SharedBeamSearch
from asr.stream.features import StreamingFbank
from asr.stream.search import (
    BeamStream,
    EndpointConfig,
    GreedyStream,
    Histogram,
    SegmentedSearch,
    StreamResult,
)


@dataclass
class StreamOptions:
    """How to recognise a stream.

    :param search: ``greedy`` or ``beam``.
    :param lexicon: lexicon (``asr-lm lexicon``): constrains beam search; with greedy search it
        maps a phoneme model's words back to spelling (as ``asr-decode`` does).
    :param lm: ARPA / KenLM word LM for beam search; with greedy, homophone tie-break.
    :param beam: beam search settings (LM weight, word score, beam size, ...).
    :param endpoint: where segments end (see :class:`EndpointConfig`).
    :param partials: report partial results as the text changes.
    :param max_block_s: audio handed to ``accept_waveform`` is processed in blocks of at most
        this length, so one huge call does not hold its whole fbank and activations at once.
    """

    search: str = "greedy"
    lexicon: str | None = None
    lm: str | None = None
    beam: BeamSearchConfig = field(default_factory=BeamSearchConfig)
    word_separator: str | None = None
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    partials: bool = True
    max_block_s: float = 1.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.search not in ("greedy", "beam"):
            raise ValueError(f"search must be greedy or beam, got {self.search!r}")
        if self.max_block_s <= 0:
            raise ValueError(f"max_block_s must be > 0, got {self.max_block_s}")

    @classmethod
    def make(cls, **options: Any) -> StreamOptions:
        """From keyword arguments; beam and endpoint settings may be given flat
        (``lm_weight=3``, ``silence_s=0.5``)."""
        beam_keys = {f.name for f in fields(BeamSearchConfig)}
        end_keys = {f.name for f in fields(EndpointConfig)}
        beam = {k: options.pop(k) for k in list(options) if k in beam_keys}
        end = {k: options.pop(k) for k in list(options) if k in end_keys}
        if beam:
            options["beam"] = BeamSearchConfig(**beam)
        if end:
            options["endpoint"] = EndpointConfig(**end)
        return cls(**options)


class StreamStats:
    """Audio, compute and latency of one stream, in constant memory."""

    def __init__(self) -> None:
        self.audio_s = 0.0
        self.compute_s = 0.0
        self.blocks = 0
        self.block_ms = Histogram.log(0.01, 1e6)  # compute time per accept_waveform block

    def add(self, audio_s: float, compute_s: float) -> None:
        self.audio_s += audio_s
        self.compute_s += compute_s
        self.blocks += 1
        self.block_ms.add(compute_s * 1000.0)

    @property
    def rtf(self) -> float:
        """Compute seconds per audio second."""
        return self.compute_s / self.audio_s if self.audio_s else float("nan")


@dataclass
class _Stream:
    fbank: StreamingFbank
    state: EncoderState
    search: SegmentedSearch
    samples: int = 0
    stats: StreamStats = field(default_factory=StreamStats)


class StreamBatch:
    """N concurrent streams over one model; the encoder steps them as one batch.

    :param model: a model package path or a loaded ``asr.package.ModelPackage`` of a streaming
        model (``encoder.transformer.streaming``).
    :raises asr.models.streaming.NotStreamableError: for a bidirectional model.
    """

    def __init__(
        self, model: Any, options: StreamOptions | None = None, **option_kwargs: Any
    ) -> None:
        if options is not None and option_kwargs:
            raise TypeError("pass either options= or keyword options, not both")
        self.options = options or StreamOptions.make(**option_kwargs)
        if isinstance(model, (str, Path)):
            from asr.package import load_package

            model = load_package(model, device=self.options.device)
        self.package = model
        self.ctc = StreamingCTC(model.model.to(self.options.device))
        fb = model.fbank_config
        enc_shift = model.model.config.transformer.frame_shift_ms
        if fb.frame_shift_ms != enc_shift:
            raise ValueError(
                f"the package's features shift by {fb.frame_shift_ms} ms but its encoder was "
                f"built for {enc_shift} ms frames (encoder.transformer.frame_shift_ms)"
            )
        self.sample_rate = int(fb.sample_rate)
        self.frame_shift_s = float(model.frame_shift_s)
        self.tokenizer = model.tokenizer
        self._word_lookup: WordLookup | None = None
        if self.options.search == "greedy" and self.options.lexicon:
            lookup = WordLookup.from_lexicon(self.options.lexicon, self.options.lm)
            self._word_lookup = lookup.with_fallback(self.tokenizer.dictionary())
        self._beam: SharedBeamSearch | None = None  # built with the first beam stream
        self.streams: dict[Hashable, _Stream] = {}

    # ---- latency -------------------------------------------------------------------------
    def lookahead_ms(self) -> tuple[float, float]:
        """Algorithmic look-ahead (min, max over output frames), in ms of audio: how much audio
        past the end of an output frame's own span it needs. The fbank window's overhang, the
        front end's look-ahead and, for chunk-causal attention, the rest of the chunk."""
        fb = self.package.fbank_config
        shift = fb.frame_shift_ms
        window = fb.frame_length_ms - shift
        front = self.ctc.lookahead_frames * shift
        base = window + front
        chunk = max(self.ctc.chunk, 1)
        return base, base + (chunk - 1) * shift * self.ctc.subsampling

    # ---- streams -------------------------------------------------------------------------
    def open(self, key: Hashable) -> None:
        """Start stream ``key`` (its state, features and search)."""
        if key in self.streams:
            raise ValueError(f"stream {key!r} is already open")
        self.streams[key] = _Stream(
            StreamingFbank(self.package.fbank_config, self.package.cmvn),
            self.ctc.initial_state(1),
            SegmentedSearch(
                self._make_search(),
                self.frame_shift_s,
                self.options.endpoint,
                self.options.partials,
            ),
        )

    def _make_search(self) -> GreedyStream | BeamStream:
        if self.options.search == "greedy":
            return GreedyStream(self.tokenizer, self.frame_shift_s, self._word_lookup)
        if self._beam is None:
            o = self.options
            config = o.beam
            if not o.lexicon:  # lexicon-free: no word is unknown
                config = BeamSearchConfig(**{**o.beam.__dict__, "unk_score": 0.0})
            self._beam = SharedBeamSearch(
                self.tokenizer, o.lexicon, o.lm, word_separator=o.word_separator, config=config
            )
        decoder = self._beam.new_decoder()
        return BeamStream(decoder, self.frame_shift_s)

    def close(self, key: Hashable) -> None:
        del self.streams[key]

    def reset(self, key: Hashable) -> None:
        """Forget stream ``key``'s audio and results: it starts again from nothing."""
        s = self.streams[key]
        s.fbank.reset()
        s.state = self.ctc.initial_state(1)
        s.search.reset()
        s.samples = 0
        s.stats = StreamStats()

    def stats(self, key: Hashable) -> StreamStats:
        return self.streams[key].stats

    def word_delay(self, key: Hashable) -> Histogram:
        """Stream seconds from a word's end to its first appearance in a result."""
        return self.streams[key].search.word_delay

    # ---- stepping ------------------------------------------------------------------------
    def accept(self, waveforms: dict[Hashable, Any]) -> dict[Hashable, list[StreamResult]]:
        """New samples of some streams (float in [-1, 1] at :attr:`sample_rate`) -> each
        stream's new results. Streams whose encoder states line up are stepped as one batch."""
        out: dict[Hashable, list[StreamResult]] = {k: [] for k in waveforms}
        block = max(1, int(self.options.max_block_s * self.sample_rate))
        pieces = {k: _as_samples(w) for k, w in waveforms.items()}
        longest = max((p.numel() for p in pieces.values()), default=0)
        for at in range(0, longest, block):
            part = {k: p[at : at + block] for k, p in pieces.items() if at < p.numel()}
            for k, results in self._step(part).items():
                out[k] += results
        return out

    def _step(self, waveforms: dict[Hashable, torch.Tensor]) -> dict[Hashable, list[StreamResult]]:
        start = time.perf_counter()
        feats: dict[Hashable, torch.Tensor] = {}
        for key, wav in waveforms.items():
            s = self.streams[key]
            if not torch.isfinite(wav).all():
                raise ValueError(f"stream {key!r}: audio contains NaN or infinite samples")
            feats[key] = s.fbank.accept(wav)
            s.samples += wav.numel()
        groups: dict[tuple, list[Hashable]] = {}
        for key, f in feats.items():
            sig = (self.streams[key].state.signature(), f.size(0))
            groups.setdefault(sig, []).append(key)
        log_probs: dict[Hashable, torch.Tensor] = {}
        for keys in groups.values():
            log_probs.update(self._encode(keys, [feats[k] for k in keys]))
        shared = (time.perf_counter() - start) / max(1, len(waveforms))
        out: dict[Hashable, list[StreamResult]] = {}
        for key, lp in log_probs.items():
            t0 = time.perf_counter()
            s = self.streams[key]
            out[key] = s.search.accept(lp, s.samples / self.sample_rate)
            if s.search.endpoints and self.options.endpoint.reset_encoder:
                s.state = self.ctc.reset_attention(s.state)
            s.stats.add(
                waveforms[key].numel() / self.sample_rate, shared + time.perf_counter() - t0
            )
        return out

    def _encode(self, keys: list[Hashable], feats: list[torch.Tensor]) -> dict:
        dev = self.options.device
        if len(keys) == 1:
            s = self.streams[keys[0]]
            lp, s.state = self.ctc.step(feats[0][None].to(dev), s.state)
            return {keys[0]: lp[0].cpu()}
        state = stack_states([self.streams[k].state for k in keys])
        lp, state = self.ctc.step(torch.stack(feats).to(dev), state)
        for k, st in zip(keys, split_state(state), strict=True):
            self.streams[k].state = st
        return {k: lp[i].cpu() for i, k in enumerate(keys)}

    def finalize(self, key: Hashable) -> StreamResult:
        """End stream ``key``: run what its encoder still holds, return the last segment's final
        result (its text may be empty). The stream stays open; :meth:`reset` starts it anew."""
        s = self.streams[key]
        start = time.perf_counter()
        dev = self.options.device
        lp, s.state = self.ctc.step(
            torch.zeros(1, 0, s.fbank.feature_dim, device=dev), s.state, final=True
        )
        now = s.samples / self.sample_rate
        final = s.search.finalize(lp[0].cpu(), now)
        s.stats.compute_s += time.perf_counter() - start
        return final


class Recognizer:
    """One stream: ``accept_waveform(samples)`` -> new results, ``finalize()``, ``reset()``.

    :param model: a model package path or a loaded ``ModelPackage`` of a streaming model.
    Other keyword arguments are :class:`StreamOptions` fields (beam and endpoint settings may be
    given flat: ``search="beam", lexicon=..., lm=..., lm_weight=3.0``).
    """

    KEY = 0

    def __init__(
        self, model: Any, options: StreamOptions | None = None, **option_kwargs: Any
    ) -> None:
        self.batch = StreamBatch(model, options, **option_kwargs)
        self.batch.open(self.KEY)

    @property
    def sample_rate(self) -> int:
        return self.batch.sample_rate

    @property
    def stats(self) -> StreamStats:
        return self.batch.stats(self.KEY)

    @property
    def word_delay(self) -> Histogram:
        return self.batch.word_delay(self.KEY)

    def lookahead_ms(self) -> tuple[float, float]:
        return self.batch.lookahead_ms()

    def accept_waveform(self, samples: Any) -> list[StreamResult]:
        """Float samples in [-1, 1] at :attr:`sample_rate` -> the results they produced: the
        final result of each segment that ended, then the partial one if its text changed."""
        return self.batch.accept({self.KEY: samples})[self.KEY]

    def finalize(self) -> StreamResult:
        """The stream has ended: the final result of its last segment."""
        return self.batch.finalize(self.KEY)

    def reset(self) -> None:
        """Start a new stream."""
        self.batch.reset(self.KEY)


def _as_samples(samples: Any) -> torch.Tensor:
    if isinstance(samples, np.ndarray):
        samples = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    return torch.as_tensor(samples, dtype=torch.float32).flatten()


__all__ = [
    "Recognizer",
    "StreamBatch",
    "StreamOptions",
    "StreamStats",
]
