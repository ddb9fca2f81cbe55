"""Input discovery for ``asr-decode``: audio files, folders, JSONL manifests, Kaldi ``wav.scp``.

First step of the inference path: every input becomes a list of :class:`AudioItem` (which
file, which part of it, under which id); a list file that cannot be read becomes one failed
:class:`asr.transcripts.Result` instead of stopping the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from asr.audio import AudioError, audio_info
from asr.data.kaldi import parse_wav_scp_entry
from asr.data.manifest import read_manifest
from asr.transcripts import Result

AUDIO_EXTENSIONS: tuple[str, ...] = (
    ".wav",
    ".flac",
    ".ogg",
    ".sph",
    ".wv1",
    ".wv2",
    ".mp3",
    ".opus",
)


@dataclass
class AudioItem:
    """One utterance to decode: where its audio is and, for manifests, which part."""

    id: str
    path: str
    offset: float = 0.0
    duration: float | None = None
    speaker: str | None = None


def collect_inputs(paths: Iterable[str | Path]) -> tuple[list[AudioItem], list[Result]]:
    """Expand files, folders, manifests and wav.scp files into items (in the order given,
    folders sorted); bad list files become error results."""
    items: list[AudioItem] = []
    errors: list[Result] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS)
            items += [AudioItem(_file_id(f, p), str(f)) for f in found]
        elif p.suffix in (".jsonl", ".scp") or p.name.endswith("wav.scp"):
            try:
                items += _manifest_items(p) if p.suffix == ".jsonl" else _wav_scp_items(p)
            except (OSError, ValueError) as e:  # a bad list is one failed input, not a crash
                errors.append(Result(id=p.name, path=str(p), error=failure_reason(e, str(p))))
        else:
            items.append(AudioItem(p.stem, str(p)))
    seen: dict[str, int] = {}
    for it in items:  # ids must be unique for scoring; suffix duplicates from different folders
        if it.id in seen:
            seen[it.id] += 1
            it.id = f"{it.id}-{seen[it.id]}"
        else:
            seen[it.id] = 0
    return items, errors


def item_duration(item: AudioItem) -> float:
    """Seconds of audio, from the header only (sorting must not read whole files)."""
    if item.duration is not None:
        return float(item.duration)
    try:
        return audio_info(item.path)[0] - item.offset
    except AudioError:  # reported with its reason when the item is loaded
        return 0.0


def failure_reason(e: Exception, path: str) -> str:
    """One line naming the file and what went wrong."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg if path in msg else f"{path}: {msg}"


def _file_id(f: Path, root: Path) -> str:
    rel = f.relative_to(root).with_suffix("")
    return "-".join(rel.parts)


def _manifest_items(path: Path) -> list[AudioItem]:
    return [
        AudioItem(u.id, str(u.audio), float(u.offset or 0.0), u.duration, u.speaker)
        for u in read_manifest(path)
    ]


def _wav_scp_items(path: Path) -> list[AudioItem]:
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        if len(parts) != 2:
            raise ValueError(f"{path}:{n}: expected '<id> <audio path>'")
        # the data module also unwraps `sph2pipe -f wav PATH |` entries
        audio = Path(parse_wav_scp_entry(parts[1], f"{path}:{n}"))
        if not audio.is_absolute() and not audio.exists():
            audio = path.parent / audio
        items.append(AudioItem(parts[0], str(audio)))
    return items
