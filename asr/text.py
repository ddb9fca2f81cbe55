"""Text normalisation shared by tokenizer training, LM building and scoring.

Training targets and scoring references must be normalised the same way, or WER measures
the normaliser instead of the model; every module calls :func:`normalize_text`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

# Kaldi/WSJ-style non-speech markers, removed before scoring as the WSJ recipes do.
DEFAULT_NOISE_TOKENS: tuple[str, ...] = (
    "<noise>",
    "<unk>",
    "[noise]",
    "[laughter]",
    "<spoken_noise>",
)

_PUNCT = re.compile(r"[^\w\s'<>\[\]]")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class TextNormalizer:
    """How transcripts are normalised.

    :param lowercase: fold case.
    :param remove_punctuation: drop punctuation except apostrophes inside words.
    :param noise_tokens: tokens removed entirely (compared case-insensitively).
    """

    lowercase: bool = True
    remove_punctuation: bool = True
    noise_tokens: tuple[str, ...] = field(default=DEFAULT_NOISE_TOKENS)

    def __call__(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text)
        noise = {t.lower() for t in self.noise_tokens}
        words = [w for w in text.split() if w.lower() not in noise]
        text = " ".join(words)
        if self.lowercase:
            text = text.lower()
        if self.remove_punctuation:
            text = _PUNCT.sub(" ", text)
            # apostrophes only survive between letters ("don't"), not as quotes
            text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
        return _SPACES.sub(" ", text).strip()


def normalize_text(text: str, normalizer: TextNormalizer | None = None) -> str:
    """Normalise one transcript with ``normalizer`` (the default: lowercase, no punctuation)."""
    return (normalizer or TextNormalizer())(text)


def normalize_lines(lines: Iterable[str], normalizer: TextNormalizer | None = None) -> list[str]:
    """Normalise many transcripts with the same normaliser."""
    norm = normalizer or TextNormalizer()
    return [norm(line) for line in lines]
