"""Transcript formats: what asr-decode writes, asr-score and --resume read back."""

from __future__ import annotations

import pytest

from asr.decode import WordTiming
from asr.transcripts import FORMATS, Result, format_result, read_transcripts, resume_ids

WORDS = ["alpha", "beta", "gamma", "delta", "eps"]


def _results(rng, n: int = 6) -> list[Result]:
    out = []
    for i in range(n):
        words, t = [], 0.0
        for w in rng.choices(WORDS, k=rng.randint(1, 5)):
            start = t + rng.uniform(0.0, 0.3)
            t = start + rng.uniform(0.1, 0.5)
            words.append(WordTiming(w, round(start, 3), round(t, 3), rng.uniform(0.1, 1.0)))
        text = " ".join(w.word for w in words)
        out.append(Result(f"spk{i % 2}-utt{i}", f"/a/{i}.wav", text, words, 0.9, t, f"spk{i % 2}"))
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_written_formats_read_back(tmp_path, rng, fmt):
    results = _results(rng)
    lines = "".join(format_result(r, fmt) for r in results).splitlines(keepends=True)
    if fmt == "ctm":
        rng.shuffle(lines)  # words are put back in time order
    path = tmp_path / f"hyp.{fmt}"
    path.write_text("".join(lines))
    got = read_transcripts(path)
    assert {k: t.text for k, t in got.items()} == {r.id: r.text for r in results}
    assert resume_ids(path, fmt) == {r.id for r in results}


def test_resume_drops_a_line_cut_short(tmp_path, rng):
    results = _results(rng)
    whole = "".join(format_result(r, "jsonl") for r in results)
    cut = rng.randrange(whole.rindex("\n", 0, len(whole) - 1) + 2, len(whole) - 1)
    path = tmp_path / "hyp.jsonl"
    path.write_text(whole[:cut])
    assert resume_ids(path, "jsonl") == {r.id for r in results[:-1]}
    assert path.read_text() == whole[: whole.rindex("\n", 0, len(whole) - 1) + 1]


def test_bad_lines_name_the_file_and_line(tmp_path):
    (tmp_path / "h.ctm").write_text("u1 1 0.0 0.5 hello 0.9\nu1 1 zero 0.5 world 0.9\n")
    with pytest.raises(ValueError, match=r"h\.ctm:2: bad ctm line"):
        read_transcripts(tmp_path / "h.ctm")
    (tmp_path / "h.txt").write_text("u1 hello\nu1 world\n")
    with pytest.raises(ValueError, match=r"h\.txt:2: utterance id 'u1' appears twice"):
        read_transcripts(tmp_path / "h.txt")
