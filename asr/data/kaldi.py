"""Kaldi data directories <-> JSONL manifests, so people can bring their existing data.

Reads/writes ``wav.scp``, ``text``, ``utt2spk`` (+ ``spk2utt`` on export) and ``segments``.
``wav.scp`` entries must be file paths; the one pipe form accepted is ``sph2pipe [-f wav] [-p]
PATH |``, because SPHERE is read natively (:mod:`asr.audio`). Import then export reproduces
the files (sorted by id, as Kaldi requires).
"""

from __future__ import annotations

from pathlib import Path

from asr.audio import audio_info
from asr.data.manifest import Utterance

# sph2pipe options that only pick the output container (we decode SPHERE ourselves)
_SPH2PIPE_HARMLESS = {"-p"}
_SPH2PIPE_FORMATS = {"wav", "sph", "raw"}


class KaldiDirError(ValueError):
    """A Kaldi data dir that cannot be imported; the message names the file and line."""


def _read_table(path: Path, min_fields: int = 2) -> dict[str, tuple[int, str]]:
    """``key rest-of-line`` files -> {key: (line number, rest)}; duplicates are errors."""
    out: dict[str, tuple[int, str]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) < min_fields:
                raise KaldiDirError(f"{path}:{n}: expected `<id> <value>`, got {line!r}")
            key = parts[0]
            if key in out:
                raise KaldiDirError(
                    f"{path}:{n}: duplicate id {key!r} (first on line {out[key][0]})"
                )
            out[key] = (n, parts[1] if len(parts) > 1 else "")
    return out


def parse_wav_scp_entry(value: str, where: str) -> str:
    """The audio path of one ``wav.scp`` value; raises naming ``where`` for unusable pipes."""
    value = value.strip()
    if not value.endswith("|"):
        return value
    args = value[:-1].split()
    if args and Path(args[0]).name == "sph2pipe":
        rest, i = args[1:], 0
        paths = []
        while i < len(rest):
            a = rest[i]
            if a == "-f" and i + 1 < len(rest) and rest[i + 1] in _SPH2PIPE_FORMATS:
                i += 2
                continue
            if a in _SPH2PIPE_HARMLESS:
                i += 1
                continue
            if a.startswith("-"):
                break  # e.g. -c (channel) or -t (time range): would change the audio
            paths.append(a)
            i += 1
        else:
            if len(paths) == 1:
                return paths[0]
    raise KaldiDirError(
        f"{where}: wav.scp entry is a pipe command ({value!r}); only plain paths and "
        "`sph2pipe [-f wav] [-p] PATH |` are supported. Convert the audio to files first "
        "(e.g. run the command and write WAVs) and list their paths."
    )


def import_kaldi_dir(data_dir: str | Path) -> list[Utterance]:
    """Utterances of a Kaldi data dir; durations from ``segments`` or the audio header."""
    d = Path(data_dir)
    for name in ("wav.scp", "text"):
        if not (d / name).is_file():
            raise KaldiDirError(f"{d}: missing {name} (a Kaldi data dir needs wav.scp and text)")
    wavs = {
        k: parse_wav_scp_entry(v, f"{d / 'wav.scp'}:{n}")
        for k, (n, v) in _read_table(d / "wav.scp").items()
    }
    texts = _read_table(d / "text", min_fields=1)
    spk = _read_table(d / "utt2spk") if (d / "utt2spk").is_file() else {}
    segments: dict[str, tuple[str, float, float]] = {}
    if (d / "segments").is_file():
        for utt, (n, v) in _read_table(d / "segments").items():
            parts = v.split()
            try:
                rec, start, end = parts[0], float(parts[1]), float(parts[2])
            except (IndexError, ValueError) as e:
                raise KaldiDirError(
                    f"{d / 'segments'}:{n}: expected `<utt> <recording> <start> <end>`"
                ) from e
            if end <= start:
                raise KaldiDirError(f"{d / 'segments'}:{n}: end {end} <= start {start}")
            if rec not in wavs:
                raise KaldiDirError(f"{d / 'segments'}:{n}: recording {rec!r} not in wav.scp")
            segments[utt] = (rec, start, end)

    def resolve(p: str) -> str:
        # Kaldi scripts run from the recipe root, so relative paths are relative to the
        # current directory; fall back to the data dir for self-contained dirs
        path = Path(p)
        if path.is_absolute() or path.exists():
            return str(path.absolute())
        return str(d / path)

    utts: list[Utterance] = []
    for utt, (n, text) in sorted(texts.items()):
        speaker = spk[utt][1].strip() if utt in spk else None
        if segments:
            if utt not in segments:
                raise KaldiDirError(f"{d / 'text'}:{n}: utterance {utt!r} not in segments")
            rec, start, end = segments[utt]
            utts.append(Utterance(utt, resolve(wavs[rec]), end - start, text, speaker, start, rec))
        else:
            if utt not in wavs:
                raise KaldiDirError(f"{d / 'text'}:{n}: utterance {utt!r} not in wav.scp")
            audio = resolve(wavs[utt])
            duration, _, _ = audio_info(audio)
            utts.append(Utterance(utt, audio, duration, text, speaker))
    return utts


def _fmt_time(x: float) -> str:
    """Seconds with 2-4 decimals: Kaldi's usual ``%.2f`` unless more precision is present."""
    s = f"{x:.4f}"
    while s.endswith("0") and len(s.split(".")[1]) > 2:
        s = s[:-1]
    return s


def export_kaldi_dir(utterances: list[Utterance], data_dir: str | Path) -> None:
    """Write a Kaldi data dir; ``segments`` only if some utterance is a segment.

    Utterances without a speaker get themselves as speaker (Kaldi's convention for
    speaker-independent data).
    """
    d = Path(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    utts = sorted(utterances, key=lambda u: u.id)
    segmented = any(u.offset or u.recording is not None for u in utts)
    wav_lines: dict[str, str] = {}
    seg_lines = []
    for u in utts:
        if segmented:
            rec = u.recording or Path(u.audio).stem
            if wav_lines.setdefault(rec, u.audio) != u.audio:
                raise KaldiDirError(
                    f"recording id {rec!r} names two files ({wav_lines[rec]}, {u.audio}); "
                    "set distinct `recording` fields in the manifest"
                )
            seg_lines.append(
                f"{u.id} {rec} {_fmt_time(u.offset)} {_fmt_time(u.offset + u.duration)}\n"
            )
        else:
            wav_lines[u.id] = u.audio
    (d / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in sorted(wav_lines.items())))
    (d / "text").write_text("".join(f"{u.id} {u.text}\n" for u in utts), encoding="utf-8")
    (d / "utt2spk").write_text("".join(f"{u.id} {u.speaker or u.id}\n" for u in utts))
    spk2utt: dict[str, list[str]] = {}
    for u in utts:
        spk2utt.setdefault(u.speaker or u.id, []).append(u.id)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(v)}\n" for s, v in sorted(spk2utt.items())))
    if segmented:
        (d / "segments").write_text("".join(seg_lines))
    elif (d / "segments").exists():
        (d / "segments").unlink()  # a stale one would re-segment the new wav.scp
