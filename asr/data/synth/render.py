"""Rendering one planned utterance: engine -> 16 kHz -> noise -> FLAC (runs in the workers)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from asr.data.synth.engine import SpeechEngine
from asr.data.synth.noise import add_noise
from asr.data.synth.plan import UttSpec

# torchaudio's Kaiser-windowed sinc with the filter the corpus was first made with: 0.95 of
# the output Nyquist, beta 8.6, and 11 zero crossings each side, which is 16 input samples
# at 22.05 -> 16 kHz (torchaudio counts the width in zero crossings, not input samples).
RESAMPLING = {
    "lowpass_filter_width": 11,
    "rolloff": 0.95,
    "resampling_method": "sinc_interp_kaiser",
    "beta": 8.6,
}


@functools.lru_cache(maxsize=8)
def _resampler(orig_sr: int, new_sr: int) -> torchaudio.transforms.Resample:
    """``torchaudio.functional.resample`` with its filter kernel built once per rate pair
    (building it costs more than filtering an utterance); float32 like the functional form,
    so the output is the same to the bit."""
    return torchaudio.transforms.Resample(orig_sr, new_sr, **RESAMPLING, dtype=torch.float32)


def resample(x: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited resampling of float32 samples (:data:`RESAMPLING`)."""
    wav = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if orig_sr == new_sr:
        return wav.numpy()
    with torch.inference_mode():
        return _resampler(orig_sr, new_sr)(wav).numpy()


@dataclass(frozen=True)
class RenderContext:
    """What every worker needs besides the utterance: where to write, with which engine."""

    out_dir: str
    engine: SpeechEngine
    sample_rate: int


def render_utterance(spec: UttSpec, ctx: RenderContext) -> tuple[str, int]:
    """Synthesise, resample, add noise and write one FLAC; returns (relative path, frames)."""
    wav = ctx.engine.synthesize(spec.spoken, spec.voice, spec.rate, spec.pitch)
    wav = resample(wav, ctx.engine.sample_rate, ctx.sample_rate)
    if spec.snr_db is not None:
        wav = add_noise(wav, spec.snr_db, spec.noise_kind, np.random.default_rng(spec.noise_seed))
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak > 0.99:  # keep the PCM_16 FLAC from clipping
        wav = wav * (0.99 / peak)
    rel = Path("audio") / spec.split / f"{spec.id}.flac"
    sf.write(Path(ctx.out_dir) / rel, wav, ctx.sample_rate, format="FLAC", subtype="PCM_16")
    return rel.as_posix(), len(wav)
