"""Tokenizers: round trips, blank at 0, serialisation, phoneme OOV policies, CLI."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pytest

from asr.data.cli import main
from asr.data.manifest import read_manifest
from asr.data.tokenizer import (
    BLANK,
    PhonemeTokenizer,
    load_tokenizer,
    tokenizer_from_dict,
    train_tokenizer,
)
from asr.text import normalize_text

WORDS = (
    "speech recognition with linear attention is fast and the model's output "
    "reads quite well although nobody knows why"
).split()


def sentences(n: int) -> list[str]:
    out = []
    for _ in range(n):
        ws = random.choices(WORDS, k=random.randint(3, 10))
        out.append(" ".join(w.capitalize() if random.random() < 0.3 else w for w in ws) + "!")
    return out


@pytest.mark.parametrize("kind,vocab", [("char", None), ("bpe", 60), ("unigram", 50)])
def test_round_trip_and_serialisation(kind: str, vocab: int | None, tmp_path: Path) -> None:
    train = sentences(200)
    tok = train_tokenizer(kind, train, vocab)
    assert tok.tokens[0] == BLANK and tok.kind == kind
    if vocab:
        assert tok.vocab_size <= vocab
    for text in sentences(20):
        ids = tok.encode(text)
        assert 0 not in ids and all(0 < i < tok.vocab_size for i in ids)
        assert tok.decode(ids) == normalize_text(text)
    tok.save(tmp_path / "tok.json")
    json.loads((tmp_path / "tok.json").read_text())  # one plain JSON file
    back = load_tokenizer(tmp_path / "tok.json")
    assert back.tokens == tok.tokens
    probe = sentences(5)
    assert [back.encode(t) for t in probe] == [tok.encode(t) for t in probe]
    clone = pickle.loads(pickle.dumps(tok))  # DataLoader workers may pickle it
    assert clone.encode(probe[0]) == tok.encode(probe[0])


def test_decode_skips_blanks() -> None:
    tok = train_tokenizer("char", ["abc def"])
    ids = tok.encode("abc def")
    with_blanks = [x for i in ids for x in (0, i)] + [0]
    assert tok.decode(with_blanks) == "abc def"


def test_word_to_tokens() -> None:
    char = train_tokenizer("char", ["hello world"])
    assert char.word_to_tokens("hello") == list("hello")
    assert char.word_to_tokens("hexq") is None
    bpe = train_tokenizer("bpe", sentences(200), 60)
    pieces = bpe.word_to_tokens("speech")
    assert pieces and pieces[0].startswith("▁") and all(p in bpe.tokens for p in pieces)
    assert "".join(pieces).lstrip("▁") == "speech"


def test_phoneme_encoding_from_cmudict() -> None:
    tok = PhonemeTokenizer()
    ids = tok.encode("Hello, world!")
    assert tok.decode(ids) == "HH AH L OW | W ER L D"
    stressed = PhonemeTokenizer(keep_stress=True)
    assert stressed.word_to_tokens("hello") == ["HH", "AH0", "L", "OW1"]
    assert tokenizer_from_dict(stressed.to_dict()).tokens == stressed.tokens


def test_phoneme_oov_policies() -> None:
    oov = "".join(random.choices("bcdfgkxz", k=7))  # no such word in CMUdict
    text = f"hello {oov} world"
    spell = PhonemeTokenizer(oov="spell")
    assert spell.decode(spell.encode(text)) == f"HH AH L OW | {' '.join(oov)} | W ER L D"
    assert spell.word_to_tokens(oov) == list(oov)
    skip = PhonemeTokenizer(oov="skip")
    assert skip.decode(skip.encode(text)) == "HH AH L OW | W ER L D"
    assert skip.word_to_tokens(oov) is None and skip.oov_count == 1
    with pytest.raises(ValueError, match=oov):
        PhonemeTokenizer(oov="error").encode(text)
    with pytest.raises(ValueError, match="oov policy"):
        PhonemeTokenizer(oov="guess")


def test_cli_trains_tokenizer(corpus, tmp_path: Path) -> None:
    m = corpus(8)
    out = tmp_path / "tok.json"
    assert main(["tokenizer", "--kind", "char", "--manifest", str(m), "--out", str(out)]) == 0
    tok = load_tokenizer(out)
    for u in read_manifest(m):
        assert tok.decode(tok.encode(u.text)) == normalize_text(u.text)
    assert main(["tokenizer", "--kind", "bpe", "--manifest", str(m), "--out", str(out)]) == 2


def test_too_small_bpe_vocab_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="vocab-size"):
        train_tokenizer("bpe", sentences(50), vocab_size=5)
