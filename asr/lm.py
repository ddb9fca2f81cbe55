"""Word n-gram LMs and lexicons for beam search (``asr-lm``).

Sits beside decoding: ``asr-lm arpa`` turns normalised training text into an interpolated
modified Kneser-Ney ARPA model (Chen & Goodman 1998, the estimator of KenLM's ``lmplz`` and
SRILM's ``-kndiscount -interpolate``); ``asr-lm lexicon`` spells each word in the model's
tokens so flashlight's lexicon decoder can constrain search to real words.

Why our own estimator: KenLM's ``lmplz`` needs compiling KenLM with Boost (the pip ``kenlm``
package only *queries* models), and ``nltk.lm`` estimates KN in memory but writes no ARPA and
has no modified (three-discount) KN. Loading is still KenLM's job (bundled in flashlight-text);
an ARPA file can be converted to KenLM binary with KenLM's ``build_binary`` where available.

Estimator, per order n (highest order N):

* counts: raw counts at order N and for n-grams starting with ``<s>``; continuation counts
  (number of distinct left extensions) otherwise;
* discounts D1, D2, D3+ from the counts-of-counts of those counts (fallback 0.5/1.0/1.5 when
  the corpus is too small to estimate them, like ``lmplz --discount_fallback``);
* ``P(w|h) = max(a(hw) - D, 0) / a(h.) + gamma(h) P(w|h')`` with ``gamma(h)`` the discounted
  mass; the unigram level interpolates with the uniform distribution over the vocabulary
  (words, ``</s>``, ``<unk>``); ``gamma(h)`` is the ARPA back-off weight of ``h``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.data.tokenizer import load_tokenizer
from asr.decode import find_word_separator
from asr.text import TextNormalizer

log = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
#: log10 probability written for ``<s>`` (never predicted), as KenLM and SRILM do.
BOS_LOG10 = -99.0
#: discounts used when counts-of-counts cannot estimate them (KenLM's --discount_fallback).
FALLBACK_DISCOUNTS: tuple[float, float, float] = (0.5, 1.0, 1.5)

Ngram = tuple[str, ...]


@dataclass
class NgramConfig:
    """Options of :func:`build_kn_lm`.

    :param order: n-gram order (>= 1).
    :param prune: per-order count thresholds: n-grams of order k (k >= 2) seen at most
        ``prune[k-1]`` times are dropped (their probability mass goes to the back-off).
        Shorter lists are padded with their last value; unigrams are never pruned.
    :param normalize: normalise each line with :class:`asr.text.TextNormalizer` first.
    """

    order: int = 3
    prune: list[int] = field(default_factory=list)
    normalize: bool = True


@dataclass
class NgramLM:
    """An estimated model: ``probs[n][ngram] = log10 P``, ``backoffs[n][context] = log10 gamma``."""

    order: int
    probs: list[dict[Ngram, float]]
    backoffs: list[dict[Ngram, float]]
    discounts: list[tuple[float, float, float]]

    @property
    def vocab(self) -> list[str]:
        return [w[0] for w in self.probs[0]]

    def log10_prob(self, word: str, context: Sequence[str]) -> float:
        """Standard ARPA back-off lookup (what KenLM computes from the written file)."""
        context = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        if word not in {w[0] for w in self.probs[0]}:
            word = UNK
        bow = 0.0
        while True:
            ngram = (*context, word)
            p = self.probs[len(ngram) - 1].get(ngram)
            if p is not None:
                return bow + p
            bow += self.backoffs[len(context) - 1].get(context, 0.0) if context else 0.0
            context = context[1:]

    def write_arpa(self, path: str | Path) -> None:
        """Write the model in ARPA text format."""
        with open(path, "w", encoding="utf-8") as f:
            f.write("\\data\\\n")
            for n in range(self.order):
                f.write(f"ngram {n + 1}={len(self.probs[n])}\n")
            for n in range(self.order):
                f.write(f"\n\\{n + 1}-grams:\n")
                bows = self.backoffs[n] if n < self.order - 1 else {}
                for ngram in sorted(self.probs[n]):
                    line = f"{self.probs[n][ngram]:.7f}\t{' '.join(ngram)}"
                    if ngram in bows:
                        line += f"\t{bows[ngram]:.7f}"
                    f.write(line + "\n")
            f.write("\n\\end\\\n")


def read_arpa(path: str | Path) -> NgramLM:
    """Read an ARPA file (for checks and tests; decoding loads ARPA through KenLM)."""
    probs: list[dict[Ngram, float]] = []
    backoffs: list[dict[Ngram, float]] = []
    order = 0
    with open(path, encoding="utf-8") as f:
        section = 0
        for raw in f:
            line = raw.strip()
            if not line or line == "\\data\\":
                continue
            if line.startswith("ngram "):
                order = max(order, int(line.split()[1].split("=")[0]))
                continue
            if line.endswith("-grams:"):
                section = int(line[1:].split("-")[0])
                while len(probs) < section:
                    probs.append({})
                    backoffs.append({})
                continue
            if line == "\\end\\":
                break
            parts = line.split()
            ngram = tuple(parts[1 : 1 + section])
            probs[section - 1][ngram] = float(parts[0])
            if len(parts) > 1 + section:
                backoffs[section - 1][ngram] = float(parts[1 + section])
    return NgramLM(order, probs, backoffs, [])


def _sentences(lines: Iterable[str], normalizer: TextNormalizer | None) -> Iterable[list[str]]:
    for line in lines:
        text = normalizer(line) if normalizer else line
        words = text.split()
        if words:
            yield words


def _discounts(counts: Iterable[int]) -> tuple[float, float, float]:
    coc = Counter(c for c in counts if c <= 4)
    n1, n2, n3, n4 = (coc.get(k, 0) for k in (1, 2, 3, 4))
    try:
        y = n1 / (n1 + 2 * n2)
        d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    except ZeroDivisionError:
        return FALLBACK_DISCOUNTS
    if not all(0 < dk < k for k, dk in enumerate(d, start=1)):
        return FALLBACK_DISCOUNTS
    return d


def build_kn_lm(lines: Iterable[str], config: NgramConfig | None = None) -> NgramLM:
    """Estimate an interpolated modified Kneser-Ney model from text lines (one sentence each)."""
    cfg = config or NgramConfig()
    order = cfg.order
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    normalizer = TextNormalizer() if cfg.normalize else None

    # raw counts of every order; sentences are padded with one <s> (KenLM's convention)
    raw: list[Counter[Ngram]] = [Counter() for _ in range(order)]
    for words in _sentences(lines, normalizer):
        seq = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(seq) - n + 1):
                gram = tuple(seq[i : i + n])
                if gram == (BOS,):
                    continue
                raw[n - 1][gram] += 1
    if not raw[0]:
        raise ValueError("no words in the LM training text")

    # adjusted counts: continuation counts below the top order, except after <s>
    adj: list[dict[Ngram, int]] = [dict() for _ in range(order)]
    adj[order - 1] = dict(raw[order - 1])
    for n in range(order - 1, 0, -1):  # n = order of the lower level (1-based)
        cont: Counter[Ngram] = Counter(g[1:] for g in raw[n])
        adj[n - 1] = {g: (c if g[0] == BOS else cont.get(g, 0)) for g, c in raw[n - 1].items()}
        # an n-gram seen only sentence-initially has no left extension: fall back to its count
        for g, c in adj[n - 1].items():
            if c == 0:
                adj[n - 1][g] = raw[n - 1][g]
    vocab = {g[0] for g in raw[0]} | {EOS, UNK}
    vocab_size = len(vocab)  # <s> excluded: it is never predicted

    prune = list(cfg.prune)
    thresholds = [0] + [(prune[min(k, len(prune) - 1)] if prune else 0) for k in range(1, order)]
    if any(b < a for a, b in zip(thresholds[1:], thresholds[2:], strict=False)):
        raise ValueError(f"prune thresholds must not decrease with order: {cfg.prune}")
    kept: list[set[Ngram]] = [set(adj[0])]
    for n in range(2, order + 1):
        kept.append({g for g in adj[n - 1] if raw[n - 1][g] > thresholds[n - 1]})
    # keep every prefix and suffix of a kept n-gram so back-off paths exist in the file
    for n in range(order, 1, -1):
        for g in kept[n - 1]:
            kept[n - 2].add(g[:-1])
            kept[n - 2].add(g[1:])

    discounts = [_discounts(adj[n].values()) for n in range(order)]
    # interpolated probabilities, lowest order first
    probs: list[dict[Ngram, float]] = [dict() for _ in range(order)]  # natural probs
    gammas: list[dict[Ngram, float]] = [dict() for _ in range(order)]  # gamma[n-1][context]
    for n in range(1, order + 1):
        d1, d2, d3 = discounts[n - 1]
        by_ctx: dict[Ngram, list[tuple[str, int]]] = defaultdict(list)
        for g, c in adj[n - 1].items():
            by_ctx[g[:-1]].append((g[-1], c))
        for ctx, followers in by_ctx.items():
            total = sum(c for _, c in followers)
            kept_mass = 0.0
            alphas: dict[str, float] = {}
            for w, c in followers:
                disc = d1 if c == 1 else d2 if c == 2 else d3
                alpha = max(c - disc, 0.0) / total
                if (*ctx, w) in kept[n - 1]:
                    alphas[w] = alpha
                    kept_mass += alpha
            gamma = 1.0 - kept_mass
            if n > 1:
                gammas[n - 2][ctx] = gamma
            for w, alpha in alphas.items():
                lower = 1.0 / vocab_size if n == 1 else _lookup(probs, gammas, ctx[1:], w)
                probs[n - 1][(*ctx, w)] = alpha + gamma * lower
            if n == 1:
                for w in (EOS, UNK):
                    if (w,) not in probs[0]:
                        probs[0][(w,)] = gamma / vocab_size
    log_probs = [{g: math.log10(p) for g, p in level.items()} for level in probs]
    log_probs[0][(BOS,)] = BOS_LOG10
    backoffs: list[dict[Ngram, float]] = [dict() for _ in range(order)]
    for n in range(order - 1):
        for ctx, gamma in gammas[n].items():
            if ctx in log_probs[n]:
                backoffs[n][ctx] = math.log10(gamma) if gamma > 0 else BOS_LOG10
    return NgramLM(order, log_probs, backoffs, discounts)


def _lookup(
    probs: list[dict[Ngram, float]], gammas: list[dict[Ngram, float]], ctx: Ngram, w: str
) -> float:
    """P(w|ctx) by back-off over the (natural-probability) levels estimated so far."""
    scale = 1.0
    while True:
        p = probs[len(ctx)].get((*ctx, w))
        if p is not None:
            return scale * p
        if not ctx:
            raise KeyError(w)
        scale *= gammas[len(ctx) - 1].get(ctx, 1.0)
        ctx = ctx[1:]


# --------------------------------------------------------------------------------------------
# lexicon


def token_spelling(tokenizer: Any, word: str, separator: str | None) -> list[str] | None:
    """A word's spelling in token strings, ending in the separator for char models.

    ``tokenizer.word_to_tokens`` may return token strings or ids; ``None`` means OOV.
    """
    spelled = tokenizer.word_to_tokens(word)
    return _with_separator(tokenizer, spelled, separator) if spelled else None


def token_spellings(tokenizer: Any, word: str, separator: str | None) -> list[list[str]]:
    """Every spelling a lexicon lists for ``word`` (several pronunciations for phoneme
    tokenizers, see ``Tokenizer.word_spellings``); empty means OOV."""
    if not hasattr(tokenizer, "word_spellings"):
        one = token_spelling(tokenizer, word, separator)
        return [one] if one else []
    return [_with_separator(tokenizer, s, separator) for s in tokenizer.word_spellings(word) if s]


def _with_separator(tokenizer: Any, spelled: Any, separator: str | None) -> list[str]:
    toks = [tokenizer.tokens[t] if isinstance(t, int) else str(t) for t in spelled]
    if separator is not None and toks[-1] != separator:
        toks.append(separator)
    return toks


def _dictionary(tokenizer: Any) -> Iterable[tuple[str, list[str]]]:
    return tokenizer.dictionary() if hasattr(tokenizer, "dictionary") else ()


def write_lexicon(
    tokenizer: Any,
    words: Iterable[str],
    out: str | Path,
    separator: str | None = None,
    with_dictionary: bool = False,
) -> tuple[int, list[str]]:
    """Write ``word tok tok ...`` lines (one per spelling: phoneme tokenizers list every
    pronunciation); returns (words written, OOV words skipped).

    ``with_dictionary`` also lists every word of the tokenizer's pronouncing dictionary
    (CMUdict for phonemes) after ``words``: the open-vocabulary lexicon of WSJ-style recipes.
    Beam search can then output a word the LM text never had; KenLM scores it with the LM's
    ``<unk>`` probability. Spellings already taken are skipped. Spelling tokenizers have no
    dictionary and ignore it.
    """
    sep = find_word_separator(tokenizer, separator)
    if getattr(tokenizer, "kind", "char") in ("bpe", "unigram"):
        sep = None  # sentencepiece pieces carry the word boundary themselves
    written, oov = 0, []
    seen: set[str] = set()
    spelled_by: set[tuple[str, ...]] = set()
    with open(out, "w", encoding="utf-8") as f:
        for word in words:
            if word in seen or word in (BOS, EOS, UNK):
                continue
            seen.add(word)
            spellings = token_spellings(tokenizer, word, sep)
            if not spellings:
                oov.append(word)
                continue
            for spelling in spellings:
                f.write(f"{word}\t{' '.join(spelling)}\n")
                spelled_by.add(tuple(spelling))
            written += 1
        if with_dictionary:
            # Words the LM never saw all score <unk>, so a homophone of a word already listed
            # could only tie with it or lose: keep the first word per spelling (the dictionary
            # lists plain words before ones with an apostrophe: "dogs" before "dog's").
            added: set[str] = set()
            entries = 0
            for word, spelled in _dictionary(tokenizer):
                entries += 1
                spelling = tuple(_with_separator(tokenizer, spelled, sep))
                if word in seen or spelling in spelled_by:
                    continue
                spelled_by.add(spelling)
                added.add(word)
                f.write(f"{word}\t{' '.join(spelling)}\n")
            written += len(added)
            if not entries:
                warnings.warn(
                    f"{type(tokenizer).__name__} has no pronouncing dictionary: the lexicon "
                    "holds the given words only",
                    stacklevel=2,
                )
    return written, oov


# --------------------------------------------------------------------------------------------
# CLI


def _cmd_arpa(args: argparse.Namespace) -> int:
    text = Path(args.text)
    if not text.is_file():
        print(f"asr-lm arpa: text file not found: {text}", file=sys.stderr)
        return 2
    cfg = NgramConfig(order=args.order, prune=args.prune or [], normalize=not args.no_normalize)
    with open(text, encoding="utf-8") as f:
        lm = build_kn_lm(f, cfg)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lm.write_arpa(out)
    words_path = Path(args.words) if args.words else out.with_name("words.txt")
    words = sorted(w for w in lm.vocab if w not in (BOS, EOS, UNK))
    words_path.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    sizes = ", ".join(f"{n + 1}-grams={len(p)}" for n, p in enumerate(lm.probs))
    print(f"wrote {out} ({sizes}) and {words_path} ({len(words)} words)", file=sys.stderr)
    return 0


def _cmd_lexicon(args: argparse.Namespace) -> int:
    tokenizer = load_tokenizer(args.tokenizer)
    words_path = Path(args.words)
    if not words_path.is_file():
        print(f"asr-lm lexicon: words file not found: {words_path}", file=sys.stderr)
        return 2
    words = [
        line.split()[0]
        for line in words_path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    written, oov = write_lexicon(
        tokenizer, words, args.out, args.word_separator, with_dictionary=args.with_dictionary
    )
    print(f"wrote {args.out}: {written} words", file=sys.stderr)
    if oov:
        shown = " ".join(oov[:20]) + (" ..." if len(oov) > 20 else "")
        print(f"skipped {len(oov)} words the tokenizer cannot spell: {shown}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asr-lm", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("arpa", help="estimate a modified Kneser-Ney ARPA LM from text")
    a.add_argument("--text", required=True, help="training text, one sentence per line")
    a.add_argument("--order", type=int, default=3)
    a.add_argument("--out", required=True, help="ARPA file to write")
    a.add_argument("--words", help="word list to write (default: words.txt beside --out)")
    a.add_argument("--prune", type=int, nargs="*", help="per-order count thresholds, e.g. 0 1 1")
    a.add_argument("--no-normalize", action="store_true", help="use the text as it is")
    a.set_defaults(func=_cmd_arpa)
    lx = sub.add_parser("lexicon", help="spell words in a tokenizer's tokens")
    lx.add_argument("--tokenizer", required=True, help="tokenizer JSON (Tokenizer.save)")
    lx.add_argument("--words", required=True, help="one word per line")
    lx.add_argument("--out", required=True)
    lx.add_argument("--word-separator", help="separator token for char models (default: auto)")
    lx.add_argument(
        "--with-dictionary",
        action="store_true",
        help="also list every word of the tokenizer's pronouncing dictionary (CMUdict for "
        "phonemes): words the LM never saw get its <unk> probability",
    )
    lx.set_defaults(func=_cmd_lexicon)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asr-lm``."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
