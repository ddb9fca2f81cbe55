"""Rendering planned utterances: engine -> 16 kHz -> noise -> FLAC (runs in the workers).

Utterances are rendered in small batches of one voice, so an engine with a slow start
(festival) starts once per batch; a sentence the engine fails on costs itself only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from asr.data.augment import add_noise
from asr.data.synth.engine import EngineError, SpeechEngine
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
    """What every worker needs besides the utterances: where to write, with which engines."""

    out_dir: str
    engines: dict[str, SpeechEngine]
    sample_rate: int


@dataclass(frozen=True)
class Rendered:
    """A written utterance: its id, path relative to the corpus and length in samples."""

    id: str
    path: str
    frames: int


@dataclass(frozen=True)
class Failed:
    """An utterance the engine could not say, and why."""

    id: str
    error: str


def audio_path(spec: UttSpec, split_dir: str | None = None) -> Path:
    """Where an utterance's FLAC goes, relative to the corpus folder."""
    return Path("audio") / (split_dir or spec.split) / f"{spec.id}.flac"


def finish_utterance(
    spec: UttSpec, samples: np.ndarray, engine_rate: int, ctx: RenderContext, split_dir: str
) -> Rendered:
    """Resample, add the planned noise, keep clear of clipping, write the FLAC."""
    wav = resample(samples, engine_rate, ctx.sample_rate)
    if spec.snr_db is not None:
        wav = add_noise(wav, spec.snr_db, spec.noise_kind, np.random.default_rng(spec.noise_seed))
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak > 0.99:  # keep the PCM_16 FLAC from clipping
        wav = wav * (0.99 / peak)
    rel = audio_path(spec, split_dir)
    sf.write(Path(ctx.out_dir) / rel, wav, ctx.sample_rate, format="FLAC", subtype="PCM_16")
    return Rendered(spec.id, rel.as_posix(), len(wav))


def render_batch(
    specs: list[UttSpec], ctx: RenderContext, split_dir: str | None = None
) -> list[Rendered | Failed]:
    """Speak and write utterances of one engine; ``split_dir`` overrides ``audio/<split>``."""
    engine = ctx.engines[specs[0].voice.engine]
    results = engine.synthesize_many([s.request for s in specs])
    out: list[Rendered | Failed] = []
    for spec, res in zip(specs, results, strict=True):
        if isinstance(res, EngineError):
            out.append(Failed(spec.id, str(res)))
        else:
            out.append(finish_utterance(spec, *res, ctx, split_dir or spec.split))
    return out


def render_utterance(spec: UttSpec, ctx: RenderContext) -> Rendered:
    """One utterance (raises :class:`EngineError` if the engine fails)."""
    (res,) = render_batch([spec], ctx)
    if isinstance(res, Failed):
        raise EngineError(res.error)
    return res
