"""Transcript files: every format ``asr-decode`` writes and ``asr-score`` reads, in one place.

Sits between decoding and scoring: :class:`Result` (one decoded utterance) is written by
``asr-decode`` with :func:`format_result`; ``asr-decode --resume`` reads back which ids a file
already holds with :func:`resume_ids`; ``asr-score`` reads references and hypotheses with
:func:`read_transcripts`. Formats:

* ``text``: ``id word word ...`` per utterance (a Kaldi ``text`` file);
* ``jsonl``: one JSON object per utterance with ``id`` and ``text`` (decoder output adds words
  with times and confidences, ``duration``, ``audio``, ``speaker``, ``nbest``); a JSONL manifest
  reads as references;
* ``ctm``: NIST CTM, ``id channel start duration word confidence`` per word;
* ``trn``: sclite ``word word ... (spk-utt)`` per utterance.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asr.decode import Hypothesis, WordTiming

FORMATS: tuple[str, ...] = ("text", "jsonl", "ctm", "trn")
FORMAT_BY_SUFFIX = {".txt": "text", ".jsonl": "jsonl", ".ctm": "ctm", ".trn": "trn"}


@dataclass
class Transcript:
    """One utterance's words as scoring sees them."""

    id: str
    text: str
    speaker: str | None = None


@dataclass
class Result:
    """One decoded utterance (``error`` set and ``text`` empty when it could not be read)."""

    id: str
    path: str
    text: str = ""
    words: list[WordTiming] = field(default_factory=list)
    confidence: float = 0.0
    duration: float = 0.0
    speaker: str | None = None
    nbest: list[Hypothesis] = field(default_factory=list)
    error: str | None = None

    def to_json(self, with_nbest: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "words": [asdict(w) for w in self.words],
            "confidence": self.confidence,
            "duration": self.duration,
            "audio": self.path,
        }
        if self.speaker is not None:
            d["speaker"] = self.speaker
        if with_nbest:
            d["nbest"] = [{"text": h.text, "score": h.score} for h in self.nbest]
        return d


def format_for_path(path: str | Path | None) -> str:
    """The format a file name asks for (``.txt``, ``.jsonl``, ``.ctm``, ``.trn``), else text."""
    return FORMAT_BY_SUFFIX.get(Path(path).suffix, "text") if path else "text"


# --------------------------------------------------------------------------------------------
# writing


def trn_id(utt_id: str, speaker: str | None) -> str:
    """sclite wants ``(spk-utt)`` so it can group by speaker; keep ids that already are."""
    if speaker and not utt_id.startswith(f"{speaker}-") and not utt_id.startswith(f"{speaker}_"):
        return f"{speaker}-{utt_id}"
    return utt_id


def format_result(r: Result, fmt: str, with_nbest: bool = False) -> str:
    """One result in ``fmt`` (text, jsonl, ctm, trn), newline-terminated."""
    if fmt == "text":
        return f"{r.id} {r.text}".rstrip() + "\n"
    if fmt == "jsonl":
        return json.dumps(r.to_json(with_nbest), ensure_ascii=False) + "\n"
    if fmt == "ctm":
        return "".join(
            f"{r.id} 1 {w.start:.3f} {max(w.end - w.start, 0.0):.3f} {w.word} {w.confidence:.4f}\n"
            for w in r.words
        )
    if fmt == "trn":
        return f"{r.text} ({trn_id(r.id, r.speaker)})\n"
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


# --------------------------------------------------------------------------------------------
# reading


def detect_format(path: Path, lines: list[str]) -> str:
    """``.ctm`` by name; otherwise JSONL, trn or text from the content."""
    if path.suffix == ".ctm":
        return "ctm"
    if lines and lines[0].lstrip().startswith("{"):
        return "jsonl"
    if lines and all(ln.rstrip().endswith(")") and "(" in ln for ln in lines):
        return "trn"
    return "text"


def _parse(line: str, fmt: str) -> Transcript:
    """One non-empty line; for CTM the transcript of one word. Raises ValueError/KeyError."""
    if fmt == "jsonl":
        d = json.loads(line)
        return Transcript(str(d["id"]), str(d.get("text", "")), d.get("speaker"))
    if fmt == "trn":
        text, _, rest = line.rstrip().rpartition("(")
        uid = rest[:-1].strip()
        return Transcript(uid, text.strip(), uid.split("-", 1)[0] if "-" in uid else None)
    if fmt == "ctm":
        uid, _, word = _ctm_word(line)
        return Transcript(uid, word)
    parts = line.split(maxsplit=1)
    return Transcript(parts[0], parts[1] if len(parts) > 1 else "")


def _ctm_word(line: str) -> tuple[str, float, str]:
    """(id, start, word) of one CTM line; raises ValueError on a malformed one."""
    parts = line.split()
    if len(parts) < 5:
        raise ValueError(f"{len(parts)} fields")
    float(parts[3])  # the duration must be a number too
    return parts[0], float(parts[2]), parts[4]


_EXPECTED = {
    "jsonl": "need a JSON object with 'id' and 'text'",
    "ctm": "need 'id channel start duration word [confidence]'",
    "trn": "need 'words (spk-utt)'",
    "text": "need 'id words'",
}


def read_transcripts(path: str | Path, fmt: str | None = None) -> dict[str, Transcript]:
    """Read any :data:`FORMATS` file (``fmt=None``: see :func:`detect_format`), keyed by id.

    CTM words are joined per id in order of their start times. A bad line or an id given twice
    is an error naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"transcript file not found: {path}")
    numbered = [
        (n, ln)
        for n, ln in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if ln.strip()
    ]
    fmt = fmt or detect_format(path, [ln for _, ln in numbered])
    out: dict[str, Transcript] = {}
    ctm_words: dict[str, list[tuple[float, str]]] = {}
    for n, line in numbered:
        try:
            if fmt == "ctm":
                uid, start, word = _ctm_word(line)
                ctm_words.setdefault(uid, []).append((start, word))
                continue
            t = _parse(line, fmt)
        except (ValueError, KeyError) as e:
            raise ValueError(f"{path}:{n}: bad {fmt} line, {_EXPECTED[fmt]} ({e})") from e
        if t.id in out:
            raise ValueError(f"{path}:{n}: utterance id {t.id!r} appears twice")
        out[t.id] = t
    for uid, words in ctm_words.items():
        out[uid] = Transcript(uid, " ".join(w for _, w in sorted(words, key=lambda x: x[0])))
    return out


def resume_ids(path: str | Path, fmt: str) -> set[str]:
    """Ids already written to ``path`` in ``fmt``, for ``asr-decode --resume``.

    A last line without its newline was cut short by an interrupted run: it is removed from
    the file, so its utterance is decoded again and appended whole. Unparsable lines are
    skipped (their utterances are decoded again). trn files give ``spk-utt`` ids
    (:func:`trn_id`).
    """
    path = Path(path)
    if not path.is_file():
        return set()
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(keep)
            os.fsync(f.fileno())
        data = data[:keep]
    ids: set[str] = set()
    for line in data.decode("utf-8").splitlines():
        if not line.strip():
            continue
        try:
            ids.add(_parse(line, fmt).id)
        except (ValueError, KeyError):
            continue
    return ids
