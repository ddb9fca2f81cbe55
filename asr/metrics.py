"""Validation error rates during training: what they count and what they are called.

A model is scored during training in the units its tokenizer decodes to. Character and
sentencepiece tokenizers decode to words, so their error rate is a word error rate (``val_wer``,
with ``val_cer`` beside it). A phoneme tokenizer decodes to phones with ``|`` between words, so
its error rate counts phones and word boundaries (``val_per``). Checkpoint selection, the
plateau schedule and the tools that read the metrics log all follow the one name
:func:`error_metric_name` gives; :func:`find_error_metric` also reads logs written before the
phone error rate had its own name (when it was logged as ``val_wer``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jiwer

#: Validation error-rate names, in the order a log is searched for "the" error metric.
ERROR_METRICS = ("val_wer", "val_per", "val_cer")


def error_metric_name(tokenizer: Any) -> str:
    """``val_per`` for a phoneme tokenizer, else ``val_wer`` (its output is words)."""
    return "val_per" if getattr(tokenizer, "kind", "") == "phoneme" else "val_wer"


def find_error_metric(columns: Iterable[str]) -> str | None:
    """The validation error metric among a metrics log's columns (old or new names), or None."""
    present = set(columns)
    return next((name for name in ERROR_METRICS if name in present), None)


def validation_references(tokenizer: Any, texts: list[str]) -> list[str]:
    """References in the units ``tokenizer.decode`` writes.

    Char and sentencepiece tokenizers decode to words, so the texts serve as they are. A
    phoneme model decodes to phones: its references become their phones, so that the error
    rate compares phones with phones rather than phones with words.
    """
    if getattr(tokenizer, "kind", "") == "phoneme":
        return [tokenizer.decode(tokenizer.encode(t)) for t in texts]
    return texts


def edit_counts(refs: list[str], hyps: list[str], unit: str) -> tuple[int, int]:
    """(errors, reference length) in whitespace-separated tokens (``unit="word"``) or
    characters (``"char"``); empty references count insertions."""
    errors = total = 0
    pairs = list(zip(refs, hyps, strict=True))
    nonempty = [(r, h) for r, h in pairs if r.strip()]
    for r, h in pairs:
        if not r.strip():
            errors += len(h.split()) if unit == "word" else len(h.replace(" ", ""))
    if nonempty:
        r, h = [p[0] for p in nonempty], [p[1] for p in nonempty]
        o = jiwer.process_words(r, h) if unit == "word" else jiwer.process_characters(r, h)
        errors += o.substitutions + o.deletions + o.insertions
        total += o.substitutions + o.deletions + o.hits
    return errors, total
