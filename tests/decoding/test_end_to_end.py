"""asr-lm -> asr-decode -> asr-score on a real (tiny, randomly initialised) model package."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from asr.data.tokenizer import train_tokenizer
from asr.features import FbankConfig
from asr.inference.cli import main as decode_main
from asr.lm import main as lm_main
from asr.models import CTCModel, EncoderConfig, TransformerConfig
from asr.package import save_package
from asr.score import main as score_main


def test_cli_chain(tmp_path, capsys, rng):
    words = ["hello", "world", "the", "cat", "sat"]
    corpus = [" ".join(rng.choices(words, k=rng.randint(1, 4))) for _ in range(30)]
    tok = train_tokenizer("char", corpus)
    layers = TransformerConfig(n_layers=2, n_heads=2, d_ff=64)
    cfg = EncoderConfig(conv_channels=8, d_model=32, dropout=0.0, transformer=layers)
    save_package(
        tmp_path / "m.safetensors", CTCModel(cfg, tok.vocab_size), cfg, tok, FbankConfig(), None
    )
    tok.save(tmp_path / "tok.json")
    (tmp_path / "train.txt").write_text("\n".join(corpus) + "\n")
    audio = tmp_path / "audio"
    audio.mkdir()
    refs = {}
    for i in range(3):
        sf.write(audio / f"u{i}.wav", (0.1 * np.random.randn(16000)).astype(np.float32), 16000)
        refs[f"u{i}"] = rng.choice(corpus)
    (tmp_path / "ref.txt").write_text("".join(f"{k} {v}\n" for k, v in refs.items()))

    assert (
        lm_main(["arpa", "--text", str(tmp_path / "train.txt"), "--out", str(tmp_path / "lm.arpa")])
        == 0
    )
    lex = [
        "lexicon",
        "--tokenizer",
        str(tmp_path / "tok.json"),
        "--words",
        str(tmp_path / "words.txt"),
    ]
    assert lm_main([*lex, "--out", str(tmp_path / "lexicon.txt")]) == 0
    hyp = tmp_path / "hyp.jsonl"
    beam = [
        "--search",
        "beam",
        "--lexicon",
        str(tmp_path / "lexicon.txt"),
        "--lm",
        str(tmp_path / "lm.arpa"),
    ]
    assert (
        decode_main(
            [str(tmp_path / "m.safetensors"), str(audio), "-o", str(hyp), *beam, "--no-progress"]
        )
        == 0
    )
    rows = [json.loads(line) for line in hyp.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(refs)
    assert all(set(r["text"].split()) <= set(words) for r in rows)  # lexicon-constrained
    capsys.readouterr()
    assert (
        score_main([str(tmp_path / "ref.txt"), str(hyp), "--out-dir", str(tmp_path / "score")]) == 0
    )
    assert capsys.readouterr().out.startswith("%WER")
    assert json.loads((tmp_path / "score" / "summary.json").read_text())["utterances"] == 3
