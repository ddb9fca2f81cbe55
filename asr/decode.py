"""CTC decoding: log-probabilities -> hypotheses with word times and confidences.

Sits after the model in the data flow (``ModelPackage.log_probs`` -> here -> ``asr.transcribe``).
Two searches:

* :func:`greedy_decode` -- best token per frame, repeats collapsed, blanks removed. Fast and
  exact when the model is confident; the default.
* :class:`BeamSearchDecoder` -- wraps ``torchaudio.models.decoder.ctc_decoder`` (the
  flashlight-text beam search, KenLM bundled): lexicon-constrained search with a word n-gram
  LM (ARPA or KenLM binary), or lexicon-free search for char/BPE models, with n-best lists.

Why not ``ctcdecode`` (parlance): it cannot be installed on current PyTorch -- its sdist
lacks headers and downloads OpenFst/Boost at build time. flashlight-text ships wheels and
bundles KenLM. (pyctcdecode is pure Python and needs the ``kenlm`` package for an LM.)

Word boundaries: char tokenizers mark spaces with a separator token (``|`` by default, also
``▁`` or a literal space are recognised); sentencepiece tokenizers (bpe/unigram) start a word
with a ``▁``-prefixed piece; phoneme tokenizers use ``|`` like char ones (a phoneme set without
a separator gives one "word" per token).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

#: Token strings recognised as the word separator of char tokenizers, in order of preference.
WORD_SEPARATOR_CANDIDATES: tuple[str, ...] = ("|", "▁", " ", "<space>")
#: silence token appended for tokenizers without a separator (flashlight needs one).
VIRTUAL_SIL = "<sil>"
#: its emission log-prob in lexicon-free search: finite (no NaN) but never chosen.
NEVER_LOG_PROB = -1.0e5
#: sentencepiece marks word starts with this prefix.
SP_WORD_START = "▁"


@dataclass
class WordTiming:
    """One recognised word with its time span (seconds) and a posterior-based confidence."""

    word: str
    start: float
    end: float
    confidence: float


@dataclass
class Hypothesis:
    """A decoded utterance.

    :param text: words joined by single spaces.
    :param tokens: token ids (blanks removed, repeats collapsed).
    :param words: per-word timings.
    :param score: search score (sum of log-probs for greedy; decoder score for beam).
    :param confidence: mean per-token posterior of the emitted tokens, in [0, 1].
    """

    text: str
    tokens: list[int]
    words: list[WordTiming] = field(default_factory=list)
    score: float = 0.0
    confidence: float = 0.0


# --------------------------------------------------------------------------------------------
# word boundaries


def find_word_separator(tokenizer: Any, override: str | None = None) -> str | None:
    """The token string that marks a word boundary, or ``None`` (sentencepiece / phoneme).

    An explicit ``override`` wins; then a ``word_separator`` attribute of the tokenizer; then
    the first of :data:`WORD_SEPARATOR_CANDIDATES` present as a whole token.
    """
    tokens = list(tokenizer.tokens)
    if override is not None:
        if override not in tokens:
            raise ValueError(
                f"word separator {override!r} is not a token of this tokenizer; "
                f"pick one of its tokens or leave the option unset"
            )
        return override
    attr = getattr(tokenizer, "word_separator", None)
    if isinstance(attr, str) and attr in tokens:
        return attr
    if getattr(tokenizer, "kind", "char") in ("bpe", "unigram"):
        return None
    for cand in WORD_SEPARATOR_CANDIDATES:
        if cand in tokens:
            return cand
    return None


def _group_words(
    token_ids: Sequence[int], tokenizer: Any, separator: str | None
) -> list[list[int]]:
    """Split a token sequence into words; returns index lists into ``token_ids``."""
    tokens = tokenizer.tokens
    sp_style = separator is None and getattr(tokenizer, "kind", "") in ("bpe", "unigram")
    groups: list[list[int]] = []
    current: list[int] = []
    for i, tid in enumerate(token_ids):
        tok = tokens[tid]
        if separator is not None:
            if tok == separator:
                if current:
                    groups.append(current)
                current = []
                continue
            current.append(i)
        elif sp_style:
            if tok.startswith(SP_WORD_START) and current:
                groups.append(current)
                current = []
            if tok != SP_WORD_START:
                current.append(i)
            elif not current:
                continue
        else:  # phoneme without separator: each token is a unit
            groups.append([i])
    if current:
        groups.append(current)
    return groups


def _word_text(ids: Sequence[int], tokenizer: Any, separator: str | None) -> str:
    text = tokenizer.decode(list(ids)).strip()
    if separator is not None:
        text = text.replace(separator, " ").strip()
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------
# spelling -> word


class WordLookup:
    """Maps a word's token spelling back to a word, for greedy output of phoneme models.

    A phoneme model's best path spells words in phones (``HH AH L OW``); this turns each one
    into the lexicon word with that pronunciation, the LM's most probable one among homophones
    (``to``/``two``/``too``). A spelling that is no lexicon word may be a word the LM never
    saw: ``fallback`` (e.g. all of CMUdict, :meth:`with_fallback`) names it. Otherwise it is
    split into lexicon words when it can be (:meth:`segment`: a missed word boundary), else
    :func:`greedy_decode` writes it as the tokenizer decodes it, spaces joined by ``_``
    (``K_AE_T_S``: one wrong word, not four). For char models it only splits run-together words.
    """

    def __init__(
        self,
        spellings: dict[tuple[str, ...], str],
        log_probs: dict[str, float] | None = None,
        fallback: dict[tuple[str, ...], str] | None = None,
    ) -> None:
        self.spellings = spellings
        self.log_probs = log_probs or {}
        self.fallback = fallback or {}
        self.longest = max((len(k) for k in spellings), default=0)

    def with_fallback(self, pairs: Iterable[tuple[str, Sequence[str]]]) -> WordLookup:
        """A copy that also names spellings outside the lexicon, from ``(word, tokens)`` pairs
        (first word wins per spelling); lexicon words keep priority."""
        fallback = dict(self.fallback)
        for word, toks in pairs:
            key = tuple(t for t in toks if t not in _SEPARATORS)
            if key and key not in self.spellings:
                fallback.setdefault(key, word)
        return WordLookup(self.spellings, self.log_probs, fallback)

    @classmethod
    def from_lexicon(cls, lexicon: str | Path, lm: str | Path | None = None) -> WordLookup:
        """Read ``word<TAB>tok tok ...`` lines; ``lm`` (ARPA text) breaks ties by unigram."""
        unigram = _arpa_unigrams(Path(lm)) if lm and str(lm).endswith(".arpa") else {}
        best: dict[tuple[str, ...], tuple[float, str]] = {}
        with open(lexicon, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 2:
                    continue
                word, toks = parts[0], tuple(t for t in parts[1:] if t not in _SEPARATORS)
                score = unigram.get(word, -99.0)
                if toks not in best or score > best[toks][0]:
                    best[toks] = (score, word)
        return cls({toks: word for toks, (_, word) in best.items()}, unigram)

    def __call__(self, tokens: Sequence[str]) -> str | None:
        """The lexicon word spelled by ``tokens`` (separators ignored), else the fallback's,
        else ``None``."""
        key = tuple(t for t in tokens if t not in _SEPARATORS)
        return self.spellings.get(key) or self.fallback.get(key)

    def segment(self, tokens: Sequence[str]) -> list[tuple[str, int]] | None:
        """Split a spelling with missed word boundaries into lexicon words.

        Phoneme models often drop the ``|`` between words spoken without a pause
        (``DH AH N UW S T AY L``: "the new style"). Returns ``(word, n_tokens)`` pairs of the
        split with the highest summed unigram log-probability (so fewer, likelier words win;
        unknown words count -99), or ``None`` when no split into lexicon words exists.
        """
        n = len(tokens)
        best: list[tuple[float, list[tuple[str, int]]] | None] = [None] * (n + 1)
        best[0] = (0.0, [])
        for i in range(n):
            if best[i] is None:
                continue
            score_i, words_i = best[i]  # type: ignore[misc]
            for j in range(i + 1, min(n, i + self.longest) + 1):
                word = self.spellings.get(tuple(tokens[i:j]))
                if word is None:
                    continue
                cand = score_i + self.log_probs.get(word, -99.0)
                if best[j] is None or cand > best[j][0]:  # type: ignore[index]
                    best[j] = (cand, [*words_i, (word, j - i)])
        return best[n][1] if best[n] is not None else None


_SEPARATORS = frozenset(WORD_SEPARATOR_CANDIDATES)


def _arpa_unigrams(path: Path) -> dict[str, float]:
    """log10 probabilities of the ``\\1-grams:`` section of an ARPA file."""
    probs: dict[str, float] = {}
    in_unigrams = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("\\"):
                if in_unigrams:
                    break
                in_unigrams = line == "\\1-grams:"
                continue
            if in_unigrams and line:
                parts = line.split()
                probs[parts[1]] = float(parts[0])
    return probs


# --------------------------------------------------------------------------------------------
# greedy


def greedy_decode(
    log_probs: torch.Tensor,
    lengths: torch.Tensor | Sequence[int],
    tokenizer: Any,
    frame_shift_s: float,
    *,
    blank: int = 0,
    word_separator: str | None = None,
    word_lookup: WordLookup | None = None,
) -> list[Hypothesis]:
    """Best-path CTC decoding of a batch.

    :param log_probs: ``(B, T, V)`` log-posteriors (``(T, V)`` is taken as a batch of one).
    :param lengths: valid frames per item.
    :param frame_shift_s: seconds per output frame (after subsampling).
    :returns: one :class:`Hypothesis` per item. A word's span runs from the first frame of
        its first token to the end of the last frame of its last token (repeats included);
        its confidence is the smallest posterior among its tokens (one doubtful letter makes
        a doubtful word). With ``word_lookup`` each word's tokens are mapped to a lexicon word
        (how phoneme models get words without a beam search).
    """
    if log_probs.dim() == 2:
        log_probs = log_probs.unsqueeze(0)
    lengths = torch.as_tensor(lengths).tolist()
    sep = find_word_separator(tokenizer, word_separator)
    best_lp, best = log_probs.detach().float().max(dim=-1)
    best_lp, best = best_lp.cpu(), best.cpu()
    out: list[Hypothesis] = []
    for b, n in enumerate(lengths):
        path = BestPath(blank)
        path.extend(best[b, :n].tolist(), best_lp[b, :n].tolist())
        score = float(best_lp[b, :n].sum())
        out.append(path.hypothesis(tokenizer, frame_shift_s, sep, word_lookup, score))
    return out


class BestPath:
    """The CTC best path of a growing run of frames: the tokens it emits (repeats collapsed,
    blanks removed), each with its frame span and posterior.

    :func:`greedy_decode` runs it over whole utterances; streaming search (:mod:`asr.stream`)
    extends it block by block, which gives the same tokens, spans and posteriors.
    """

    def __init__(self, blank: int = 0) -> None:
        self.blank = blank
        self.ids: list[int] = []
        self.spans: list[tuple[int, int]] = []  # frames [start, end) of each emitted token
        self.probs: list[float] = []
        self.prev = -1
        self.frames = 0

    def extend(self, best: Sequence[int], best_log_probs: Sequence[float]) -> None:
        """The next frames' best tokens and their log-posteriors."""
        blank = self.blank
        for tok, lp in zip(best, best_log_probs, strict=True):
            t = self.frames
            if tok != self.prev and tok != blank:
                self.ids.append(tok)
                self.spans.append((t, t + 1))
                self.probs.append(math.exp(lp))
            elif tok == self.prev and tok != blank:
                s, _ = self.spans[-1]
                self.spans[-1] = (s, t + 1)
                self.probs[-1] = max(self.probs[-1], math.exp(lp))
            self.prev = tok
            self.frames += 1

    def hypothesis(
        self,
        tokenizer: Any,
        frame_shift_s: float,
        separator: str | None,
        word_lookup: WordLookup | None = None,
        score: float = 0.0,
    ) -> Hypothesis:
        """The path so far as words with times (see :func:`greedy_decode`)."""
        words = _timed_words(
            self.ids,
            self.spans,
            self.probs,
            tokenizer,
            separator,
            frame_shift_s,
            lookup=word_lookup,
        )
        text = " ".join(w.word for w in words)
        conf = sum(self.probs) / len(self.probs) if self.probs else 1.0
        return Hypothesis(text, list(self.ids), words, score, conf)


def _timed_words(
    ids: list[int],
    spans: list[tuple[int, int]],
    probs: list[float],
    tokenizer: Any,
    sep: str | None,
    frame_shift_s: float,
    groups: list[list[int]] | None = None,
    lookup: WordLookup | None = None,
) -> list[WordTiming]:
    """Words with times from token spans; ``groups`` (index lists into ``ids``) overrides
    the tokenizer's word boundaries; ``lookup`` maps token spellings to words."""
    words: list[WordTiming] = []
    for group in groups if groups is not None else _group_words(ids, tokenizer, sep):
        if not group:
            continue
        text = _word_text([ids[i] for i in group], tokenizer, sep)
        pieces = [(text, group)]
        if lookup is not None:
            pieces = _looked_up(lookup, [tokenizer.tokens[ids[i]] for i in group], group, text)
        for word, idx in pieces:
            if not word:
                continue
            start = spans[idx[0]][0] * frame_shift_s
            end = spans[idx[-1]][1] * frame_shift_s
            conf = min(probs[i] for i in idx)
            words.append(WordTiming(word, round(start, 3), round(end, 3), conf))
    return words


def _looked_up(
    lookup: WordLookup, tokens: list[str], group: list[int], text: str
) -> list[tuple[str, list[int]]]:
    """(word, token indices) for one separator-delimited group: the lexicon word it spells,
    else its split into lexicon words, else the decoded text joined by ``_`` (one error)."""
    word = lookup(tokens)
    if word is not None:
        return [(word, group)]
    split = lookup.segment(tokens)
    if split is None:
        return [("_".join(text.split()), group)]
    out, at = [], 0
    for w, n in split:
        out.append((w, group[at : at + n]))
        at += n
    return out


# --------------------------------------------------------------------------------------------
# beam search


@dataclass
class BeamSearchConfig:
    """Options of :class:`BeamSearchDecoder` (flashlight names in brackets).

    :param lm_weight: weight of the word LM score [lm_weight].
    :param word_score: added per emitted word; > 0 favours more words [word_score].
    :param unk_score: score of words outside the lexicon; ``-inf`` forbids them [unk_score].
    :param sil_score: added per word-separator token [sil_score].
    :param beam_size: hypotheses kept per frame [beam_size].
    :param beam_size_token: tokens tried per frame; ``None`` = all [beam_size_token].
    :param beam_threshold: prune hypotheses this far below the best [beam_threshold].
    :param nbest: hypotheses returned per utterance.
    :param log_add: merge equal hypotheses by log-sum-exp instead of max.
    """

    lm_weight: float = 2.0
    word_score: float = 0.0
    unk_score: float = float("-inf")
    sil_score: float = 0.0
    beam_size: int = 50
    beam_size_token: int | None = None
    beam_threshold: float = 25.0
    nbest: int = 1
    log_add: bool = False

    def __post_init__(self) -> None:
        if self.nbest < 1:
            raise ValueError(f"nbest must be at least 1, got {self.nbest}")


TIE_CANDIDATES = 5
"""Hypotheses asked of flashlight beyond ``nbest``, so that ties at the cut are seen. An
utterance with k tied homophone pairs has 2**k tied texts; more than this many, or ties the
beam pruned inside flashlight, are beyond reach."""


def break_score_ties(hyps: list[Hypothesis]) -> list[Hypothesis]:
    """Order hypotheses best first, equal scores by text.

    Homophones with equal LM probabilities ("mother's" / "mothers") get bit-identical
    scores, and flashlight returns such ties in an order that changes from run to run, so
    the same log-probs could decode to different text. Sorting ties by text makes decoding
    reproducible.
    """
    return sorted(hyps, key=lambda h: (-h.score, h.text))


class BeamSearchDecoder:
    """CTC beam search with optional lexicon and word n-gram LM (flashlight-text).

    :param tokenizer: the model's tokenizer (index 0 = blank).
    :param lexicon: ``word tok tok ...`` file (see ``asr-lm lexicon``); ``None`` = lexicon-free.
    :param lm: ARPA or KenLM binary word LM; ``None`` = no LM.
    :param word_separator: override the separator token (see :func:`find_word_separator`).
    Remaining keyword arguments fill :class:`BeamSearchConfig`.

    Flashlight requires a silence token, and its lexicon search expects each word to end in
    it (a CTC repeat of a word-final token is otherwise read as a new word: "the the cat
    cat"). Tokenizers without a separator token (sentencepiece) therefore get a virtual
    silence token appended to the vocabulary whose emission score copies the blank's, and
    the lexicon is rewritten (a temporary copy) with it at the end of every spelling: a word
    ends on a blank frame after its last token. Lexicon-free search with a word LM needs a
    real separator token, since the LM is queried at each one.
    """

    def __init__(
        self,
        tokenizer: Any,
        lexicon: str | Path | None = None,
        lm: str | Path | None = None,
        *,
        word_separator: str | None = None,
        blank: int = 0,
        config: BeamSearchConfig | None = None,
        **options: Any,
    ) -> None:
        from torchaudio.models.decoder import ctc_decoder

        if config is not None and options:
            raise TypeError("pass either config= or individual options, not both")
        self.config = config or BeamSearchConfig(**options)
        self.tokenizer = tokenizer
        self.blank = blank
        self.separator = find_word_separator(tokenizer, word_separator)
        tokens = list(tokenizer.tokens)
        blank_tok = tokens[blank]
        if lm is not None and lexicon is None and self.separator is None:
            raise ValueError(
                "a word LM without a lexicon needs a word-separator token; this tokenizer has "
                "none (sentencepiece): pass --lexicon (build one with `asr-lm lexicon`)"
            )
        for name, path in (("lexicon", lexicon), ("lm", lm)):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{name} file not found: {path}")
        self.virtual_sil = self.separator is None
        self.has_lexicon = lexicon is not None
        sil_tok = self.separator
        if self.virtual_sil:
            sil_tok = VIRTUAL_SIL
            while sil_tok in tokens:
                sil_tok += "_"
            tokens = [*tokens, sil_tok]
        if self.virtual_sil and lexicon is not None:
            lexicon = self._lexicon_with_silence(Path(lexicon), sil_tok)
        cfg = self.config
        self._decoder = ctc_decoder(
            lexicon=str(lexicon) if lexicon is not None else None,
            tokens=tokens,
            lm=str(lm) if lm is not None else None,
            nbest=cfg.nbest + TIE_CANDIDATES,  # see break_score_ties
            beam_size=cfg.beam_size,
            beam_size_token=cfg.beam_size_token,
            beam_threshold=cfg.beam_threshold,
            lm_weight=cfg.lm_weight if lm is not None else 0.0,
            word_score=cfg.word_score,
            unk_score=cfg.unk_score,
            sil_score=cfg.sil_score,
            log_add=cfg.log_add,
            blank_token=blank_tok,
            sil_token=sil_tok,
        )

    def __call__(
        self,
        log_probs: torch.Tensor,
        lengths: torch.Tensor | Sequence[int],
        frame_shift_s: float,
    ) -> list[list[Hypothesis]]:
        """Decode ``(B, T, V)`` log-probs; returns an n-best list (best first) per item.

        Hypotheses that differ only in alignment are merged, so a list can hold fewer
        than ``nbest`` entries.
        """
        emissions = self.emissions(log_probs)
        lens = torch.as_tensor(lengths, dtype=torch.int32).cpu()
        results = self._decoder(emissions, lens)
        return [
            self.nbest_from(nbest, emissions[b], frame_shift_s) for b, nbest in enumerate(results)
        ]

    @property
    def flashlight(self) -> Any:
        """The torchaudio ``CTCDecoder`` underneath, for incremental search
        (``decode_begin`` / ``decode_step`` / ``decode_end``) on :meth:`emissions`."""
        return self._decoder

    def emissions(self, log_probs: torch.Tensor) -> torch.Tensor:
        """``(B, T, V)`` (or ``(T, V)``) log-probs -> the float32 CPU emissions searched, with
        the virtual silence column when the tokenizer needs one (see the class doc)."""
        if log_probs.dim() == 2:
            log_probs = log_probs.unsqueeze(0)
        emissions = log_probs.detach().float().cpu().contiguous()
        if self.virtual_sil:  # with a lexicon it scores like the blank (see class doc)
            if self.has_lexicon:
                sil = emissions[:, :, self.blank : self.blank + 1]
            else:  # lexicon-free: never chosen, or it would duplicate every blank path
                sil = emissions.new_full((*emissions.shape[:2], 1), NEVER_LOG_PROB)
            emissions = torch.cat([emissions, sil], dim=-1)
        return emissions

    def nbest_from(
        self, results: Sequence[Any], emission: torch.Tensor, frame_shift_s: float
    ) -> list[Hypothesis]:
        """flashlight's hypotheses of one item (best first) and its ``(T, V')`` emissions -> our
        n-best list: one entry per text, equal scores ordered by text."""
        hyps: list[Hypothesis] = []
        for h in results:  # flashlight keeps different alignments of one text apart
            if len(hyps) >= self.config.nbest and h.score < hyps[-1].score:
                break  # enough, and past any tie with the last one kept
            hyp = self._to_hypothesis(h, emission, frame_shift_s)
            if all(hyp.text != other.text for other in hyps):
                hyps.append(hyp)
        hyps = break_score_ties(hyps)[: self.config.nbest]
        return hyps or [Hypothesis("", [], [], float("-inf"), 0.0)]

    def hypothesis_from(
        self,
        result: Any,
        emission: torch.Tensor,
        frame_shift_s: float,
        *,
        lexicon_words: bool = True,
    ) -> Hypothesis:
        """One flashlight hypothesis -> :class:`Hypothesis` (words, times, confidences).

        ``lexicon_words=False``: words as the tokens group them even with a lexicon, the
        unfinished last word included (the streaming search times completed words by them).
        """
        return self._to_hypothesis(result, emission, frame_shift_s, lexicon_words)

    def _to_hypothesis(
        self, h: Any, emission: torch.Tensor, frame_shift_s: float, lexicon_words: bool = True
    ) -> Hypothesis:
        ids = [int(t) for t in h.tokens.tolist()]
        steps = [int(t) for t in h.timesteps.tolist()]
        # flashlight pads the token sequence with silence at both ends; drop blank/sil padding
        n_real = len(self.tokenizer.tokens)
        keep = [
            i
            for i, t in enumerate(ids)
            if t != self.blank
            and t < n_real
            and not (
                self.separator is not None and self._is_sep(t) and (i == 0 or i == len(ids) - 1)
            )
        ]
        groups: list[list[int]] | None = None
        if self.virtual_sil and self.has_lexicon:
            # the lexicon ends every word with the virtual silence: split words there
            position = {i: k for k, i in enumerate(keep)}
            groups = [[]]
            for i, t in enumerate(ids):
                if t == n_real:
                    groups.append([])
                elif i in position and self.tokenizer.tokens[t] != SP_WORD_START:
                    # a bare "▁" piece holds no letters: the word starts at the next piece,
                    # as in greedy decoding
                    groups[-1].append(position[i])
        ids = [ids[i] for i in keep]
        # flashlight's token sequence starts with a sentinel frame: timestep t is frame t - 1
        steps = [max(0, steps[i] - 1) for i in keep]
        probs = [math.exp(x) for x in emission[steps, ids].tolist()]
        spans = _token_spans(ids, steps, emission[:, :n_real])
        words = _timed_words(
            ids, spans, probs, self.tokenizer, self.separator, frame_shift_s, groups
        )
        if self.has_lexicon and lexicon_words:
            # the lexicon decoder knows the words; keep its spelling, take times from tokens.
            # Tokens past its last word (a word the audio ended in) are no lexicon word: dropped.
            lex_words = [w for w in h.words if w]
            if len(lex_words) == len(words):
                for w, text in zip(words, lex_words, strict=True):
                    w.word = text
            else:
                words = _spread_words(lex_words, words, spans, probs, frame_shift_s)
        text = " ".join(w.word for w in words)
        conf = sum(probs) / len(probs) if probs else 1.0
        return Hypothesis(text, ids, words, float(h.score), conf)

    def _lexicon_with_silence(self, lexicon: Path, sil: str) -> Path:
        """A temporary copy of ``lexicon`` with ``sil`` ending every spelling."""
        import tempfile

        self._tmpdir = tempfile.TemporaryDirectory(prefix="asr-lexicon-")
        out = Path(self._tmpdir.name) / lexicon.name
        with open(lexicon, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
            for line in src:
                parts = line.split()
                if len(parts) >= 2:
                    dst.write(f"{parts[0]}\t{' '.join(parts[1:])} {sil}\n")
        return out

    def _is_sep(self, tid: int) -> bool:
        return self.tokenizer.tokens[tid] == self.separator


def _token_spans(ids: list[int], steps: list[int], emission: torch.Tensor) -> list[tuple[int, int]]:
    """Frames [start, end) of each token: from its first frame while it stays the frame's best
    token (CTC repeats), never past the next token -- the same span greedy decoding reports."""
    best = emission.argmax(dim=-1).tolist()
    spans = []
    for i, (tid, s) in enumerate(zip(ids, steps, strict=True)):
        limit = steps[i + 1] if i + 1 < len(steps) else len(best)
        e = s + 1
        while e < limit and best[e] == tid:
            e += 1
        spans.append((s, e))
    return spans


def _spread_words(
    lex_words: list[str],
    token_words: list[WordTiming],
    spans: list[tuple[int, int]],
    probs: list[float],
    frame_shift_s: float,
) -> list[WordTiming]:
    """Fallback when token grouping and lexicon words disagree: split the token span evenly."""
    if not lex_words:
        return []
    if not spans:
        return [WordTiming(w, 0.0, 0.0, 0.0) for w in lex_words]
    start, end = spans[0][0], spans[-1][1]
    step = (end - start) / len(lex_words)
    conf = min(probs) if probs else 0.0
    return [
        WordTiming(
            w,
            round((start + i * step) * frame_shift_s, 3),
            round((start + (i + 1) * step) * frame_shift_s, 3),
            conf,
        )
        for i, w in enumerate(lex_words)
    ]
