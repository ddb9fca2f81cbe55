"""Additive coloured noise at a chosen SNR, so the synthetic corpus is not studio-clean."""

from __future__ import annotations

import math

import numpy as np

NOISE_KINDS: tuple[str, ...] = ("white", "pink", "brown")
# 1/f^exponent power spectrum of each noise colour.
_NOISE_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def coloured_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power Gaussian noise with a 1/f^a power spectrum (white, pink or brown)."""
    exponent = _NOISE_EXPONENT[kind]
    if not exponent:
        white = rng.standard_normal(n)
    else:
        # Shape the spectrum at a power-of-two length (FFTs of prime lengths are slow), then trim.
        size = 1 << max(1, (n - 1).bit_length())
        spec = np.fft.rfft(rng.standard_normal(size))
        freqs = np.fft.rfftfreq(size)
        freqs[0] = freqs[1]
        white = np.fft.irfft(spec / freqs ** (exponent / 2), size)[:n]
    return (white / (np.sqrt(np.mean(white**2)) + 1e-12)).astype(np.float32)


def add_noise(speech: np.ndarray, snr_db: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Mix noise at ``snr_db`` relative to the speech power over non-silent samples."""
    active = speech[np.abs(speech) > 0.01 * (np.abs(speech).max() + 1e-12)]
    power = float(np.mean(active**2)) if active.size else 0.0
    noise = coloured_noise(len(speech), kind, rng) * math.sqrt(power / 10 ** (snr_db / 10))
    return speech + noise
