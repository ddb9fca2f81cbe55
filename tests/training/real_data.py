"""Tiny on-disk corpus (noise wavs + random texts) for tests through the real ASRDataModule."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.data.manifest import Utterance, write_manifest
from asr.data.tokenizer import train_tokenizer


def write_corpus(root: Path, n: int = 12, seed: int = 0) -> dict[str, str]:
    """Wavs of 0.3-0.8 s, a train/val manifest, a char tokenizer. Returns the paths."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    utts = []
    for i in range(n):
        dur = rng.uniform(0.3, 0.8)
        wav = (0.1 * nrng.standard_normal(int(dur * 16000))).astype("float32")
        path = root / "wav" / f"u{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, wav, 16000)
        text = " ".join(
            "".join(rng.choice("abcde") for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(1, 3))
        )
        utts.append(Utterance(id=f"u{i}", audio=str(path), duration=len(wav) / 16000, text=text))
    write_manifest(root / "train.jsonl", utts)
    write_manifest(root / "val.jsonl", utts[:4])
    tok = train_tokenizer("char", [u.text for u in utts], None)
    tok.save(root / "tokenizer.json")
    return {
        "train": str(root / "train.jsonl"),
        "val": str(root / "val.jsonl"),
        "tokenizer": str(root / "tokenizer.json"),
        "cmvn": str(root / "cmvn.json"),
    }
