"""WSJ (LDC93S6B "CSR-I (WSJ0)" + LDC94S13B "CSR-II (WSJ1)") from the LDC discs to manifests.

The Python counterpart of Kaldi's ``egs/wsj/s5/local/wsj_data_prep.sh`` (with ``ndx2flist.pl``,
``find_transcripts.pl`` and ``normalize_transcript.pl``), so a WSJ owner needs neither Kaldi nor
``sph2pipe``: audio stays in the ``.wv1`` files, read natively by :mod:`asr.audio`.

- The disc index files (``.ndx``) name each split's utterances: ``11_1_1:wsj0/si_tr_s/011/
  011c0201.wv1`` (disc, then the path on it; some entries lack ``.wv1``; ``;`` lines are
  comments). Discs are found however they were copied: folders ``11-1.1``, ``11_1_1`` or
  ``11_1.1``, any letter case, or the contents of all discs merged into one folder.
- Transcripts come from the ``.dot`` files (one per speaker session, ``text (uttid)`` lines),
  wherever they are under the given folders, normalised by :func:`normalize_transcript`.
- Speaker = the first three characters of the utterance id.
- Every utterance's audio is decoded once (in parallel) so that a truncated or corrupt file is
  reported here, with its path, instead of in the middle of training; whatever cannot be used
  is counted, and the summary at the end says how many utterances each split lost and why.

Writes ``<split>.jsonl`` manifests (:mod:`asr.data.manifest`) and Kaldi data dirs
(:mod:`asr.data.kaldi`). ``asr-data wsj lm`` turns the LDC's own ``compress``-ed ARPA language
model into a plain ARPA file. Commands: ``asr-data wsj prepare|lm``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# --------------------------------------------------------------------------------------------
# what the recipe reads from the discs


@dataclass(frozen=True)
class IndexFile:
    """One ``.ndx`` file: which corpus and disc hold it, and its path on the disc."""

    corpus: str  # "wsj0" or "wsj1"
    disc: str  # normalised disc id, e.g. "11_13_1"
    path: str  # path on the disc, starting with wsj0/ or wsj1/


#: the splits and the index files listing them (Kaldi's wsj_data_prep.sh), with the utterance
#: count Kaldi's recipe finds, printed beside ours as a check
SPLITS: dict[str, tuple[tuple[IndexFile, ...], int]] = {
    "train_si284": (
        (
            IndexFile("wsj0", "11_13_1", "wsj0/doc/indices/train/tr_s_wv1.ndx"),
            IndexFile("wsj1", "13_34_1", "wsj1/doc/indices/si_tr_s.ndx"),
        ),
        37416,
    ),
    "train_si84": ((IndexFile("wsj0", "11_13_1", "wsj0/doc/indices/train/tr_s_wv1.ndx"),), 7138),
    "test_dev93": ((IndexFile("wsj1", "13_34_1", "wsj1/doc/indices/h1_p0.ndx"),), 503),
    "test_eval92": ((IndexFile("wsj0", "11_13_1", "wsj0/doc/indices/test/nvp/si_et_20.ndx"),), 333),
}
DEFAULT_SPLITS = ("train_si284", "test_dev93", "test_eval92")
#: listed in WSJ0's training index but not on the discs (Kaldi drops it the same way)
EXCLUDED_PREFIXES = ("11_2_1:wsj0/si_tr_s/401/",)
#: the 20k-word open-vocabulary trigram with non-verbalised punctuation, as Kaldi's recipe uses
LM_FILE = IndexFile("wsj1", "13_32_1", "wsj1/doc/lng_modl/base_lm/tcb20onp.z")
LDC_CATALOG = {"wsj0": "LDC93S6B (CSR-I, WSJ0)", "wsj1": "LDC94S13B (CSR-II, WSJ1)"}
NOISE = "<NOISE>"
SPOKEN_NOISE = "<SPOKEN_NOISE>"

_DISC = re.compile(r"^(\d{2})[-_](\d{1,2})[-_.](\d)$")


def disc_id(name: str) -> str | None:
    """``11-1.1``, ``11_1_1``, ``11_1.1`` -> ``11_1_1``; None for other folder names."""
    m = _DISC.match(name)
    return "_".join(m.groups()) if m else None


def disc_folder(disc: str) -> str:
    """The LDC's spelling of a disc folder: ``11_1_1`` -> ``11-1.1``."""
    a, b, c = disc.split("_")
    return f"{a}-{b}.{c}"


class WSJLayoutError(ValueError):
    """A missing folder, disc or index: the message names the expected path."""


# --------------------------------------------------------------------------------------------
# finding files on the discs


class DiscTree:
    """Every file under the corpus folders, keyed by its path on the disc (lower case).

    ``find(disc, "wsj0/si_tr_s/011/011c0201.wv1")`` prefers the file on the named disc and
    otherwise takes the only file with that path (discs merged into one folder, or a disc
    folder renamed). One walk over the folders, as Kaldi's ``find`` does.
    """

    def __init__(self, roots: dict[str, Path]) -> None:
        self.roots = roots
        self.files: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
        self.dots: dict[str, Path] = {}  # speaker-session key (e.g. "011c02") -> .dot file
        self.discs: set[str] = set()
        self.missing_discs: Counter = Counter()  # (corpus, disc) -> files listed on it
        walked: set[Path] = set()
        for corpus, root in roots.items():
            if not root.is_dir():
                raise WSJLayoutError(
                    f"--{corpus} {root}: folder not found; pass the folder holding the "
                    f"{LDC_CATALOG[corpus]} discs"
                )
            if root.resolve() not in walked:  # both corpora may live in one folder
                walked.add(root.resolve())
                self._walk(root)

    def _walk(self, root: Path) -> None:
        # the merged contents of the discs' wsj0/ folders, given as the root itself
        children = {c.name.lower() for c in root.iterdir() if c.is_dir()}
        merged_here = root.name.lower() in ("wsj0", "wsj1") and not (
            children & {"wsj0", "wsj1"} or any(map(disc_id, children))
        )
        base = (root.name,) if merged_here else ()
        for folder, dirnames, filenames in os.walk(root, followlinks=True):
            parts = base + Path(folder).relative_to(root).parts
            discs = [(i, d) for i, d in enumerate(map(disc_id, parts)) if d]
            disc = discs[-1][1] if discs else None
            if disc:
                self.discs.add(disc)
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            lower = [p.lower() for p in parts]
            # a path on a disc starts at its first wsj0/wsj1 (wsj1/doc/indices/wsj1/... has two)
            after = discs[-1][0] + 1 if discs else 0
            start = next(
                (i for i in range(after, len(lower)) if lower[i] in ("wsj0", "wsj1")), None
            )
            for name in filenames:
                low = name.lower()
                if low.endswith(".wv2"):
                    continue  # the second microphone: never used, half of all files
                if low.endswith(".dot"):
                    self.dots.setdefault(low[:6], Path(folder) / name)
                if start is not None:
                    key = "/".join([*lower[start:], low])
                    self.files[key].append((disc, os.path.join(folder, name)))

    def find(self, disc: str | None, rel: str) -> Path | None:
        found = self.files.get(rel.lower())
        if not found:
            return None
        for d, path in found:
            if d == disc:
                return Path(path)
        return Path(found[0][1]) if len(found) == 1 or disc is None else None

    def expected(self, corpus: str, disc: str, rel: str) -> Path:
        """Where a file should be, for error messages (the LDC's folder spelling)."""
        return self.roots[corpus] / disc_folder(disc) / rel

    def index(self, ndx: IndexFile) -> Path:
        path = self.find(ndx.disc, ndx.path)
        if path is None:
            where = self.expected(ndx.corpus, ndx.disc, ndx.path)
            raise WSJLayoutError(
                f"WSJ index not found: {where} (disc {disc_folder(ndx.disc)} of "
                f"{LDC_CATALOG[ndx.corpus]}); pass --{ndx.corpus} the folder holding that "
                "disc, or all its discs merged"
            )
        return path


# --------------------------------------------------------------------------------------------
# indices and transcripts


@dataclass(frozen=True)
class IndexEntry:
    """One audio file named by an index: ``disc`` (normalised) and path on the disc."""

    disc: str
    path: str
    source: str  # "index-file:line", for messages

    @property
    def utt_id(self) -> str:
        return Path(self.path).stem.lower()


_NDX_LINE = re.compile(r"^([0-9]+(?:[_-][0-9]+)*(?:[._][0-9]+)?)\s*:\s*(\S+)\s*$")


def parse_index(lines: Iterable[str], source: str = "index") -> tuple[list[IndexEntry], list[str]]:
    """``(entries, problems)`` of an ``.ndx`` file; entries without an extension get ``.wv1``.

    Comment (``;``) and blank lines are skipped; a line that is neither is a problem (one line
    each, naming ``source:line``), not a failure.
    """
    entries, problems = [], []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        m = _NDX_LINE.match(line)
        disc = disc_id(m.group(1)) if m else None
        if m is None or disc is None:
            problems.append(f"{source}:{n}: not an index entry (`disc:path`): {line!r}")
            continue
        path = m.group(2).lstrip("/")
        if not Path(path).suffix:
            path += ".wv1"  # e.g. the eval92 index (si_et_20.ndx) omits it
        entries.append(IndexEntry(disc, path, f"{source}:{n}"))
    return entries, problems


_DOT_LINE = re.compile(r"^(.*\S)?\s*\((\w{8})\)\s*$")


def parse_dot(lines: Iterable[str]) -> dict[str, str]:
    """``{utt id (lower case): raw transcript}`` of one ``.dot`` file."""
    out: dict[str, str] = {}
    for raw in lines:
        m = _DOT_LINE.match(raw.rstrip("\r\n"))
        if m:
            out[m.group(2).lower()] = (m.group(1) or "").strip()
    return out


# --------------------------------------------------------------------------------------------
# transcript normalisation

#: spoken names of punctuation marks (after their prefix: ``,COMMA``, ``"DOUBLE-QUOTE``)
PUNCTUATION_NAMES = frozenset(
    """COMMA PERIOD QUOTE DOUBLE-QUOTE UNQUOTE END-QUOTE CLOSE-QUOTE END-OF-QUOTE IN-QUOTES
    OPEN-QUOTE SINGLE-QUOTE INNER-QUOTE END-INNER-QUOTE APOSTROPHE LEFT-PAREN RIGHT-PAREN PAREN
    PARENS PARENTHESES PARENTHESIS CLOSE-PAREN CLOSE-PARENTHESES END-PAREN END-PARENS
    END-PARENTHESES END-THE-PAREN END-OF-PAREN UN-PARENTHESES BEGIN-PARENS IN-PARENTHESES
    IN-PARENTHESIS OPEN-PAREN OPEN-PARENTHESES PARENTHETICALLY HYPHEN DASH SEMI-COLON COLON
    QUESTION-MARK EXCLAMATION-POINT EXCLAMATION-MARK LEFT-BRACE RIGHT-BRACE BRACE OPEN-BRACE
    CLOSE-BRACE AMPERSAND PERCENT SLASH ELLIPSIS SHARP-SIGN DECIMAL DOT FULL-STOP POINT""".split()
)
#: verbalised punctuation that is an ordinary spoken word even in non-verbalised reading
#: ("ten %PERCENT", "three .POINT five"; Kaldi's normalize_transcript.pl keeps these two)
ALWAYS_SPOKEN = {"%PERCENT": "PERCENT", ".POINT": "POINT"}
_VERBAL_PUNCT = re.compile(r"^([,.\"'()\-;:?!{}&%/#]+)([A-Z][A-Z-]*)$")
_DELETE = re.compile(r"^(\[<[^\]]*\]|\[[^\]]*>\]|\[[^\]]*/\]|\[/[^\]]*\]|~+|\.)$")
_NOISE = re.compile(r"^\[[^\]]*\]$")
_VERBAL_DELETION = re.compile(r"^<([\w'.-]+)>$")


def normalize_transcript(text: str, verbalized_punctuation: str = "keep") -> str:
    """A ``.dot`` transcript in Kaldi's WSJ conventions (upper case, one noise token).

    - ``[loud_breath]``, ``[door_slam]`` ... (non-speech events) -> ``<NOISE>``;
    - ``[<door_slam]``, ``[door_slam>]`` (noise over the previous / next word), ``[phone_ring/]``,
      ``[/phone_ring]`` (start / end of a long noise), ``~`` (truncated recording) and ``.``
      (a pause) are dropped;
    - ``<word>`` (a word the reader said and then deleted: it is in the audio) -> ``WORD``;
    - ``*word*`` (mispronounced), ``wo:rd`` (lengthened), ``!word`` (emphasised) -> ``WORD``;
    - word fragments (``th-``, ``-ing``, ``ex(pect)-``: part of a word, no pronunciation) ->
      ``<SPOKEN_NOISE>``;
    - verbalised punctuation (``,COMMA``, ``.PERIOD``, ``"DOUBLE-QUOTE``; WSJ0 readers said these
      aloud in half of the training sessions): ``keep`` writes the spoken words (``COMMA``,
      ``DOUBLE QUOTE``), ``drop`` removes them; ``%PERCENT``/``.POINT`` are words either way;
    - backslash escapes (``I\\. B\\. M\\.``, ``isn\\'t``) are undone; everything is upper case.
    """
    if verbalized_punctuation not in ("keep", "drop"):
        raise ValueError(
            f"verbalized_punctuation must be keep or drop, not {verbalized_punctuation!r}"
        )
    out: list[str] = []
    for token in text.split():
        w = token.upper().replace("\\", "").replace("`", "'")
        if w in ALWAYS_SPOKEN:
            out.append(ALWAYS_SPOKEN[w])
            continue
        if _DELETE.match(w):
            continue
        if _NOISE.match(w):
            out.append(NOISE)
            continue
        m = _VERBAL_PUNCT.match(w)
        if m and m.group(2) in PUNCTUATION_NAMES:
            if verbalized_punctuation == "keep":
                out.extend(m.group(2).split("-"))
            continue
        w = w.replace("*", "")
        m = _VERBAL_DELETION.match(w)
        if m:
            w = m.group(1)
        if w.startswith("-") or w.endswith("-") or "(" in w or ")" in w:
            out.append(SPOKEN_NOISE)
            continue
        w = w.replace(":", "").replace("!", "")
        if w.strip("<>"):
            out.append(w)
    return " ".join(out)


# --------------------------------------------------------------------------------------------
# preparing the splits


@dataclass
class SplitReport:
    """What happened to one split: kept utterances and what was lost, by reason."""

    name: str
    listed: int = 0
    kept: int = 0
    hours: float = 0.0
    lost: Counter = field(default_factory=Counter)
    kaldi_count: int = 0

    def line(self) -> str:
        lost = ", ".join(f"{n} {why}" for why, n in sorted(self.lost.items())) or "none"
        return (
            f"{self.name}: {self.kept} utterances, {self.hours:.2f} h (listed {self.listed}, "
            f"Kaldi's recipe finds {self.kaldi_count}); lost: {lost}"
        )


class Problems:
    """Prints one line per problem (up to ``limit`` per kind, then a count)."""

    def __init__(self, limit: int = 20, stream=None) -> None:
        self.limit = limit
        self.shown: Counter = Counter()
        self.stream = stream or sys.stderr

    def report(self, kind: str, message: str) -> None:
        self.shown[kind] += 1
        if self.shown[kind] <= self.limit:
            print(f"asr-data wsj: {message}", file=self.stream)
        elif self.shown[kind] == self.limit + 1:
            print(f"asr-data wsj: ... more '{kind}' problems not shown", file=self.stream)


EMPTY_RECORDING = "audio has no samples (an empty recording)"


@dataclass
class _Candidate:
    utt_id: str
    audio: Path
    text: str
    speaker: str
    split: str


def _check_audio(path: str) -> tuple[str, float | None, str | None]:
    """Decode one file fully: (path, seconds or None, error or None)."""
    from asr.sphere import SphereError, read_sphere

    try:
        samples, header = read_sphere(path)
    except (SphereError, OSError) as e:
        return path, None, str(e)
    if samples.shape[0] == 0:  # WSJ1's 47hc0418 and 46uc030b are empty on the discs too
        return path, None, EMPTY_RECORDING
    return path, samples.shape[0] / header.sample_rate, None


def _decode_all(
    paths: list[str], jobs: int, progress: bool
) -> dict[str, tuple[float | None, str | None]]:
    from tqdm import tqdm

    from asr.shorten import native_decoder

    native_decoder()  # build (or load) once here, before the workers start
    results: dict[str, tuple[float | None, str | None]] = {}
    bar = tqdm(total=len(paths), unit="utt", desc="decode .wv1", disable=not progress)
    if jobs <= 1:
        for p in paths:
            _, dur, err = _check_audio(p)
            results[p] = (dur, err)
            bar.update()
    else:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(jobs) as pool:
            for p, dur, err in pool.imap_unordered(_check_audio, paths, chunksize=16):
                results[p] = (dur, err)
                bar.update()
    bar.close()
    return results


def prepare_wsj(
    wsj0: str | Path | None,
    wsj1: str | Path | None,
    out_dir: str | Path,
    splits: Iterable[str] = DEFAULT_SPLITS,
    verbalized_punctuation: str = "keep",
    check_audio: bool = True,
    jobs: int = 2,
    progress: bool = True,
    problems: Problems | None = None,
) -> list[SplitReport]:
    """Write ``OUT/<split>.jsonl`` and ``OUT/kaldi/<split>/`` for each split; return reports.

    :raises WSJLayoutError: a corpus folder or index file is missing (one line naming it).
    """
    from asr.data.kaldi import export_kaldi_dir
    from asr.data.manifest import Utterance, write_manifest

    problems = problems or Problems()
    splits = list(splits)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise WSJLayoutError(f"unknown split(s) {unknown}; pick from {sorted(SPLITS)}")
    # absolute: manifests live elsewhere and resolve relative paths against their own folder
    roots = {c: Path(p).absolute() for c, p in (("wsj0", wsj0), ("wsj1", wsj1)) if p}
    needed = {ndx.corpus for s in splits for ndx in SPLITS[s][0]}
    absent = sorted(needed - set(roots))
    if absent:
        raise WSJLayoutError(
            f"splits {splits} need --{absent[0]} (the folder holding the "
            f"{LDC_CATALOG[absent[0]]} discs)"
        )
    tree = DiscTree(roots)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    transcripts: dict[str, dict[str, str]] = {}  # dot key -> {utt: text}
    candidates: list[_Candidate] = []
    reports: dict[str, SplitReport] = {}
    for split in splits:
        indices, kaldi_count = SPLITS[split]
        report = reports[split] = SplitReport(split, kaldi_count=kaldi_count)
        seen: set[str] = set()
        for ndx in indices:
            path = tree.index(ndx)
            entries, bad_lines = parse_index(
                path.read_text(errors="replace").splitlines(), str(path)
            )
            for message in bad_lines:
                problems.report("index line", message)
            for e in entries:
                if any(f"{e.disc}:{e.path}".lower().startswith(x) for x in EXCLUDED_PREFIXES):
                    continue
                if e.utt_id in seen:
                    continue
                seen.add(e.utt_id)
                report.listed += 1
                candidate = _candidate(
                    e,
                    split,
                    tree,
                    transcripts,
                    verbalized_punctuation,
                    report,
                    problems,
                    ndx.corpus,
                )
                if candidate is not None:
                    candidates.append(candidate)
    durations: dict[str, tuple[float | None, str | None]] = {}
    if check_audio:
        durations = _decode_all(sorted({str(c.audio) for c in candidates}), jobs, progress)
    else:
        from asr.audio import AudioError, audio_info

        for c in candidates:
            try:
                durations[str(c.audio)] = (audio_info(c.audio)[0], None)
            except AudioError as e:
                durations[str(c.audio)] = (None, e.reason)
    kept: dict[str, list[Utterance]] = defaultdict(list)
    for c in candidates:
        seconds, error = durations[str(c.audio)]
        if error is not None or seconds is None:
            reports[c.split].lost[
                "empty audio" if error == EMPTY_RECORDING else "unreadable audio"
            ] += 1
            problems.report("audio", f"{c.audio}: {error} (utterance {c.utt_id} skipped)")
            continue
        kept[c.split].append(Utterance(c.utt_id, str(c.audio), seconds, c.text, c.speaker))
    for split in splits:
        utts = sorted(kept[split], key=lambda u: u.id)
        write_manifest(out / f"{split}.jsonl", utts)
        export_kaldi_dir(utts, out / "kaldi" / split)
        reports[split].kept = len(utts)
        reports[split].hours = sum(u.duration for u in utts) / 3600
    for (corpus, disc), n in sorted(tree.missing_discs.items()):
        problems.report(
            "missing disc",
            f"disc {disc_folder(disc)} of {LDC_CATALOG[corpus]} not found under "
            f"{roots[corpus]}: {n} listed utterance(s) are on it; copy the disc to "
            f"{roots[corpus] / disc_folder(disc)}",
        )
    return [reports[s] for s in splits]


def _candidate(
    e: IndexEntry,
    split: str,
    tree: DiscTree,
    transcripts: dict[str, dict[str, str]],
    verbalized_punctuation: str,
    report: SplitReport,
    problems: Problems,
    corpus: str,
) -> _Candidate | None:
    """An index entry with its audio and transcript, or None (reported and counted)."""
    audio = tree.find(e.disc, e.path)
    if audio is None:
        report.lost["audio missing"] += 1
        where = tree.expected(corpus, e.disc, e.path)
        hint = ""
        if tree.discs and e.disc not in tree.discs:  # disc folders exist, this one does not
            tree.missing_discs[(corpus, e.disc)] += 1
            hint = f" (disc {disc_folder(e.disc)} not found at all)"
        problems.report(
            "missing audio",
            f"{e.utt_id}: audio not found: {where}{hint}; listed at {e.source}; copy the file "
            f"there from disc {disc_folder(e.disc)}",
        )
        return None
    key = e.utt_id[:6]
    if key not in transcripts:
        dot = tree.dots.get(key)
        transcripts[key] = parse_dot(dot.read_text(errors="replace").splitlines()) if dot else {}
    raw = transcripts[key].get(e.utt_id)
    if raw is None:
        report.lost["no transcript"] += 1
        dot = tree.dots.get(key)
        where = f"not in {dot}" if dot else f"no {key}00.dot file under the corpus folders"
        problems.report("no transcript", f"{e.utt_id}: {audio} has no transcript ({where})")
        return None
    if raw.strip() == "~~":
        report.lost["null recording (~~)"] += 1
        return None
    text = normalize_transcript(raw, verbalized_punctuation)
    if not any(w not in (NOISE, SPOKEN_NOISE) for w in text.split()):
        report.lost["no words in transcript"] += 1
        problems.report("no words", f"{e.utt_id}: transcript has no words: {raw!r}")
        return None
    return _Candidate(e.utt_id, audio, text, e.utt_id[:3], split)


# --------------------------------------------------------------------------------------------
# the LDC's language models


def read_compressed_text(path: str | Path) -> bytes:
    """The bytes of a Unix ``compress`` (``.z``/``.Z``), gzip or plain file."""
    import gzip

    import ncompress

    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x9d":
        try:
            return ncompress.decompress(data)
        except Exception as e:  # noqa: BLE001 - ncompress raises ValueError/RuntimeError
            raise ValueError(f"{path}: corrupt or truncated compress (.z) file ({e})") from None
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    return data


_DATA_LINE = re.compile(r"^\\data\\[ \t]*$", re.MULTILINE)


def ldc_arpa_lines(text: str, source: str = "LM") -> Iterator[str]:
    """ARPA lines from an LDC LM file: skip the free text before ``\\data\\``, lower-case words.

    Lower case because transcripts and CMUdict spellings are normalised to lower case; the
    LDC models are all upper case, and ``<UNK>`` becomes KenLM's ``<unk>``.
    """
    m = _DATA_LINE.search(text)
    if m is None:
        raise ValueError(f"{source}: no \\data\\ line: not an ARPA language model")
    start = m.start()
    unigrams: set[str] = set()
    section = 0
    for line in text[start:].splitlines():
        line = line.lower()
        if line.startswith("\\") and line.endswith("-grams:"):
            section = int(line[1:].split("-")[0])
        elif section == 1 and line.strip() and not line.startswith("\\"):
            word = line.split()[1]
            if word in unigrams:
                raise ValueError(f"{source}: {word!r} occurs twice once lower-cased")
            unigrams.add(word)
        yield line


def convert_ldc_lm(src: str | Path, out: str | Path, words_out: str | Path | None = None) -> int:
    """Write the LDC LM ``src`` as plain ARPA to ``out`` and its words to ``words_out``.

    Returns the number of words (``<s>``, ``</s>``, ``<unk>`` excluded).
    """
    text = read_compressed_text(src).decode("latin-1")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    words: list[str] = []
    section = 0
    with open(out, "w", encoding="utf-8") as f:
        for line in ldc_arpa_lines(text, str(src)):
            f.write(line + "\n")
            if line.startswith("\\") and line.endswith("-grams:"):
                section = int(line[1:].split("-")[0])
            elif section == 1 and line.strip() and not line.startswith("\\"):
                word = line.split()[1]
                if word not in ("<s>", "</s>", "<unk>"):
                    words.append(word)
    words_path = Path(words_out) if words_out else out.with_name("words.txt")
    words_path.write_text("".join(w + "\n" for w in sorted(words)), encoding="utf-8")
    return len(words)


# --------------------------------------------------------------------------------------------
# CLI (asr-data wsj ...)


def _cmd_prepare(args: argparse.Namespace) -> int:
    problems = Problems(limit=args.show)
    reports = prepare_wsj(
        args.wsj0,
        args.wsj1,
        args.out_dir,
        args.splits,
        args.verbalized_punctuation,
        check_audio=not args.no_audio_check,
        jobs=args.jobs,
        progress=not args.no_progress,
        problems=problems,
    )
    lost = sum(sum(r.lost.values()) for r in reports)
    for r in reports:
        print(r.line())
    print(
        f"wrote {', '.join(f'{r.name}.jsonl' for r in reports)} and kaldi/ to {args.out_dir}; "
        f"{lost} listed utterance(s) lost in all (reasons above)"
    )
    empty = [r.name for r in reports if r.kept == 0]
    if empty:
        print(f"asr-data wsj: error: no usable utterances in {empty}", file=sys.stderr)
        return 1
    return 0


def _cmd_lm(args: argparse.Namespace) -> int:
    src = args.lm_file
    if src is None:
        if args.wsj1 is None:
            raise WSJLayoutError("asr-data wsj lm needs --wsj1 (or --lm-file)")
        tree = DiscTree({"wsj1": Path(args.wsj1)})
        ndx = IndexFile("wsj1", LM_FILE.disc, str(Path(LM_FILE.path).with_name(args.name + ".z")))
        src = tree.find(ndx.disc, ndx.path)
        if src is None:
            raise WSJLayoutError(
                f"LDC language model not found: {tree.expected('wsj1', ndx.disc, ndx.path)} "
                f"(disc {disc_folder(ndx.disc)} of {LDC_CATALOG['wsj1']})"
            )
    n = convert_ldc_lm(src, args.out, args.words)
    print(f"wrote {args.out} ({n} words) from {src}", file=sys.stderr)
    return 0


def add_wsj_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``asr-data wsj prepare|lm``."""
    w = sub.add_parser("wsj", help="WSJ (LDC93S6B + LDC94S13B) from the LDC discs")
    wsub = w.add_subparsers(dest="wsj_command", required=True)
    p = wsub.add_parser("prepare", help="manifests and Kaldi dirs of the WSJ splits")
    p.add_argument(
        "--wsj0", help="folder holding the WSJ0 discs (11-1.1 ... 11-13.1) or their merged contents"
    )
    p.add_argument(
        "--wsj1", help="folder holding the WSJ1 discs (13-1.1 ... 13-34.1) or their merged contents"
    )
    p.add_argument("--out-dir", required=True)
    p.add_argument("--splits", nargs="+", default=list(DEFAULT_SPLITS), choices=sorted(SPLITS))
    p.add_argument("--verbalized-punctuation", choices=("keep", "drop"), default="keep")
    p.add_argument("--jobs", type=int, default=2, help="processes decoding the audio check")
    p.add_argument("--no-audio-check", action="store_true", help="durations from headers only")
    p.add_argument("--show", type=int, default=20, help="problems printed per kind")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_prepare)
    lm = wsub.add_parser("lm", help="the LDC's compressed ARPA LM as plain ARPA + word list")
    lm.add_argument("--wsj1", help="folder holding the WSJ1 discs")
    lm.add_argument(
        "--name",
        default=Path(LM_FILE.path).stem,
        help="LM file on disc 13-32.1 (default: %(default)s)",
    )
    lm.add_argument("--lm-file", help="an LM file to convert instead (.z, .gz or text)")
    lm.add_argument("--out", required=True, help="ARPA file to write")
    lm.add_argument("--words", help="word list to write (default: words.txt beside --out)")
    lm.set_defaults(func=_cmd_lm)
