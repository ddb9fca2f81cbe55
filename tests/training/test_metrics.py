"""Validation error rates: counted in the units the tokenizer decodes to, named after them."""

from __future__ import annotations

from asr.data.tokenizer import train_tokenizer
from asr.metrics import edit_counts, error_metric_name, find_error_metric, validation_references


def test_edit_counts_match_definition() -> None:
    refs, hyps = ["a b c", "d", ""], ["a x c", "d e", "f"]
    assert edit_counts(refs, hyps, "word") == (1 + 1 + 1, 4)
    e, n = edit_counts(["abc"], ["abd"], "char")
    assert (e, n) == (1, 3)


def test_validation_references_match_the_decoded_units() -> None:
    """Phoneme models are scored phones against phones; char models words against words."""
    texts = ["the cat sat", "a dog ran home"]
    phones = train_tokenizer("phoneme", texts)
    refs = validation_references(phones, texts)
    assert refs[0] == "DH AH | K AE T | S AE T"
    assert refs == [phones.decode(phones.encode(t)) for t in texts]
    chars = train_tokenizer("char", texts)
    assert validation_references(chars, texts) == texts


def test_metric_is_named_after_what_it_counts() -> None:
    texts = ["the cat sat"]
    assert error_metric_name(train_tokenizer("phoneme", texts)) == "val_per"
    assert error_metric_name(train_tokenizer("char", texts)) == "val_wer"


def test_find_error_metric_reads_old_and_new_logs() -> None:
    old = ["epoch", "step", "val_loss", "val_wer", "val_cer"]  # phoneme runs logged PER as val_wer
    assert find_error_metric(old) == "val_wer"
    assert find_error_metric(["epoch", "val_loss", "val_per"]) == "val_per"
    assert find_error_metric(["epoch", "val_loss", "val_cer"]) == "val_cer"
    assert find_error_metric(["epoch", "train_loss"]) is None
