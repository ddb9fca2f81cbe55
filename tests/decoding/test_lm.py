"""Kneser-Ney ARPA builder: normalisation, KenLM loading, lexicons."""

from __future__ import annotations

import random

import pytest

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
def test_arpa_normalises_per_context(tmp_path, order, prune):
    rng = random.Random()
    lm = build_kn_lm(_corpus(rng), NgramConfig(order=order, prune=prune))
    lm.write_arpa(tmp_path / "lm.arpa")
    arpa = read_arpa(tmp_path / "lm.arpa")  # probabilities as written, 7 decimals
    assert arpa.order == order
    predicted = [w for w in arpa.vocab if w != BOS]
    assert EOS in predicted and UNK in predicted
    for ctx in _contexts(rng, arpa, order):
        total = sum(10 ** arpa.log10_prob(w, ctx) for w in predicted)
        assert total == pytest.approx(1.0, abs=1e-4), ctx


def test_pruning_shrinks_the_model():
    corpus = _corpus(random.Random())
    full = build_kn_lm(corpus, NgramConfig(order=3))
    pruned = build_kn_lm(corpus, NgramConfig(order=3, prune=[0, 1]))
    assert len(pruned.probs[2]) < len(full.probs[2])
    assert len(pruned.probs[0]) == len(full.probs[0])
    # every kept n-gram still has its context in the model (KenLM requires it)
    for n in (1, 2):
        for g in pruned.probs[n]:
            assert g[:-1] in pruned.probs[n - 1] and g[1:] in pruned.probs[n - 1]


def test_kenlm_loads_and_agrees(tmp_path):
    kenlm_mod = pytest.importorskip("flashlight.lib.text.decoder.kenlm")
    from flashlight.lib.text.dictionary import Dictionary

    rng = random.Random()
    lm = build_kn_lm(_corpus(rng), NgramConfig(order=3))
    lm.write_arpa(tmp_path / "lm.arpa")
    arpa = read_arpa(tmp_path / "lm.arpa")
    d = Dictionary()
    for w in arpa.vocab:
        d.add_entry(w)
    kenlm = kenlm_mod.KenLM(str(tmp_path / "lm.arpa"), d)
    words = [w for w in arpa.vocab if w not in (BOS, UNK)]
    for _ in range(5):
        sent = rng.choices([w for w in words if w != EOS], k=rng.randint(1, 6)) + [EOS]
        state = kenlm.start(False)
        history = [BOS]
        for w in sent:
            state, score = kenlm.score(state, d.get_index(w))
            assert score == pytest.approx(arpa.log10_prob(w, history), abs=1e-4)
            history.append(w)


def test_cli_arpa_writes_words(tmp_path):
    rng = random.Random()
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


def test_cli_lexicon_reports_oov(tmp_path, monkeypatch, capsys):
    import sys
    import types

    # the real loader lives in asr.data.tokenizer; the CLI only needs load_tokenizer(path)
    fake = types.SimpleNamespace(load_tokenizer=lambda path: CharTokenizer())
    monkeypatch.setitem(sys.modules, "asr.data.tokenizer", fake)
    words = ["hello", "wörld", "b4", "cat"]
    (tmp_path / "words.txt").write_text("\n".join(words) + "\n")
    out = tmp_path / "lexicon.txt"
    args = ["lexicon", "--tokenizer", "tok.json", "--words", str(tmp_path / "words.txt")]
    assert main([*args, "--out", str(out)]) == 0
    assert [ln.split("\t")[0] for ln in out.read_text().splitlines()] == ["hello", "cat"]
    err = capsys.readouterr().err
    assert "skipped 2 words" in err and "wörld" in err and "b4" in err
