"""Audio fixtures written on the fly: sine waves and noise in tmp_path."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.data.manifest import Utterance, write_manifest

WORDS = "the cat sat on a mat while dogs ran far away from home".split()


def tone(freq: float, seconds: float, sr: int, channels: int = 1, amp: float = 0.3) -> np.ndarray:
    """A sine (channel c scaled by 1/(c+1), so downmixing is checkable) plus faint noise."""
    t = np.arange(int(seconds * sr)) / sr
    x = amp * np.sin(2 * np.pi * freq * t) + 0.001 * np.random.randn(t.size)
    cols = [x / (c + 1) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32) if channels > 1 else x.astype(np.float32)


@pytest.fixture
def write_tone(tmp_path: Path) -> Callable[..., Path]:
    def write(
        name: str,
        freq: float = 1000.0,
        seconds: float = 0.5,
        sr: int = 16000,
        channels: int = 1,
        **sf_kwargs,
    ) -> Path:
        p = tmp_path / name
        sf.write(p, tone(freq, seconds, sr, channels), sr, **sf_kwargs)
        return p

    return write


@pytest.fixture
def corpus(tmp_path: Path) -> Callable[..., Path]:
    """``corpus(n)`` writes n short random clips and a manifest; returns the manifest path."""

    def make(n: int = 8, name: str = "train", min_s: float = 0.3, max_s: float = 1.2) -> Path:
        audio_dir = tmp_path / name
        audio_dir.mkdir(exist_ok=True)
        utts = []
        for i in range(n):
            dur = random.uniform(min_s, max_s)
            p = audio_dir / f"u{i:03d}.flac"
            sf.write(p, tone(random.uniform(200, 3000), dur, 16000), 16000)
            # the first clip says every word, so a tokenizer trained on any split covers all
            text = " ".join(WORDS if i == 0 else random.choices(WORDS, k=random.randint(1, 5)))
            utts.append(
                Utterance(
                    f"{name}-{i:03d}", str(p), dur, text.capitalize() + ".", speaker=f"spk{i % 3}"
                )
            )
        out = tmp_path / f"{name}.jsonl"
        write_manifest(out, utts)
        return out

    return make
