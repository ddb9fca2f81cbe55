"""asr-score against jiwer on fresh random sentence pairs; file formats; reports."""

from __future__ import annotations

import json
import random

import jiwer
import pytest

from asr.score import main, score
from asr.text import TextNormalizer
from asr.transcripts import read_transcripts

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
