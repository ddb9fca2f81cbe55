"""JSONL manifests: the one list of utterances every later stage reads.

One utterance per line: ``{"id", "audio", "duration", "text"}`` plus optional ``"speaker"`` and
``"offset"`` (seconds into ``audio``, for segmented recordings) and ``"recording"`` (the Kaldi
recording id of a segment, so a Kaldi data dir survives import and export). Relative ``audio`` paths are
resolved against the manifest's folder, so a corpus folder can be moved as a whole.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIRED_FIELDS = ("id", "audio", "duration", "text")


@dataclass
class Utterance:
    """One training/test example. ``audio`` is absolute after :func:`read_manifest`."""

    id: str
    audio: str
    duration: float
    text: str
    speaker: str | None = None
    offset: float = 0.0
    recording: str | None = None  # Kaldi recording id of a segment; kept for export

    def to_json(self, relative_to: Path | None = None) -> dict[str, Any]:
        audio = self.audio
        if relative_to is not None:
            try:
                audio = str(Path(audio).resolve().relative_to(relative_to.resolve()))
            except ValueError:
                pass  # outside the manifest folder: keep it absolute
        # to the microsecond: a 16 kHz sample is 62.5 us, so the sample count survives
        d: dict[str, Any] = {
            "id": self.id,
            "audio": audio,
            "duration": round(float(self.duration), 6),
            "text": self.text,
        }
        if self.speaker is not None:
            d["speaker"] = self.speaker
        if self.offset:
            d["offset"] = round(float(self.offset), 6)
        if self.recording is not None:
            d["recording"] = self.recording
        return d


@dataclass
class ManifestError:
    """One bad row: ``line`` is 1-based; ``id`` is None when the row could not be parsed."""

    path: str
    line: int
    id: str | None
    reason: str

    def __str__(self) -> str:
        who = f" ({self.id})" if self.id else ""
        return f"{self.path}:{self.line}{who}: {self.reason}"


class ManifestFormatError(ValueError):
    """A manifest row that :func:`read_manifest` cannot turn into an :class:`Utterance`."""


def _resolve(audio: str, base: Path) -> str:
    p = Path(audio).expanduser()
    return str(p if p.is_absolute() else base / p)


def _row_to_utterance(row: Any, base: Path) -> Utterance:
    if not isinstance(row, dict):
        raise ManifestFormatError(f"row is a {type(row).__name__}, expected a JSON object")
    missing = [k for k in REQUIRED_FIELDS if k not in row or row[k] is None]
    if missing:
        raise ManifestFormatError(f"missing field(s) {missing}")
    try:
        duration = float(row["duration"])
        offset = float(row.get("offset") or 0.0)
    except (TypeError, ValueError) as e:
        raise ManifestFormatError(f"duration/offset is not a number ({e})") from e
    speaker = row.get("speaker")
    return Utterance(
        id=str(row["id"]),
        audio=_resolve(str(row["audio"]), base),
        duration=duration,
        text=str(row["text"]),
        speaker=None if speaker is None else str(speaker),
        offset=offset,
        recording=None if row.get("recording") is None else str(row["recording"]),
    )


def iter_manifest(path: str | Path) -> Iterator[Utterance]:
    """Stream utterances; raises :class:`ManifestFormatError` naming the line of a bad row."""
    path = Path(path)
    base = path.parent
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield _row_to_utterance(json.loads(line), base)
            except (json.JSONDecodeError, ManifestFormatError) as e:
                raise ManifestFormatError(
                    f"{path}:{n}: {e}; run `asr-data validate {path}` to list every bad row"
                ) from e


def read_manifest(path: str | Path) -> list[Utterance]:
    """All utterances of a JSONL manifest, audio paths made absolute."""
    return list(iter_manifest(path))


def write_manifest(path: str | Path, utterances: Iterable[Utterance], relative: bool = True) -> int:
    """Write utterances as JSONL; audio paths under the manifest folder are stored relative.

    Returns the number of rows written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for u in utterances:
            f.write(json.dumps(u.to_json(path.parent if relative else None), ensure_ascii=False))
            f.write("\n")
            n += 1
    return n


def validate_manifest(path: str | Path, check_audio: bool = True) -> list[ManifestError]:
    """Every bad row of a manifest, not just the first.

    Checks: bad JSON, missing fields, empty text, non-positive / non-finite duration, negative
    offset, duplicate id, missing audio file (``check_audio``).
    """
    path = Path(path)
    errors: list[ManifestError] = []
    if not path.is_file():
        return [ManifestError(str(path), 0, None, "manifest file not found")]
    seen: dict[str, int] = {}
    base = path.parent
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue

            def bad(reason: str, uid: str | None = None, n: int = n) -> None:
                errors.append(ManifestError(str(path), n, uid, reason))

            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                bad(f"bad JSON ({e.msg} at column {e.colno})")
                continue
            if not isinstance(row, dict):
                bad(f"row is a {type(row).__name__}, expected a JSON object")
                continue
            uid = None if row.get("id") is None else str(row["id"])
            if uid is None or not uid.strip():
                bad("missing id")
            elif uid in seen:
                bad(f"duplicate id (first on line {seen[uid]})", uid)
            else:
                seen[uid] = n
            text = row.get("text")
            if text is None:
                bad("missing text", uid)
            elif not isinstance(text, str) or not text.strip():
                bad("empty text", uid)
            dur = row.get("duration")
            try:
                d = float(dur)
                if not math.isfinite(d) or d <= 0:
                    bad(f"duration must be > 0, got {dur}", uid)
            except (TypeError, ValueError):
                bad(
                    "missing duration" if dur is None else f"duration is not a number: {dur!r}", uid
                )
            try:
                if float(row.get("offset") or 0.0) < 0:
                    bad(f"negative offset {row['offset']}", uid)
            except (TypeError, ValueError):
                bad(f"offset is not a number: {row.get('offset')!r}", uid)
            audio = row.get("audio")
            if not audio:
                bad("missing audio", uid)
            elif check_audio and not Path(_resolve(str(audio), base)).is_file():
                bad(f"audio file not found: {_resolve(str(audio), base)}", uid)
    return errors
