"""asr-score against jiwer on fresh random sentence pairs; file formats; reports."""

from __future__ import annotations

import json
import random

import jiwer
import numpy as np
import pytest

from asr.score import main, paired_bootstrap, score
from asr.text import TextNormalizer
from asr.transcripts import Transcript, read_transcripts

WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]


def _pairs(rng: random.Random, n: int) -> tuple[dict, dict]:
    refs, hyps = {}, {}
    for i in range(n):
        ref = rng.choices(WORDS, k=rng.randint(1, 8))
        hyp = [w for w in ref if rng.random() > 0.2]
        for _ in range(rng.randint(0, 2)):
            hyp.insert(rng.randint(0, len(hyp)), rng.choice(WORDS))
        hyp = [rng.choice(WORDS) if rng.random() < 0.2 else w for w in hyp]
        refs[f"spk{i % 3}-utt{i}"] = " ".join(ref)
        hyps[f"spk{i % 3}-utt{i}"] = " ".join(hyp)
    return refs, hyps


def _write(path, fmt, texts, speakers=True):
    with open(path, "w") as f:
        for uid, text in texts.items():
            if fmt == "text":
                f.write(f"{uid} {text}\n")
            elif fmt == "jsonl":
                f.write(json.dumps({"id": uid, "text": text, "speaker": uid.split("-")[0]}) + "\n")
            else:
                f.write(f"{text} ({uid})\n")


@pytest.mark.parametrize("fmt", ["text", "jsonl", "trn"])
def test_matches_jiwer(tmp_path, fmt, capsys, rng):
    refs, hyps = _pairs(rng, 30)
    _write(tmp_path / "ref", fmt, refs)
    _write(tmp_path / "hyp", fmt, dict(reversed(list(hyps.items()))))  # order must not matter
    assert (
        main([str(tmp_path / "ref"), str(tmp_path / "hyp"), "--out-dir", str(tmp_path / "o")]) == 0
    )
    ids = list(refs)
    w = jiwer.process_words([refs[i] for i in ids], [hyps[i] for i in ids])
    c = jiwer.process_characters([refs[i] for i in ids], [hyps[i] for i in ids])
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["wer"] == pytest.approx(w.wer)
    assert summary["cer"] == pytest.approx(c.cer)
    assert summary["words"]["substitutions"] == w.substitutions
    assert summary["words"]["deletions"] == w.deletions
    assert summary["words"]["insertions"] == w.insertions
    assert f"%WER {100 * w.wer:.2f}" in capsys.readouterr().out
    if fmt == "text":  # plain 'id text' files carry no speakers
        assert summary["speakers"] == {}
        return
    assert set(summary["speakers"]) == {"spk0", "spk1", "spk2"}
    per_spk = sum(s["words"]["errors"] for s in summary["speakers"].values())
    assert per_spk == w.substitutions + w.deletions + w.insertions
    report = (tmp_path / "o" / "report.txt").read_text()
    assert "Per speaker" in report


def test_alignment_marks_errors(tmp_path):
    _write(tmp_path / "ref", "text", {"u1": "the cat sat down", "u2": "hello"})
    _write(tmp_path / "hyp", "text", {"u1": "the bat sat down now", "u3": "x"})
    assert main([str(tmp_path / "ref"), str(tmp_path / "hyp"), "--out-dir", str(tmp_path)]) == 0
    ali = (tmp_path / "alignments.txt").read_text()
    assert "REF:  the CAT sat down ***" in ali
    assert "HYP:  the BAT sat down NOW" in ali
    assert "(cat->bat)" in ali and "(*->now)" in ali
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["missing"] == ["u2"] and summary["extra"] == ["u3"]
    assert summary["words"]["deletions"] == 1  # the missing utterance counts as deleted
    assert ["cat", "bat", 1] in summary["top_substitutions"]


def test_normalisation_is_shared(tmp_path):
    refs = {"a": "Hello, World! <noise>"}
    hyps = {"a": "hello world"}
    from asr.transcripts import Transcript

    r = {k: Transcript(k, v) for k, v in refs.items()}
    h = {k: Transcript(k, v) for k, v in hyps.items()}
    assert score(r, h).words.errors == 0
    strict = TextNormalizer(lowercase=False, remove_punctuation=False, noise_tokens=())
    assert score(r, h, strict).words.errors > 0


def test_read_formats_agree(tmp_path, rng):
    refs, _ = _pairs(rng, 5)
    for fmt in ("text", "jsonl", "trn"):
        _write(tmp_path / fmt, fmt, refs)
    got = [
        {k: t.text for k, t in read_transcripts(tmp_path / f).items()}
        for f in ("text", "jsonl", "trn")
    ]
    assert got[0] == got[1] == got[2] == refs


def read_transcripts_from(texts: dict) -> dict:
    return {uid: Transcript(uid, text) for uid, text in texts.items()}


def _worse(rng: random.Random, hyps: dict, share: float) -> dict:
    """hyps with a word no reference has inserted into about ``share`` of the utterances: one
    more error each, never fewer."""
    out = {}
    for uid, text in hyps.items():
        words = text.split()
        if rng.random() < share:
            words.insert(rng.randint(0, len(words)), "omega")
        out[uid] = " ".join(words)
    return out


def test_paired_bootstrap_of_identical_systems_is_zero(rng):
    refs, hyps = _pairs(rng, 40)
    a = score(read_transcripts_from(refs), read_transcripts_from(hyps))
    d = paired_bootstrap(a, a, resamples=200)
    assert (d.difference, d.low, d.high, d.b_better) == (0.0, 0.0, 0.0, 0.0)


def test_paired_bootstrap_interval_matches_the_normal_approximation(rng):
    # an independent check of the resampling: for a ratio of sums over 300 utterances the
    # bootstrap's 95% interval is close to difference +- 1.96 standard errors (delta method)
    refs, hyps = _pairs(rng, 300)
    other = _pairs(rng, 300)[1]  # an unrelated second system on the same references
    a = score(read_transcripts_from(refs), read_transcripts_from(hyps))
    b = score(read_transcripts_from(refs), read_transcripts_from(other))
    d = paired_bootstrap(a, b, resamples=4000, seed=rng.randrange(2**31))
    n = np.array([u.counts.n for u in a.utterances])
    diff = np.array(
        [
            ub.counts.errors - ua.counts.errors
            for ua, ub in zip(a.utterances, b.utterances, strict=True)
        ]
    )
    ratio = diff.sum() / n.sum()
    se = 100 * np.sqrt(((diff - ratio * n) ** 2).sum()) / n.sum()
    assert d.difference == pytest.approx(100 * (b.words.rate - a.words.rate))
    assert d.low < d.difference < d.high
    assert (d.high - d.low) == pytest.approx(2 * 1.96 * se, rel=0.08)
    assert (d.low + d.high) / 2 == pytest.approx(d.difference, abs=0.25 * se)


def test_compare_on_the_command_line(tmp_path, capsys, rng):
    refs, hyps = _pairs(rng, 50)
    worse = _worse(rng, hyps, 0.6)
    for name, texts in (("ref", refs), ("a", hyps), ("b", worse)):
        _write(tmp_path / name, "jsonl", texts)
    args = [str(tmp_path / "ref"), str(tmp_path / "a"), "--compare", str(tmp_path / "b")]
    assert main([*args, "--out-dir", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    compare = json.loads((tmp_path / "o" / "summary.json").read_text())["compare"]
    ids = list(refs)
    wer_a = jiwer.wer([refs[i] for i in ids], [hyps[i] for i in ids])
    wer_b = jiwer.wer([refs[i] for i in ids], [worse[i] for i in ids])
    assert compare["wer"] == pytest.approx(wer_b)
    assert compare["difference"] == pytest.approx(100 * (wer_b - wer_a))
    assert compare["b_better"] == 0.0  # B is never better on any utterance
    assert compare["low"] >= 0.0 and compare["high"] > compare["difference"]
    assert f"B - A: %WER {100 * (wer_b - wer_a):+.2f}" in out
    assert main([*args[:2], "--compare", str(tmp_path / "absent")]) == 2
    assert "asr-score: error:" in capsys.readouterr().err


def test_paired_bootstrap_in_blocks_equals_one_draw(rng, monkeypatch):
    # large sets draw the resamples a block at a time: the same draws as all at once
    refs, hyps = _pairs(rng, 60)
    a = score(read_transcripts_from(refs), read_transcripts_from(hyps))
    b = score(read_transcripts_from(refs), read_transcripts_from(_pairs(rng, 60)[1]))
    whole = paired_bootstrap(a, b, resamples=500, seed=3)
    monkeypatch.setattr("asr.score.BOOTSTRAP_CELLS", 60 * 7)  # 7 resamples a block
    assert paired_bootstrap(a, b, resamples=500, seed=3) == whole
