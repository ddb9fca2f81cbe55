"""Incremental CTC search over a stream of log-prob frames, cut into segments at endpoints.

After the streaming encoder in the data flow (log-probs -> hypotheses). Two searches behind one
interface (:class:`GreedyStream`, :class:`BeamStream`): ``step(log_probs)`` adds frames,
``partial()`` is the best hypothesis so far, ``end()`` the final one. Both produce what the
offline :func:`asr.decode.greedy_decode` / :class:`asr.decode.BeamSearchDecoder` produce on the
same frames: the greedy one runs the offline function on the segment's frames, the beam one
drives the same flashlight decoder incrementally (``decode_begin`` / ``decode_step`` /
``decode_end``) and reads its result through the same code.

:class:`SegmentedSearch` ends a segment where the best path has been blank for
``endpoint_silence_s`` after a token (or at the first blank past ``max_segment_s``), reports its
final result and starts the next: so the search's memory (flashlight keeps every frame's beam
until the segment ends) is bounded however long the stream runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from asr.decode import (
    BeamSearchDecoder,
    BestPath,
    Hypothesis,
    WordLookup,
    WordTiming,
    find_word_separator,
)


@dataclass
class EndpointConfig:
    """Where a segment ends (times in seconds of audio).

    :param silence_s: seconds of blank frames on the best path after a token that end the
        segment (0: never on silence).
    :param max_segment_s: a longer segment ends at its next blank frame, a silent one at once;
        at twice this it ends wherever it is. Bounds the search's memory.
    :param reset_encoder: also clear the encoder's attention state at an endpoint, so every
        segment is recognised as if it began the stream.
    """

    silence_s: float = 1.0
    max_segment_s: float = 30.0
    reset_encoder: bool = False

    def __post_init__(self) -> None:
        if self.silence_s < 0 or self.max_segment_s <= 0:
            raise ValueError(
                f"endpoint silence_s must be >= 0 and max_segment_s > 0, got {self.silence_s} "
                f"and {self.max_segment_s}"
            )


@dataclass
class StreamResult:
    """A partial or final hypothesis of one segment of a stream.

    :param kind: ``partial`` (may still change) or ``final``.
    :param segment: 0-based segment number within the stream.
    :param time: seconds of audio the recogniser had read when it produced this result.
    :param start: where the segment starts in the stream (seconds).
    :param words: word timings in stream seconds.
    """

    kind: str
    segment: int
    text: str
    words: list[WordTiming] = field(default_factory=list)
    time: float = 0.0
    start: float = 0.0
    confidence: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "segment": self.segment,
            "time": round(self.time, 3),
            "start": round(self.start, 3),
            "text": self.text,
            "words": [asdict(w) for w in self.words],
            "confidence": round(self.confidence, 4),
        }


class GreedyStream:
    """Best-path search of one segment, extended frame block by frame block."""

    def __init__(
        self, tokenizer: Any, frame_shift_s: float, word_lookup: WordLookup | None = None
    ) -> None:
        self.tokenizer = tokenizer
        self.frame_shift_s = frame_shift_s
        self.word_lookup = word_lookup
        self.separator = find_word_separator(tokenizer)
        self.begin()

    def begin(self) -> None:
        self.path = BestPath()
        self.score = 0.0

    def step(self, log_probs: torch.Tensor) -> None:
        best_lp, best = log_probs.detach().float().max(dim=-1)
        self.path.extend(best.tolist(), best_lp.tolist())
        self.score += float(best_lp.sum())

    def partial(self) -> Hypothesis:
        return self.path.hypothesis(
            self.tokenizer, self.frame_shift_s, self.separator, self.word_lookup, self.score
        )

    def end(self) -> Hypothesis:
        hyp = self.partial()
        self.begin()
        return hyp


class BeamStream:
    """flashlight beam search (lexicon + LM) of one segment, advanced frame block by block."""

    def __init__(self, decoder: BeamSearchDecoder, frame_shift_s: float) -> None:
        self.decoder = decoder
        self.flashlight = decoder.flashlight
        self.frame_shift_s = frame_shift_s
        self.begin()

    def begin(self) -> None:
        self.emissions: list[torch.Tensor] = []
        self.flashlight.decode_begin()

    def step(self, log_probs: torch.Tensor) -> None:
        emission = self.decoder.emissions(log_probs)[0].contiguous()
        self.emissions.append(emission)  # flashlight reads it during decode_step only
        self.flashlight.decode_step(emission)

    def _emission(self) -> torch.Tensor:
        if len(self.emissions) > 1:
            self.emissions = [torch.cat(self.emissions)]
        return self.emissions[0]

    def partial(self) -> Hypothesis:
        if not self.emissions:
            return Hypothesis("", [])
        raw = self.flashlight.decoder.get_best_hypothesis(0)
        best = self._to_ctc_hypothesis(raw)
        emission = self._emission()
        if not self.decoder.has_lexicon:
            return self.decoder.hypothesis_from(best, emission, self.frame_shift_s)
        # Mid-word, the token groups run one word past the lexicon's completed words: time the
        # completed words by their own tokens and leave the unfinished one out.
        words = [w for w in best.words if w]
        by_tokens = self.decoder.hypothesis_from(best, emission, 1.0, lexicon_words=False)
        if len(by_tokens.words) < len(words):
            return self.decoder.hypothesis_from(best, emission, self.frame_shift_s)
        timed = [
            WordTiming(
                w,
                round(t.start * self.frame_shift_s, 3),
                round(t.end * self.frame_shift_s, 3),
                t.confidence,
            )
            for w, t in zip(words, by_tokens.words, strict=False)
        ]
        return Hypothesis(" ".join(words), by_tokens.tokens, timed, float(raw.score))

    def _to_ctc_hypothesis(self, raw: Any) -> Any:
        """flashlight's DecodeResult -> torchaudio's CTCHypothesis (as its decoder builds it)."""
        from torchaudio.models.decoder import CTCHypothesis

        fl = self.flashlight
        idxs = list(raw.tokens)
        tokens, steps = [], []
        for i, t in enumerate(idxs):
            if t != fl.blank and (i == 0 or t != idxs[i - 1]):
                tokens.append(t)
                steps.append(i)
        return CTCHypothesis(
            tokens=torch.LongTensor(tokens),
            words=[fl.word_dict.get_entry(x) for x in raw.words if x >= 0],
            score=raw.score,
            timesteps=torch.IntTensor(steps),
        )

    def end(self) -> Hypothesis:
        self.flashlight.decode_end()
        if self.emissions:
            results = self.flashlight.get_final_hypothesis()
            hyp = self.decoder.nbest_from(results, self._emission(), self.frame_shift_s)[0]
        else:
            hyp = Hypothesis("", [])
        self.begin()
        return hyp


class Histogram:
    """Counts on fixed bins: quantiles of millions of values in constant memory.

    :param edges: increasing bin edges; values outside fall in the first or last bin.
    """

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = edges
        self.counts = np.zeros(len(edges) + 1, dtype=np.int64)
        self.n = 0
        self.max = -math.inf

    @classmethod
    def log(cls, lo: float, hi: float, ratio: float = 1.02) -> Histogram:
        return cls(np.exp(np.arange(math.log(lo), math.log(hi), math.log(ratio))))

    @classmethod
    def linear(cls, lo: float, hi: float, step: float) -> Histogram:
        return cls(np.arange(lo, hi, step))

    def add(self, value: float) -> None:
        self.counts[np.searchsorted(self.edges, value)] += 1
        self.n += 1
        self.max = max(self.max, value)

    def quantile(self, q: float) -> float:
        """The value below which a fraction ``q`` falls, to a bin's width (NaN when empty)."""
        if self.n == 0:
            return math.nan
        i = int(np.searchsorted(np.cumsum(self.counts), q * self.n, side="left"))
        if i == 0:
            return float(self.edges[0])
        if i >= len(self.edges):
            return float(self.max)
        return float(0.5 * (self.edges[i - 1] + self.edges[i]))


class SegmentedSearch:
    """One stream's search: frames in, partial and final :class:`StreamResult` out.

    :param search: a :class:`GreedyStream` or :class:`BeamStream`.
    :param frame_shift_s: seconds per log-prob frame.
    :param partials: report partial results (when the text changes).
    """

    def __init__(
        self,
        search: GreedyStream | BeamStream,
        frame_shift_s: float,
        endpoint: EndpointConfig | None = None,
        partials: bool = True,
        blank: int = 0,
    ) -> None:
        self.search = search
        self.frame_shift_s = frame_shift_s
        self.endpoint = endpoint or EndpointConfig()
        self.partials = partials
        self.blank = blank
        self.silence_frames = round(self.endpoint.silence_s / frame_shift_s)
        self.max_frames = max(1, round(self.endpoint.max_segment_s / frame_shift_s))
        self.word_delay = Histogram.linear(-2.0, 30.0, 0.01)
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self.search.begin()
        self.segment = 0
        self.frame = 0  # frames of the stream seen
        self.segment_start = 0  # its first frame
        self._new_segment_state()
        self.segments_ended = 0
        self.endpoints = 0

    def _new_segment_state(self) -> None:
        self.blanks = 0
        self.has_token = False
        self.last_text = ""
        self.first_seen: dict[tuple[int, str], float] = {}

    def accept(self, log_probs: torch.Tensor, time: float) -> list[StreamResult]:
        """Frames ``(n, V)`` of the stream, read up to ``time`` seconds of audio -> results.

        Returns the final result of every segment that ended in these frames, then the current
        partial when its text changed.
        """
        out: list[StreamResult] = []
        self.endpoints = 0  # segments ended in this call (the encoder may reset its state)
        best = log_probs.argmax(dim=-1).tolist()
        at = 0
        for t, token in enumerate(best):
            self.blanks = self.blanks + 1 if token == self.blank else 0
            self.has_token = self.has_token or token != self.blank
            length = self.frame + t + 1 - self.segment_start
            if self._is_endpoint(token, length):
                self.search.step(log_probs[at : t + 1])
                at = t + 1
                final = self._end_segment(self.frame + at, time)
                self.endpoints += 1
                if final.text:
                    out.append(final)
        if at < len(best):
            self.search.step(log_probs[at:])
        self.frame += len(best)
        if self.partials and self.frame > self.segment_start:
            partial = self._partial(time)
            if partial is not None:
                out.append(partial)
        return out

    def _is_endpoint(self, token: int, length: int) -> bool:
        on_blank = token == self.blank
        if self.has_token and self.silence_frames and self.blanks >= self.silence_frames:
            return True
        if length >= self.max_frames and (on_blank or not self.has_token):
            return True
        return length >= 2 * self.max_frames

    def _partial(self, time: float) -> StreamResult | None:
        hyp = self.search.partial()
        words = self._shifted(hyp.words)
        for i, w in enumerate(words):
            self.first_seen.setdefault((i, w.word), time)
        if hyp.text == self.last_text:
            return None
        self.last_text = hyp.text
        return StreamResult(
            "partial", self.segment, hyp.text, words, time, self._start(), hyp.confidence
        )

    def _start(self) -> float:
        return round(self.segment_start * self.frame_shift_s, 3)

    def _shifted(self, words: list[WordTiming]) -> list[WordTiming]:
        offset = self.segment_start * self.frame_shift_s
        if not offset:
            return list(words)
        return [
            WordTiming(w.word, round(w.start + offset, 3), round(w.end + offset, 3), w.confidence)
            for w in words
        ]

    def _end_segment(self, end_frame: int, time: float) -> StreamResult:
        hyp = self.search.end()
        words = self._shifted(hyp.words)
        for i, w in enumerate(words):
            seen = self.first_seen.get((i, w.word), time)
            self.word_delay.add(seen - w.end)
        result = StreamResult("final", self.segment, hyp.text, words, time, self._start())
        result.confidence = hyp.confidence
        if hyp.text:
            self.segment += 1
        self.segments_ended += 1
        self.segment_start = end_frame
        self._new_segment_state()
        return result

    def finalize(self, log_probs: torch.Tensor, time: float) -> StreamResult:
        """The stream's last frames ``(n, V)`` (no endpoint inside them) -> the final result
        of its last segment; the text may be empty."""
        if log_probs.size(0):
            self.search.step(log_probs)
            self.frame += log_probs.size(0)
        return self._end_segment(self.frame, time)
