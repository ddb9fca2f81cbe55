"""Real English sentences for the synthetic corpus, read from Debian's fortune cookie files.

The synthetic corpus (:mod:`asr.data.synth`) needs thousands of distinct sentences with a
realistic vocabulary, available offline; templates would let a model memorise the grammar.
The ``fortunes`` Debian package (``apt-get install fortunes``) ships about 2.7 MB of quotations,
jokes and literature under ``/usr/share/games/fortunes``. This module cuts those cookies into
clean sentences that espeak-ng can read aloud and whose normalised transcript matches what is
spoken (no digits, symbols or acronyms that a synthesiser would expand or spell out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from asr.text import normalize_text

FORTUNE_DIR = Path("/usr/share/games/fortunes")
INSTALL_HINT = "apt-get install fortunes"
# Files that are pictures or not English prose.
EXCLUDED_FILES: tuple[str, ...] = ("ascii-art", "translate-me")

# An attribution line ("-- Mark Twain") or a signature/list marker ends the speakable text.
_ATTRIBUTION = re.compile(r"^\s*(--|―|~~)")
# Sentence ends: terminal punctuation, optionally closing quotes/brackets, then whitespace.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
# Characters espeak-ng reads as punctuation (pauses) and the normaliser drops silently;
# anything else (digits, $, %, &, /, @, #, ...) is spoken as a word and breaks the transcript.
_SPEAKABLE = re.compile(r"^[A-Za-z' .,;:!?\"()\-]+$")
_ACRONYM = re.compile(r"\b[A-Z]{2,}\b")
# Abbreviations whose full stop is not a sentence end; sentences holding one are dropped.
_ABBREVIATION = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|Gen|Col|Lt|Capt|Rev|vs|etc|e\.g|i\.e)\.")
_ONE_LETTER_WORDS = frozenset({"a", "i", "o"})
_TRANSCRIPT = re.compile(r"^[a-z']+( [a-z']+)*$")


@dataclass(frozen=True)
class Sentence:
    """One sentence: what espeak-ng is given and the normalised transcript it produces.

    :param spoken: original casing and pause punctuation (gives espeak-ng natural prosody).
    :param text: ``normalize_text(spoken)``: lowercase letters, apostrophes and single spaces.
    """

    spoken: str
    text: str


@dataclass(frozen=True)
class SentenceFilter:
    """Which sentences are kept.

    :param min_words: fewest words (shorter ones are mostly fragments and exclamations).
    :param max_words: most words (keeps utterances under ~8 s at normal speaking rates).
    """

    min_words: int = 3
    max_words: int = 20


def _cookies(path: Path) -> list[str]:
    """Split a fortune file into cookies (``%`` lines separate them)."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    return [c for c in re.split(r"^%\s*$", raw, flags=re.MULTILINE) if c.strip()]


def _speakable_text(cookie: str) -> str:
    """Join a cookie's prose lines, stopping at the first attribution line."""
    lines = []
    for line in cookie.splitlines():
        if _ATTRIBUTION.match(line):
            break
        lines.append(line.strip())
    return " ".join(lines)


def _clean(sentence: str, filt: SentenceFilter) -> Sentence | None:
    """Return the sentence if espeak-ng will say exactly its transcript, else ``None``."""
    spoken = re.sub(r"\s+", " ", sentence).strip()
    # Conventional ASCII quoting (``like this'') and dashes written as "--".
    spoken = spoken.replace("``", '"').replace("''", '"').replace("--", ", ")
    spoken = spoken.strip(" -,;:")
    # A sentence starting in lower case is the tail of one cut at a line break.
    if not spoken or not spoken[0].isupper() or not _SPEAKABLE.match(spoken):
        return None
    if _ACRONYM.search(spoken) or _ABBREVIATION.search(spoken):
        return None
    text = normalize_text(spoken)
    if not _TRANSCRIPT.match(text):
        return None
    words = text.split()
    if not filt.min_words <= len(words) <= filt.max_words:
        return None
    # Lone letters ("Q: ...", "d a punk band") are spelled out or are cut-off fragments.
    if any(len(w) == 1 and w not in _ONE_LETTER_WORDS for w in words):
        return None
    # Hyphens and quotes become spaces in the transcript; say them as pauses only.
    spoken = re.sub(r"[\"()\-]", " ", spoken)
    return Sentence(spoken=re.sub(r"\s+", " ", spoken).strip(), text=text)


def fortune_sentences(
    source_dir: str | Path = FORTUNE_DIR, filt: SentenceFilter | None = None
) -> list[Sentence]:
    """All distinct clean sentences of the fortune files, in a fixed (file, position) order.

    Deduplication is on the normalised transcript, so two spellings of one sentence never end up
    in different splits.

    :raises FileNotFoundError: when the fortune files are missing, naming the package to install.
    """
    filt = filt or SentenceFilter()
    source_dir = Path(source_dir)
    files = (
        sorted(
            p
            for p in source_dir.iterdir()
            if p.is_file()
            and not p.is_symlink()
            and p.suffix == ""
            and p.name not in EXCLUDED_FILES
        )
        if source_dir.is_dir()
        else []
    )
    if not files:
        raise FileNotFoundError(
            f"no fortune text files in {source_dir}; install them with '{INSTALL_HINT}'"
        )
    seen: set[str] = set()
    sentences: list[Sentence] = []
    for path in files:
        for cookie in _cookies(path):
            for piece in _SENTENCE_END.split(_speakable_text(cookie)):
                sent = _clean(piece, filt)
                if sent is not None and sent.text not in seen:
                    seen.add(sent.text)
                    sentences.append(sent)
    return sentences


def vocabulary(sentences: list[Sentence]) -> set[str]:
    """Distinct words of the transcripts."""
    return {w for s in sentences for w in s.text.split()}
