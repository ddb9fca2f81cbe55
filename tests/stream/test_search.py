"""Incremental search: fed in any chunking it returns what the offline search returns; endpoints
cut segments at pauses with stream times."""

import random

import numpy as np
import pytest
import torch

from asr.decode import BeamSearchDecoder, greedy_decode
from asr.lm import NgramConfig, build_kn_lm, write_lexicon
from asr.stream.search import (
    BeamStream,
    EndpointConfig,
    GreedyStream,
    Histogram,
    SegmentedSearch,
)

from .helpers import WORDS, peaked_log_probs

tokenizers = pytest.importorskip("asr.data.tokenizer")
SHIFT = 0.04
NO_ENDPOINTS = EndpointConfig(silence_s=0.0, max_segment_s=1e6)


def _tok_and_text():
    rng = random.Random()
    corpus = [" ".join(rng.choices(WORDS, k=rng.randint(2, 6))) for _ in range(100)]
    return tokenizers.train_tokenizer("char", corpus), corpus, rng.choice(corpus)


def _feed(seg: SegmentedSearch, lp: torch.Tensor, sizes: list[int]):
    results, at = [], 0
    for n in sizes:
        results += seg.accept(lp[at : at + n], (at + n) * SHIFT)
        at += n
    return results, seg.finalize(lp[at:], lp.size(0) * SHIFT)


def _chunkings(n: int) -> list[list[int]]:
    rand = []
    while sum(rand) < n:
        rand.append(random.randint(1, 9))
    return [[1] * n, [4] * (n // 4), rand]


def test_greedy_stream_equals_offline_greedy() -> None:
    tok, _, text = _tok_and_text()
    lp = peaked_log_probs(tok.encode(text), tok.vocab_size, frames_per_token=random.randint(1, 3))
    ref = greedy_decode(lp, [lp.size(0)], tok, SHIFT)[0]
    for sizes in _chunkings(lp.size(0)):
        seg = SegmentedSearch(GreedyStream(tok, SHIFT), SHIFT, NO_ENDPOINTS)
        results, final = _feed(seg, lp, sizes)
        assert final.text == ref.text == text
        assert final.words == ref.words
        partials = [r for r in results if r.kind == "partial"]
        assert partials and all(text.startswith(p.text) for p in partials)


def test_beam_stream_equals_offline_beam_with_lexicon_and_lm(tmp_path) -> None:
    tok, corpus, text = _tok_and_text()
    build_kn_lm(corpus, NgramConfig(order=3)).write_arpa(tmp_path / "lm.arpa")
    write_lexicon(tok, WORDS, tmp_path / "lexicon.txt")
    noisy = peaked_log_probs(tok.encode(text), tok.vocab_size, peak=0.6)
    options = dict(lm_weight=1.0, beam_size=8, nbest=1)
    offline = BeamSearchDecoder(tok, tmp_path / "lexicon.txt", tmp_path / "lm.arpa", **options)
    ref = offline(noisy, [noisy.size(0)], SHIFT)[0][0]
    for sizes in _chunkings(noisy.size(0)):
        dec = BeamSearchDecoder(tok, tmp_path / "lexicon.txt", tmp_path / "lm.arpa", **options)
        seg = SegmentedSearch(BeamStream(dec, SHIFT), SHIFT, NO_ENDPOINTS)
        results, final = _feed(seg, noisy, sizes)
        assert (final.text, final.words) == (ref.text, ref.words)
        for p in (r for r in results if r.kind == "partial"):
            assert set(p.text.split()) <= set(WORDS)  # only completed lexicon words


def test_endpoints_cut_segments_at_pauses_with_stream_times() -> None:
    tok, _, _ = _tok_and_text()
    texts = ["hello world", "the cat sat", "on the mat"]
    pause = torch.full((30, tok.vocab_size), -20.0)
    pause[:, 0] = 0.0  # 30 blank frames = 1.2 s
    parts, expected, at = [], [], 0
    for t in texts:
        part = peaked_log_probs(tok.encode(t), tok.vocab_size, frames_per_token=2)
        for w in greedy_decode(part, [part.size(0)], tok, SHIFT)[0].words:
            offset = at * SHIFT  # the same word, moved to where its part sits in the stream
            expected.append((w.word, round(w.start + offset, 3), round(w.end + offset, 3)))
        parts += [part, pause]
        at += part.size(0) + pause.size(0)
    lp = torch.cat(parts)
    seg = SegmentedSearch(GreedyStream(tok, SHIFT), SHIFT, EndpointConfig(silence_s=0.8))
    results, last = _feed(seg, lp, _chunkings(lp.size(0))[2])
    finals = [r for r in results if r.kind == "final"]
    assert [f.text for f in finals] == texts and not last.text
    assert [f.segment for f in finals] == [0, 1, 2]
    assert [(w.word, w.start, w.end) for f in finals for w in f.words] == expected
    assert finals[1].start > finals[0].words[-1].end


def test_silence_and_endless_speech_still_end_segments() -> None:
    tok, _, _ = _tok_and_text()
    vocab = tok.vocab_size
    silence = torch.full((500, vocab), -20.0)
    silence[:, 0] = 0.0
    seg = SegmentedSearch(GreedyStream(tok, SHIFT), SHIFT, EndpointConfig(max_segment_s=2.0))
    seg.accept(silence, 20.0)
    assert seg.segments_ended == 500 // 50 and seg.search.path.frames <= 50
    babble = torch.full((300, vocab), -20.0)
    babble[torch.arange(300), 2 + torch.arange(300) % (vocab - 2)] = 0.0  # never a blank
    seg.accept(babble, 32.0)
    assert seg.segments_ended == 10 + 300 // 100  # cut at twice max_segment_s


def test_histogram_quantiles() -> None:
    h = Histogram.log(0.01, 1e4)
    values = np.random.default_rng().lognormal(1.0, 1.0, 5000)
    for v in values:
        h.add(float(v))
    for q in (0.5, 0.95):
        assert abs(h.quantile(q) / np.quantile(values, q) - 1) < 0.03
    assert h.max == values.max()
