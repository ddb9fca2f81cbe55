"""A real (tiny, randomly initialised) model package with a word LM and lexicon, for the tests
of decoding bundles and tuning."""

from __future__ import annotations

import random
from pathlib import Path

from asr.data.tokenizer import train_tokenizer
from asr.features import FbankConfig
from asr.lm import main as lm_main
from asr.models import CTCModel, EncoderConfig, TransformerConfig
from asr.package import save_package


def tiny_package_with_lm(folder: Path, rng: random.Random, words: list[str]) -> Path:
    """``folder/plain.safetensors`` (char tokenizer, tiny encoder) beside ``lm.arpa``,
    ``lexicon.txt`` and ``text.txt`` made from random sentences over ``words``."""
    corpus = [" ".join(rng.choices(words, k=rng.randint(1, 5))) for _ in range(40)]
    tok = train_tokenizer("char", corpus)
    layers = TransformerConfig(n_layers=2, n_heads=2, d_ff=64)
    cfg = EncoderConfig(conv_channels=8, d_model=32, dropout=0.0, transformer=layers)
    model = folder / "plain.safetensors"
    save_package(model, CTCModel(cfg, tok.vocab_size), cfg, tok, FbankConfig(), None, {"e": 1})
    tok.save(folder / "tok.json")
    (folder / "text.txt").write_text("\n".join(corpus) + "\n")
    assert (
        lm_main(["arpa", "--text", str(folder / "text.txt"), "--out", str(folder / "lm.arpa")]) == 0
    )
    lexicon = [
        "lexicon",
        "--tokenizer",
        str(folder / "tok.json"),
        "--words",
        str(folder / "words.txt"),
    ]
    assert lm_main([*lexicon, "--out", str(folder / "lexicon.txt")]) == 0
    return model
