"""Decoding with the project's real tokenizers (asr.data.tokenizer), not the test fakes."""

from __future__ import annotations

import random

import pytest
import torch

from asr.data import tokenizer as tokenizers
from asr.decode import BeamSearchDecoder, WordLookup, greedy_decode
from asr.lm import NgramConfig, build_kn_lm, write_lexicon

from .fakes import peaked_log_probs

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]


def _texts(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choices(WORDS, k=rng.randint(2, 6))) for _ in range(n)]


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_greedy_beam_and_lexicon_lm_agree(tmp_path, kind, rng):
    corpus = _texts(rng, 200)
    options = {"vocab_size": 40} if kind == "bpe" else {}
    tok = tokenizers.train_tokenizer(kind, corpus, **options)
    text = rng.choice(corpus)
    lp = peaked_log_probs(tok.encode(text), tok.vocab_size, frames_per_token=rng.randint(1, 3))
    n = torch.tensor([lp.shape[0]])
    greedy = greedy_decode(lp, n, tok, 0.04)[0]
    assert greedy.text == text
    assert [w.word for w in greedy.words] == text.split()
    assert BeamSearchDecoder(tok, beam_size=10)(lp, n, 0.04)[0][0].text == text
    build_kn_lm(corpus, NgramConfig(order=3)).write_arpa(tmp_path / "lm.arpa")
    written, oov = write_lexicon(tok, WORDS, tmp_path / "lexicon.txt")
    assert written == len(WORDS) and not oov
    dec = BeamSearchDecoder(tok, tmp_path / "lexicon.txt", tmp_path / "lm.arpa", lm_weight=0.5)
    best = dec(lp, n, 0.04)[0][0]
    assert best.text == text
    assert [w.start for w in best.words] == pytest.approx([w.start for w in greedy.words])


def test_phoneme_lexicon_lm_gives_words(tmp_path, rng):
    words = ["the", "cat", "sat", "on", "mat", "dog", "ran", "home"]
    corpus = [" ".join(rng.choices(words, k=rng.randint(2, 6))) for _ in range(100)]
    tok = tokenizers.train_tokenizer("phoneme", corpus)
    text = rng.choice(corpus)
    lp = peaked_log_probs(tok.encode(text), tok.vocab_size, frames_per_token=2)
    n = torch.tensor([lp.shape[0]])
    build_kn_lm(corpus, NgramConfig(order=2)).write_arpa(tmp_path / "lm.arpa")
    write_lexicon(tok, words, tmp_path / "lexicon.txt")
    assert all(ln.endswith(" |") for ln in (tmp_path / "lexicon.txt").read_text().splitlines())
    dec = BeamSearchDecoder(tok, tmp_path / "lexicon.txt", tmp_path / "lm.arpa", lm_weight=0.5)
    best = dec(lp, n, 0.04)[0][0]
    assert best.text == text
    assert len(best.words) == len(text.split())


def test_phoneme_greedy_with_word_lookup(tmp_path, rng):
    """Greedy phones -> words through the lexicon; the LM's unigrams pick among homophones."""
    words = ["to", "two", "too", "cat", "sat", "home", "dog"]
    # "to" is by far the most frequent of its homophones (T UW)
    corpus = ["to " + " ".join(rng.choices(words[3:], k=rng.randint(1, 4))) for _ in range(60)]
    corpus += ["two cat", "too dog"]
    tok = tokenizers.train_tokenizer("phoneme", corpus)
    build_kn_lm(corpus, NgramConfig(order=2)).write_arpa(tmp_path / "lm.arpa")
    write_lexicon(tok, words, tmp_path / "lexicon.txt")
    lookup = WordLookup.from_lexicon(tmp_path / "lexicon.txt", tmp_path / "lm.arpa")
    text = " ".join(rng.choices(["two", "cat", "sat", "home", "dog"], k=5))
    lp = peaked_log_probs(tok.encode(text), tok.vocab_size, frames_per_token=2)
    n = torch.tensor([lp.shape[0]])
    plain = greedy_decode(lp, n, tok, 0.04)[0]
    assert "|" not in plain.text and plain.text.split()[0].isupper()  # phones, not words
    hyp = greedy_decode(lp, n, tok, 0.04, word_lookup=lookup)[0]
    assert hyp.text == text.replace("two", "to")
    assert [w.word for w in hyp.words] == hyp.text.split()
    # a missed word boundary is split back into lexicon words, with their own times
    merged = [tok.tokens.index(p) for p in "K AE T S AE T | D AO G".split()]
    lp = peaked_log_probs(merged, tok.vocab_size, frames_per_token=2)
    hyp = greedy_decode(lp, torch.tensor([lp.shape[0]]), tok, 0.04, word_lookup=lookup)[0]
    assert hyp.text == "cat sat dog"
    assert hyp.words[0].end <= hyp.words[1].start < hyp.words[1].end <= hyp.words[2].start
    assert lookup.segment(["T", "UW", "T", "UW"]) == [("to", 2), ("to", 2)]
    # a spelling in no lexicon entry stays visible as one "word" of joined phones
    assert lookup(["K", "AE", "T", "S"]) is None and lookup.segment(["K", "AE", "T", "S"]) is None
    cats = peaked_log_probs(tok.encode("cat") + tok.encode("cats")[-1:], tok.vocab_size, 2)
    assert (
        greedy_decode(cats, torch.tensor([cats.shape[0]]), tok, 0.04, word_lookup=lookup)[0].text
        == "K_AE_T_S"
    )
    assert WordLookup.from_lexicon(tmp_path / "lexicon.txt")(["T", "UW", "|"]) in (
        "to",
        "two",
        "too",
    )


def test_phoneme_lexicon_lists_every_pronunciation(tmp_path):
    """``read`` is R IY D (first in CMUdict) and R EH D; audio of either decodes to the word."""
    corpus = ["i read it", "you read that", "we sat"]
    tok = tokenizers.train_tokenizer("phoneme", corpus)
    words = ["i", "read", "it", "you", "that", "we", "sat"]
    written, oov = write_lexicon(tok, words, tmp_path / "lexicon.txt")
    assert written == len(words) and not oov
    lines = (tmp_path / "lexicon.txt").read_text().splitlines()
    reads = sorted(ln.split("\t")[1] for ln in lines if ln.startswith("read\t"))
    assert reads == ["R EH D |", "R IY D |"]
    build_kn_lm(corpus, NgramConfig(order=2)).write_arpa(tmp_path / "lm.arpa")
    dec = BeamSearchDecoder(tok, tmp_path / "lexicon.txt", tmp_path / "lm.arpa", lm_weight=0.5)
    spoken = [tok.tokens.index(p) for p in "Y UW | R EH D | DH AE T".split()]
    lp = peaked_log_probs(spoken, tok.vocab_size, frames_per_token=2)
    assert dec(lp, torch.tensor([lp.shape[0]]), 0.04)[0][0].text == "you read that"
    lookup = WordLookup.from_lexicon(tmp_path / "lexicon.txt", tmp_path / "lm.arpa")
    assert lookup(["R", "EH", "D"]) == lookup(["R", "IY", "D"]) == "read"


def test_greedy_names_words_outside_the_lexicon_from_cmudict(tmp_path):
    """A word the LM never saw ("dogs") is named from CMUdict, not left as D_AO_G_Z; lexicon
    words keep priority over CMUdict homophones, and a true non-word still shows as phones."""
    corpus = ["the cat sat", "a dog sat"]
    tok = tokenizers.train_tokenizer("phoneme", corpus)
    write_lexicon(tok, ["the", "cat", "sat", "a", "dog"], tmp_path / "lexicon.txt")
    build_kn_lm(corpus, NgramConfig(order=2)).write_arpa(tmp_path / "lm.arpa")
    base = WordLookup.from_lexicon(tmp_path / "lexicon.txt", tmp_path / "lm.arpa")
    lookup = base.with_fallback(tok.dictionary())
    assert base(["D", "AO", "G", "Z"]) is None and lookup(["D", "AO", "G", "Z"]) == "dogs"
    assert lookup(["K", "AE", "T"]) == "cat"  # not "kat", also in CMUdict
    spoken = [tok.tokens.index(p) for p in "DH AH | D AO G Z | S AE T | Z Z K".split()]
    lp = peaked_log_probs(spoken, tok.vocab_size, frames_per_token=2)
    hyp = greedy_decode(lp, torch.tensor([lp.shape[0]]), tok, 0.04, word_lookup=lookup)[0]
    assert hyp.text == "the dogs sat Z_Z_K"
    assert list(tokenizers.train_tokenizer("char", corpus).dictionary()) == []


def test_open_vocabulary_lexicon_lets_beam_search_say_unseen_words(tmp_path):
    """With the CMUdict words in the lexicon, beam search outputs "dogs", a word the LM text
    never had (scored with the LM's <unk>); the closed lexicon can only say "dog"."""
    corpus = ["the cat sat", "a dog sat", "the dog ran", "a cat ran"]
    tok = tokenizers.train_tokenizer("phoneme", corpus)
    words = ["the", "cat", "sat", "a", "dog", "ran"]
    build_kn_lm(corpus, NgramConfig(order=2)).write_arpa(tmp_path / "lm.arpa")
    closed, _ = write_lexicon(tok, words, tmp_path / "closed.txt")
    opened, oov = write_lexicon(tok, words, tmp_path / "open.txt", with_dictionary=True)
    assert closed == len(words) and opened > 100_000 and not oov
    lines = (tmp_path / "open.txt").read_text().splitlines()
    assert [ln.split("\t")[0] for ln in lines[:2]] == ["the", "the"]  # LM words come first
    dogs = [ln.split("\t")[1] for ln in lines if ln.startswith("dogs\t")]
    assert "D AO G Z |" in dogs and len(dogs) == len(set(dogs))  # each pronunciation once
    spoken = [tok.tokens.index(p) for p in "DH AH | D AO G Z | S AE T".split()]
    lp = peaked_log_probs(spoken, tok.vocab_size, frames_per_token=2)
    n = torch.tensor([lp.shape[0]])
    for lexicon, expected in (("closed.txt", "the dog sat"), ("open.txt", "the dogs sat")):
        dec = BeamSearchDecoder(tok, tmp_path / lexicon, tmp_path / "lm.arpa", lm_weight=0.5)
        assert dec(lp, n, 0.04)[0][0].text == expected
