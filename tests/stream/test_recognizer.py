"""Recognizer: streamed results equal offline decoding of the same causal model; N streams
batched equal N single streams; the carried state does not grow with the stream."""

import random

import pytest
import torch

from asr.decode import BeamSearchDecoder, greedy_decode
from asr.lm import NgramConfig, build_kn_lm, write_lexicon
from asr.models.streaming import NotStreamableError
from asr.package import load_package
from asr.stream import Recognizer, StreamBatch

from .helpers import WORDS, make_package, speechy

NO_ENDPOINTS = dict(silence_s=0.0, max_segment_s=1e6)


def _sizes(kind: str):
    return {
        "10 ms": lambda: 160,
        "160 ms": lambda: 2560,
        "random": lambda: random.randint(1, 7000),
    }[kind]


def _stream(rec: Recognizer, wav: torch.Tensor, sizes) -> tuple[list, object]:
    results, at = [], 0
    while at < wav.numel():
        n = sizes()
        results += rec.accept_waveform(wav[at : at + n])
        at += n
    return results, rec.finalize()


def _same_words(got: list, want: list) -> bool:
    """Equal words and times; confidences equal to float rounding of the log-probs."""
    return [(w.word, w.start, w.end) for w in got] == [
        (w.word, w.start, w.end) for w in want
    ] and all(abs(a.confidence - b.confidence) < 1e-4 for a, b in zip(got, want, strict=True))


def _offline(pkg, wav: torch.Tensor) -> torch.Tensor:
    lp, n = pkg.log_probs(pkg.featurize(wav, 16000))
    return lp[0, : int(n[0])]


@pytest.mark.parametrize("chunk_ms", [0, 160])
@pytest.mark.parametrize("chunking", ["10 ms", "160 ms", "random"])
def test_streamed_greedy_equals_offline_greedy(tmp_path, chunk_ms, chunking) -> None:
    path, _ = make_package(tmp_path / "m.safetensors", chunk_ms=chunk_ms)
    pkg = load_package(path)
    for _ in range(5):  # the random test model spells words on most inputs, not all
        wav = speechy(random.uniform(3.0, 6.0))
        lp = _offline(pkg, wav)
        ref = greedy_decode(lp, [lp.size(0)], pkg.tokenizer, pkg.frame_shift_s)[0]
        if len(ref.words) >= 2:
            break
    assert len(ref.words) >= 2
    rec = Recognizer(pkg, **NO_ENDPOINTS)
    results, final = _stream(rec, wav, _sizes(chunking))
    assert final.text == ref.text and _same_words(final.words, ref.words)
    assert final.kind == "final" and all(r.kind == "partial" for r in results)
    rec.reset()  # a second stream on the same recogniser gives the same
    assert _same_words(_stream(rec, wav, _sizes("160 ms"))[1].words, ref.words)


def test_streamed_beam_with_lexicon_and_lm_equals_offline_beam(tmp_path) -> None:
    path, corpus = make_package(tmp_path / "m.safetensors")
    pkg = load_package(path)
    build_kn_lm(corpus, NgramConfig(order=3)).write_arpa(tmp_path / "lm.arpa")
    write_lexicon(pkg.tokenizer, WORDS, tmp_path / "lexicon.txt")
    beam = dict(lexicon=str(tmp_path / "lexicon.txt"), lm=str(tmp_path / "lm.arpa"))
    offline = BeamSearchDecoder(pkg.tokenizer, beam_size=10, lm_weight=1.0, **beam)
    for _ in range(5):  # the random model may end its only word unfinished: then no word at all
        wav = speechy(4.0)
        lp = _offline(pkg, wav)
        ref = offline(lp[None], [lp.size(0)], pkg.frame_shift_s)[0][0]
        if ref.text:
            break
    assert ref.text
    rec = Recognizer(pkg, search="beam", beam_size=10, lm_weight=1.0, **beam, **NO_ENDPOINTS)
    _, final = _stream(rec, wav, _sizes("random"))
    assert final.text == ref.text and _same_words(final.words, ref.words)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_batched_streams_equal_single_streams(tmp_path, search) -> None:
    path, corpus = make_package(tmp_path / "m.safetensors", chunk_ms=80)
    pkg = load_package(path)
    options = dict(NO_ENDPOINTS, search=search)
    if search == "beam":  # the streams' decoders share one trie and LM, not their state
        build_kn_lm(corpus, NgramConfig(order=3)).write_arpa(tmp_path / "lm.arpa")
        write_lexicon(pkg.tokenizer, WORDS, tmp_path / "lexicon.txt")
        options.update(lexicon=str(tmp_path / "lexicon.txt"), lm=str(tmp_path / "lm.arpa"))
    waves = {k: speechy(random.uniform(2.0, 4.0)) for k in "abc"}
    single = {}
    for k, wav in waves.items():
        rec = Recognizer(pkg, **options)
        single[k] = _stream(rec, wav, _sizes("160 ms"))[1]
    batch = StreamBatch(pkg, **options)
    start = {"a": 0, "b": 0, "c": 3}  # c joins three chunks late: states out of step
    block, step = 2560, 0
    pos = dict.fromkeys(waves, 0)
    finals = {}
    while len(finals) < len(waves):
        ready = {}
        for k, wav in waves.items():
            if k in finals or step < start[k]:
                continue
            if k not in batch.streams:
                batch.open(k)
            if pos[k] >= wav.numel():
                finals[k] = batch.finalize(k)
                continue
            ready[k] = wav[pos[k] : pos[k] + block]
            pos[k] += block
        batch.accept(ready)
        step += 1
    assert any(s.text for s in single.values())
    for k in waves:
        assert finals[k].text == single[k].text, k
        assert _same_words(finals[k].words, single[k].words), k


def test_state_and_search_memory_do_not_grow_with_the_stream(tmp_path) -> None:
    path, _ = make_package(tmp_path / "m.safetensors", chunk_ms=160)
    rec = Recognizer(path, max_segment_s=2.0)
    stream = rec.batch.streams[Recognizer.KEY]
    sizes = []
    for seconds in (2, 30):
        while rec.stats.audio_s < seconds:
            rec.accept_waveform(speechy(0.16))
        sizes.append(
            (stream.state.nbytes(), stream.fbank.pending.numel(), stream.search.search.path.frames)
        )
    assert sizes[0][0] == sizes[1][0]  # encoder state: the same bytes after 2 s and 30 s
    assert sizes[1][1] < 400 and sizes[1][2] <= 2 * 2.0 / 0.04


def test_bidirectional_model_is_refused(tmp_path) -> None:
    path, _ = make_package(tmp_path / "m.safetensors", streaming=False)
    with pytest.raises(NotStreamableError, match="demo_streaming.yaml"):
        Recognizer(path)


def test_nan_samples_are_refused_not_carried_in_the_state(tmp_path) -> None:
    path, _ = make_package(tmp_path / "m.safetensors")
    rec = Recognizer(path)
    wav = speechy(0.5)
    wav[100] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        rec.accept_waveform(wav)
