"""Kneser-Ney ARPA builder: normalisation, KenLM loading, lexicons."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from asr.data.tokenizer import train_tokenizer
from asr.lm import BOS, EOS, UNK, NgramConfig, build_kn_lm, main, read_arpa, write_lexicon

from .fakes import CharTokenizer, PieceTokenizer


def _corpus(rng: random.Random, n_words: int = 25, n_lines: int = 150) -> list[str]:
    vocab = [f"w{i}" for i in range(n_words)]
    # Zipf-like sampling so counts-of-counts are realistic and discounts get estimated
    weights = [1.0 / (i + 1) for i in range(n_words)]
    return [" ".join(rng.choices(vocab, weights, k=rng.randint(1, 10))) for _ in range(n_lines)]


def _contexts(rng: random.Random, lm, order: int, k: int = 8) -> list[tuple[str, ...]]:
    ctxs = {(), (BOS,), ("never-seen",)}
    for n in range(1, order):
        grams = list(lm.probs[n - 1])
        ctxs.update(rng.sample(grams, min(k, len(grams))))
    return sorted(ctxs)


@pytest.mark.parametrize("order,prune", [(2, []), (3, []), (3, [0, 1]), (4, [1])])
def test_arpa_normalises_per_context(tmp_path, order, prune, rng):
    lm = build_kn_lm(_corpus(rng), NgramConfig(order=order, prune=prune))
    lm.write_arpa(tmp_path / "lm.arpa")
    arpa = read_arpa(tmp_path / "lm.arpa")  # probabilities as written, 7 decimals
    assert arpa.order == order
    predicted = [w for w in arpa.vocab if w != BOS]
    assert EOS in predicted and UNK in predicted
    for ctx in _contexts(rng, arpa, order):
        total = sum(10 ** arpa.log10_prob(w, ctx) for w in predicted)
        assert total == pytest.approx(1.0, abs=1e-4), ctx


def test_pruning_shrinks_the_model(rng):
    corpus = _corpus(rng)
    full = build_kn_lm(corpus, NgramConfig(order=3))
    pruned = build_kn_lm(corpus, NgramConfig(order=3, prune=[0, 1]))
    assert len(pruned.probs[2]) < len(full.probs[2])
    assert len(pruned.probs[0]) == len(full.probs[0])
    # every kept n-gram still has its context in the model (KenLM requires it)
    for n in (1, 2):
        for g in pruned.probs[n]:
            assert g[:-1] in pruned.probs[n - 1] and g[1:] in pruned.probs[n - 1]


def test_kenlm_loads_and_agrees(tmp_path, rng):
    lm = build_kn_lm(_corpus(rng), NgramConfig(order=3))
    lm.write_arpa(tmp_path / "lm.arpa")
    arpa = read_arpa(tmp_path / "lm.arpa")
    d = Dictionary()
    for w in arpa.vocab:
        d.add_entry(w)
    kenlm = KenLM(str(tmp_path / "lm.arpa"), d)
    words = [w for w in arpa.vocab if w not in (BOS, UNK)]
    for _ in range(5):
        sent = rng.choices([w for w in words if w != EOS], k=rng.randint(1, 6)) + [EOS]
        state = kenlm.start(False)
        history = [BOS]
        for w in sent:
            state, score = kenlm.score(state, d.get_index(w))
            assert score == pytest.approx(arpa.log10_prob(w, history), abs=1e-4)
            history.append(w)


def test_cli_arpa_writes_words(tmp_path, rng):
    lines = _corpus(rng)
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "lm" / "lm.arpa"
    assert (
        main(["arpa", "--text", str(tmp_path / "train.txt"), "--order", "2", "--out", str(out)])
        == 0
    )
    words = (out.parent / "words.txt").read_text().split()
    assert sorted(words) == sorted({w for line in lines for w in line.split()})
    assert "\\2-grams:" in out.read_text()


def test_lexicon_char_and_pieces(tmp_path):
    tok = CharTokenizer()
    n, oov = write_lexicon(tok, ["abc", "b4d", "ok", "abc"], tmp_path / "lex.txt")
    lines = (tmp_path / "lex.txt").read_text().splitlines()
    assert n == 2 and oov == ["b4d"]
    assert lines == ["abc\ta b c |", "ok\to k |"]
    pt = PieceTokenizer(["▁ab", "c", "▁x"])
    n, oov = write_lexicon(pt, ["abc", "xc", "zz"], tmp_path / "lex2.txt")
    assert (tmp_path / "lex2.txt").read_text().splitlines() == ["abc\t▁ab c", "xc\t▁x c"]
    assert oov == ["zz"]
    with pytest.warns(UserWarning, match="no pronouncing dictionary"):
        n, _ = write_lexicon(tok, ["abc", "ok"], tmp_path / "lex3.txt", with_dictionary=True)
    assert n == 2 and (tmp_path / "lex3.txt").read_text() == (tmp_path / "lex.txt").read_text()


def test_cli_lexicon_reports_oov(tmp_path, capsys):
    # a real char tokenizer that has never seen "ö" or "4": it cannot spell those words
    train_tokenizer("char", ["hello cat world the"]).save(tmp_path / "tok.json")
    words = ["hello", "wörld", "b4", "cat"]
    (tmp_path / "words.txt").write_text("\n".join(words) + "\n")
    out = tmp_path / "lexicon.txt"
    args = [
        "lexicon",
        "--tokenizer",
        str(tmp_path / "tok.json"),
        "--words",
        str(tmp_path / "words.txt"),
    ]
    assert main([*args, "--out", str(out)]) == 0
    assert out.read_text().splitlines() == ["hello\th e l l o |", "cat\tc a t |"]
    err = capsys.readouterr().err
    assert "skipped 2 words" in err and "wörld" in err and "b4" in err


def test_modified_kneser_ney_by_hand():
    """A bigram model of seven sentences, every figure worked out by hand below.

    Sentences (each padded as <s> ... </s>): "a", "a", "b", "c a b a", "a a", "b", "c".
    """
    lines = ["a", "a", "b", "c a b a", "a a", "b", "c"]
    lm = build_kn_lm(lines, NgramConfig(order=2, normalize=False))
    F = Fraction

    # Bigram counts (the top order keeps raw counts):
    #   <s> a: 3   <s> b: 2   <s> c: 2   a </s>: 4   b </s>: 2   c </s>: 1
    #   c a: 1     a b: 1     b a: 1     a a: 1
    # counts of counts: n1 = 5, n2 = 3, n3 = 1, n4 = 1
    y = F(5, 5 + 2 * 3)
    d2_bigram = (1 - 2 * y * F(3, 5), 2 - 3 * y * F(1, 3), 3 - 4 * y * F(1, 1))
    assert d2_bigram == (F(5, 11), F(17, 11), F(13, 11))
    # Unigram continuation counts (distinct words before it):
    #   a: <s> c b a -> 4   b: <s> a -> 2   c: <s> -> 1   </s>: a b c -> 3
    # counts of counts: n1 = n2 = n3 = n4 = 1
    y = F(1, 1 + 2 * 1)
    d1_unigram = (1 - 2 * y, 2 - 3 * y, 3 - 4 * y)
    assert d1_unigram == (F(1, 3), F(1), F(5, 3))
    assert lm.discounts[0] == pytest.approx([float(d) for d in d1_unigram])
    assert lm.discounts[1] == pytest.approx([float(d) for d in d2_bigram])

    # Unigrams: total continuation count 10; D3+ for a (4) and </s> (3), D2 for b, D1 for c.
    # The held-back mass gamma = (5/3 + 1 + 1/3 + 5/3) / 10 = 7/15 is spread uniformly over
    # the 5 predictable words (a, b, c, </s>, <unk>).
    gamma = (F(5, 3) + 1 + F(1, 3) + F(5, 3)) / 10
    assert gamma == F(7, 15)
    uniform = gamma / 5
    p1 = {
        "a": (4 - F(5, 3)) / 10 + uniform,  # 49/150
        "b": (2 - F(1)) / 10 + uniform,  # 29/150
        "c": (1 - F(1, 3)) / 10 + uniform,  # 24/150
        "</s>": (3 - F(5, 3)) / 10 + uniform,  # 34/150
        "<unk>": uniform,  # 14/150
    }
    assert [p1[w] * 150 for w in ("a", "b", "c", "</s>", "<unk>")] == [49, 29, 24, 34, 14]
    assert sum(p1.values()) == 1

    # Bigrams after "a": a </s> (4, D3+), a b (1, D1), a a (1, D1); total 6.
    d1, d2, d3 = d2_bigram
    gamma_a = (d3 + d1 + d1) / 6  # 23/66, the back-off weight of "a"
    assert gamma_a == F(23, 66)
    # after "<s>": <s> a (3, D3+), <s> b (2, D2), <s> c (2, D2); total 7
    gamma_bos = (d3 + d2 + d2) / 7  # 47/77
    assert gamma_bos == F(47, 77)
    # after "b": b a (1, D1), b </s> (2, D2); total 3
    gamma_b = (d1 + d2) / 3  # 2/3
    # after "c": c a (1, D1), c </s> (1, D1); total 2
    gamma_c = (d1 + d1) / 2  # 5/11
    expected = {
        ("a", "</s>"): (4 - d3) / 6 + gamma_a * p1["</s>"],
        ("a", "b"): (1 - d1) / 6 + gamma_a * p1["b"],
        ("a", "a"): (1 - d1) / 6 + gamma_a * p1["a"],
        ("a", "c"): gamma_a * p1["c"],  # unseen: backs off
        ("<s>", "a"): (3 - d3) / 7 + gamma_bos * p1["a"],
        ("<s>", "b"): (2 - d2) / 7 + gamma_bos * p1["b"],
        ("<s>", "</s>"): gamma_bos * p1["</s>"],
        ("b", "</s>"): (2 - d2) / 3 + gamma_b * p1["</s>"],
        ("b", "b"): gamma_b * p1["b"],
        ("c", "a"): (1 - d1) / 2 + gamma_c * p1["a"],
        ("c", "<unk>"): gamma_c * p1["<unk>"],
    }
    for (ctx, word), p in expected.items():
        assert 10 ** lm.log10_prob(word, [ctx]) == pytest.approx(float(p), rel=1e-12), (ctx, word)
    for word, p in p1.items():
        assert 10 ** lm.log10_prob(word, []) == pytest.approx(float(p), rel=1e-12), word
    # the ARPA back-off weights are log10 gamma of each context
    for ctx, g in {"a": gamma_a, "<s>": gamma_bos, "b": gamma_b, "c": gamma_c}.items():
        assert lm.backoffs[0][(ctx,)] == pytest.approx(math.log10(g), rel=1e-12), ctx
