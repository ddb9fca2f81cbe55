"""Greedy and beam search on constructed log-probs (no model needed)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from asr.decode import BeamSearchDecoder, Hypothesis, break_score_ties, greedy_decode
from asr.lm import NgramConfig, build_kn_lm, write_lexicon

from .fakes import CharTokenizer, PieceTokenizer, peaked_log_probs

SHIFT = 0.04


def _random_words(
    rng: random.Random, n: int, letters: str = "abcdefghijklmnopqrstuvwxyz"
) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(2, 6))))
    return sorted(words)


def test_greedy_and_beam_agree_on_peaked_outputs(rng):
    tok = CharTokenizer()
    vocab = _random_words(rng, 20)
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 6))) for _ in range(4)]
    lps = [peaked_log_probs(tok.encode(t), tok.vocab_size, rng.randint(1, 4)) for t in texts]
    lengths = torch.tensor([lp.shape[0] for lp in lps])
    batch = torch.nn.utils.rnn.pad_sequence(lps, batch_first=True)
    greedy = greedy_decode(batch, lengths, tok, SHIFT)
    beam = BeamSearchDecoder(tok, beam_size=8)(batch, lengths, SHIFT)
    for text, g, b in zip(texts, greedy, beam, strict=True):
        assert g.text == text
        assert b[0].text == text
        assert [w.word for w in g.words] == text.split()
        assert [w.word for w in b[0].words] == text.split()
        for gw, bw in zip(g.words, b[0].words, strict=True):  # same times from both searches
            assert (gw.start, gw.end) == pytest.approx((bw.start, bw.end))
        for words in (g.words, b[0].words):
            starts = [w.start for w in words]
            assert starts == sorted(starts)
            assert all(0 <= w.start < w.end <= lengths.max().item() * SHIFT + 1e-6 for w in words)
            assert all(0 < w.confidence <= 1 for w in words)


def test_greedy_word_times_match_constructed_frames():
    tok = CharTokenizer()
    fpt = random.randint(1, 5)
    lp = peaked_log_probs(tok.encode("ab cd"), tok.vocab_size, frames_per_token=fpt)
    (h,) = greedy_decode(lp, [lp.shape[0]], tok, SHIFT)
    # path: blank, a*fpt, blank, b*fpt, blank, |*fpt, blank, c*fpt, ...
    step = fpt + 1
    assert h.words[0].start == pytest.approx(1 * SHIFT)
    assert h.words[0].end == pytest.approx((1 + step + fpt) * SHIFT)
    assert h.words[1].start == pytest.approx((1 + 3 * step) * SHIFT)


def test_beam_lexicon_free_sentencepiece():
    tok = PieceTokenizer(["▁the", "▁c", "at", "▁s", "a", "▁"])
    text = random.choice(["the cat", "cat sat", "the sat cat"]).replace("sat", "sa")
    lp = peaked_log_probs(tok.encode(text), len(tok.tokens))
    g = greedy_decode(lp, [lp.shape[0]], tok, SHIFT)[0]
    b = BeamSearchDecoder(tok, beam_size=5, nbest=3)(lp, [lp.shape[0]], SHIFT)[0]
    assert g.text == b[0].text == text
    assert [w.word for w in b[0].words] == text.split()
    assert len(b) >= 2 and b[0].score >= b[1].score  # merged duplicates, still an n-best list
    assert len({h.text for h in b}) == len(b)


def test_lexicon_and_lm_fix_a_greedy_error(tmp_path, rng, np_rng):
    """Greedy reads a non-word where one letter is ambiguous; lexicon + LM pick the real word."""
    tok = CharTokenizer()
    vocab = _random_words(rng, 30)
    sentence = rng.sample(vocab, 3)
    target = sentence[1]
    pos = rng.randrange(len(target))
    wrong = rng.choice([c for c in "abcdefghijklmnopqrstuvwxyz" if c != target[pos]])
    misspelt = target[:pos] + wrong + target[pos + 1 :]
    if misspelt in vocab:
        pytest.skip("drew a real word as the error; rerun")
    text = " ".join(sentence)
    lp = peaked_log_probs(tok.encode(text), tok.vocab_size, 3, rng=np_rng)
    # make the wrong letter win narrowly in the frames of target[pos]
    start = 1 + 4 * (len(sentence[0]) + 1 + pos)
    lp[start : start + 3] = -6.0
    lp[start : start + 3, tok.tokens.index(wrong)] = np.log(0.55)
    lp[start : start + 3, tok.tokens.index(target[pos])] = np.log(0.43)
    lp = torch.log_softmax(lp, dim=-1)
    g = greedy_decode(lp, [lp.shape[0]], tok, SHIFT)[0]
    assert g.text.split()[1] == misspelt

    corpus = [" ".join(rng.choice(vocab) for _ in range(rng.randint(2, 7))) for _ in range(100)]
    corpus += [text] * 5
    lm = build_kn_lm(corpus, NgramConfig(order=3))
    lm.write_arpa(tmp_path / "lm.arpa")
    write_lexicon(tok, vocab, tmp_path / "lexicon.txt")
    dec = BeamSearchDecoder(
        tok, tmp_path / "lexicon.txt", tmp_path / "lm.arpa", lm_weight=1.0, beam_size=20
    )
    best = dec(lp, [lp.shape[0]], SHIFT)[0][0]
    assert best.text == text
    assert [w.word for w in best.words] == sentence


def test_lm_without_separator_or_lexicon_is_refused(tmp_path):
    tok = PieceTokenizer(["▁a", "b"])
    (tmp_path / "lm.arpa").write_text("")
    with pytest.raises(ValueError, match="lexicon"):
        BeamSearchDecoder(tok, lm=tmp_path / "lm.arpa")


def test_sentencepiece_lexicon_and_lm(tmp_path, rng):
    """Without a separator token, lexicon search ends words on blank frames: no doubled
    words from CTC repeats, the lexicon repairs a misread piece, times match greedy."""
    tok = PieceTokenizer(["▁the", "▁c", "at", "▁s", "a", "t", "o", "▁d", "og"])
    vocab = ["the", "cat", "sat", "dog"]
    sentence = [rng.choice(vocab) for _ in range(rng.randint(3, 6))]
    sentence[rng.randrange(len(sentence))] = "cat"
    text = " ".join(sentence)
    ids = tok.encode(text)
    lp = peaked_log_probs(ids, len(tok.tokens), frames_per_token=rng.randint(2, 4))
    greedy_ok = greedy_decode(lp, [lp.shape[0]], tok, SHIFT)[0]
    # misread the first "at" piece as "a": greedy spells a non-word ("ca" or "sa")
    at = tok.tokens.index("at")
    frames = (lp.argmax(-1) == at).nonzero().flatten()
    first = frames[frames < frames[0] + 5]
    lp[first, tok.tokens.index("a")] = np.log(0.5)
    lp[first, at] = np.log(0.45)
    misread = greedy_decode(lp, [lp.shape[0]], tok, SHIFT)[0].text.split()
    assert any(w not in vocab for w in misread)
    build_kn_lm([text] * 3 + ["the dog sat", "cat"], NgramConfig(order=2)).write_arpa(
        tmp_path / "lm.arpa"
    )
    write_lexicon(tok, vocab, tmp_path / "lex.txt")
    dec = BeamSearchDecoder(tok, tmp_path / "lex.txt", tmp_path / "lm.arpa", lm_weight=0.5)
    best = dec(lp, [lp.shape[0]], SHIFT)[0][0]
    assert best.text == text
    assert [w.start for w in best.words] == pytest.approx([w.start for w in greedy_ok.words])
    for b, g in zip(best.words, greedy_ok.words, strict=True):
        # a misread final piece loses its last frames (they are no longer its argmax)
        assert g.end - 4 * SHIFT - 1e-6 <= b.end <= g.end + 1e-6


def test_lexicon_free_char_search_with_word_lm(tmp_path, rng):
    tok = CharTokenizer()
    vocab = _random_words(rng, 10)
    corpus = [" ".join(rng.choices(vocab, k=rng.randint(2, 5))) for _ in range(50)]
    text = rng.choice(corpus)
    build_kn_lm(corpus, NgramConfig(order=3)).write_arpa(tmp_path / "lm.arpa")
    lp = peaked_log_probs(tok.encode(text), tok.vocab_size, 2)
    dec = BeamSearchDecoder(tok, lm=tmp_path / "lm.arpa", lm_weight=0.5, beam_size=10)
    best = dec(lp, [lp.shape[0]], SHIFT)[0][0]
    assert best.text == text
    assert [w.word for w in best.words] == text.split()


def test_break_score_ties_orders_equal_scores_by_text(rng):
    hyps = [Hypothesis(t, [], score=s) for t, s in [("b", -1.0), ("a", -1.0), ("c", -0.5)]]
    for _ in range(5):
        rng.shuffle(hyps)
        assert [h.text for h in break_score_ties(hyps)] == ["c", "a", "b"]


def test_homophones_decode_the_same_every_time(tmp_path, rng, np_rng):
    """Words spelled with one token sequence tie exactly, and flashlight's order of ties changes
    between runs: the decoder must order them by text, also at the n-best cut."""
    tok = CharTokenizer()
    heard = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(4))
    labels = _random_words(rng, 3, letters="abcdefghijklmnopqrstuvwxy")  # sorted; never "zz"
    lp = peaked_log_probs(tok.encode(heard), tok.vocab_size, 3, rng=np_rng)
    for _ in range(5):
        order = rng.sample(labels, len(labels))
        lines = [f"{w}\t{' '.join(heard)} |" for w in order] + ["zz\tz z |"]
        (tmp_path / "lexicon.txt").write_text("\n".join(lines) + "\n")
        two = BeamSearchDecoder(tok, tmp_path / "lexicon.txt", beam_size=20, nbest=2)
        nbest = two(lp, [lp.shape[0]], SHIFT)[0]
        assert [h.text for h in nbest] == labels[:2], order
        assert nbest[0].score == nbest[1].score
        one = BeamSearchDecoder(tok, tmp_path / "lexicon.txt", beam_size=20)
        assert one(lp, [lp.shape[0]], SHIFT)[0][0].text == labels[0], order


def test_nbest_below_one_is_refused():
    with pytest.raises(ValueError, match="nbest"):
        BeamSearchDecoder(CharTokenizer(), nbest=0)


@pytest.mark.parametrize("heard", ["w", "wo", "hello w"])
def test_lexicon_search_outputs_lexicon_words_only(tmp_path, heard):
    """Audio that ends inside a word: flashlight's best path may end in that word's first
    tokens, which spell no word of the lexicon and must not come out as one."""
    tok = CharTokenizer()
    vocab = ["hello", "world"]
    build_kn_lm(["hello world", "world hello", "hello"], NgramConfig(order=2)).write_arpa(
        tmp_path / "lm.arpa"
    )
    write_lexicon(tok, vocab, tmp_path / "lex.txt")
    dec = BeamSearchDecoder(tok, tmp_path / "lex.txt", tmp_path / "lm.arpa", nbest=3)
    lp = peaked_log_probs(tok.encode(heard), tok.vocab_size, 3)
    for hyp in dec(lp, [lp.shape[0]], SHIFT)[0]:
        assert all(w in vocab for w in hyp.text.split()), hyp.text
        assert [w.word for w in hyp.words] == hyp.text.split()
