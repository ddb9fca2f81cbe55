"""Waveform augmentation of training audio: room reverberation, additive noise (coloured or
babble) at a random SNR, a telephone channel, gain.

Synthetic speech is studio-clean and every engine has its own spectrum; these effects make a
model listen past both. :class:`AugmentConfig` says which share of the utterances gets each
effect; :func:`draw_augmentation` draws one utterance's effects from a seeded generator and
:func:`apply_augmentation` applies them, in the order a recording would: room, noise, channel,
level. :func:`augment_manifest` writes an augmented copy of a manifest's audio (how the synthetic
corpus bakes augmentation into its ``train`` split; also ``asr-data augment``).

Room impulse responses come from pyroomacoustics' image-source simulation of shoebox rooms:
a pool of :attr:`AugmentConfig.rir_pool` rooms per run (one simulation costs 0.02-1 s, too much
per utterance), each utterance convolved with one of them.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
import torchaudio

NOISE_KINDS: tuple[str, ...] = ("white", "pink", "brown")
BABBLE = "babble"
# 1/f^exponent power spectrum of each noise colour.
_NOISE_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}
TELEPHONE_RATE = 8000
TELEPHONE_HIGHPASS_HZ = 300.0
# A long Kaiser-windowed sinc: torchaudio's default filter lets about 1% of the energy through
# above the 4 kHz band edge of the telephone rate.
_TELEPHONE_RESAMPLING = {
    "lowpass_filter_width": 16,
    "rolloff": 0.9,
    "resampling_method": "sinc_interp_kaiser",
    "beta": 8.6,
}
ROOM_HEIGHT_M = (2.4, 4.0)
MIN_WALL_DISTANCE_M = 0.5
# Purposes of the random streams of augment_manifest, seeded [*seed, purpose, index].
_UTTERANCE_STREAM, _ROOM_STREAM = 0, 1


@dataclass
class AugmentConfig:
    """Which effects training audio gets. Each share is the probability that one utterance
    gets that effect (drawn independently); 0 turns the effect off.

    :param reverb: share convolved with a simulated room impulse response.
    :param rt60_s: reverberation time range of the simulated rooms (seconds).
    :param room_m: length and width range of the rooms (metres); height 2.4-4 m.
    :param rir_pool: rooms simulated per run; utterances draw one each.
    :param noise: share that gets additive noise.
    :param noise_snr_db: SNR range of that noise (dB, against the active speech).
    :param noise_kinds: drawn uniformly: ``white``, ``pink``, ``brown`` or ``babble`` (other
        utterances of the same manifest, summed).
    :param babble_talkers: how many utterances one babble sums (min, max).
    :param telephone: share sent through a telephone channel: 300 Hz high-pass, 8 kHz,
        8-bit mu-law (G.711), back to the original rate.
    :param gain: share whose level is changed by ``gain_db``.
    :param gain_db: gain range (dB); the result is clipped at full scale, as a recorder would.
    """

    reverb: float = 0.0
    rt60_s: tuple[float, float] = (0.2, 0.7)
    room_m: tuple[float, float] = (3.0, 10.0)
    rir_pool: int = 48
    noise: float = 0.0
    noise_snr_db: tuple[float, float] = (5.0, 25.0)
    noise_kinds: tuple[str, ...] = ("white", "pink", "brown", "babble")
    babble_talkers: tuple[int, int] = (3, 6)
    telephone: float = 0.0
    gain: float = 0.0
    gain_db: tuple[float, float] = (-20.0, 6.0)

    def __post_init__(self) -> None:
        for name in (
            "rt60_s",
            "room_m",
            "noise_snr_db",
            "noise_kinds",
            "babble_talkers",
            "gain_db",
        ):
            setattr(self, name, tuple(getattr(self, name)))
        for name in ("reverb", "noise", "telephone", "gain"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AugmentConfig.{name} is a share of utterances: give 0..1")
        for name in ("rt60_s", "room_m", "noise_snr_db", "babble_talkers", "gain_db"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"AugmentConfig.{name} must be (min, max), got {(lo, hi)}")
        unknown = set(self.noise_kinds) - {*NOISE_KINDS, BABBLE}
        if unknown or not self.noise_kinds:
            raise ValueError(
                f"AugmentConfig.noise_kinds {list(self.noise_kinds)}: choose from "
                f"{[*NOISE_KINDS, BABBLE]}"
            )
        if self.room_m[0] < 2 * MIN_WALL_DISTANCE_M + 0.5 or self.rir_pool < 1:
            raise ValueError("AugmentConfig.room_m must be at least 1.5 m, rir_pool at least 1")
        if self.babble_talkers[0] < 1:
            raise ValueError("AugmentConfig.babble_talkers must be at least 1")

    @property
    def enabled(self) -> bool:
        return any((self.reverb, self.noise, self.telephone, self.gain))

    @classmethod
    def from_any(cls, value: AugmentConfig | dict[str, Any] | None) -> AugmentConfig | None:
        """A config from a YAML mapping (None or ``{}``-with-all-zero stays None)."""
        if value is None or isinstance(value, AugmentConfig):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"augment: expected a mapping of AugmentConfig fields, got {value!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"augment: unknown fields {unknown}; known: {sorted(known)}")
        return cls(**value)


# ---------------------------------------------------------------- the effects
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


def active_power(speech: np.ndarray) -> float:
    """Mean power of the samples above 1% of the peak: speech, not the pauses between words."""
    active = speech[np.abs(speech) > 0.01 * (np.abs(speech).max(initial=0.0) + 1e-12)]
    return float(np.mean(active**2)) if active.size else 0.0


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech`` plus ``noise`` scaled to ``snr_db`` below the active speech power."""
    noise_power = float(np.mean(noise**2)) + 1e-20
    scale = math.sqrt(active_power(speech) / noise_power / 10 ** (snr_db / 10))
    return (speech + scale * noise).astype(np.float32)


def add_noise(speech: np.ndarray, snr_db: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Mix coloured noise at ``snr_db`` relative to the speech power over non-silent samples."""
    return mix_at_snr(speech, coloured_noise(len(speech), kind, rng), snr_db)


def babble(n: int, talkers: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Unit-power sum of ``talkers``, each at unit power, looped to ``n`` samples from a random
    start (a crowd talking over the utterance)."""
    out = np.zeros(n, dtype=np.float64)
    for t in talkers:
        if t.size == 0:
            continue
        t = t / (math.sqrt(float(np.mean(t.astype(np.float64) ** 2))) + 1e-12)
        start = int(rng.integers(len(t)))
        out += np.resize(np.roll(t, -start), n)
    return (out / (math.sqrt(float(np.mean(out**2))) + 1e-12)).astype(np.float32)


def simulate_rir(
    rng: np.random.Generator, cfg: AugmentConfig, sample_rate: int
) -> tuple[np.ndarray, float]:
    """A room impulse response of a random shoebox room (image-source method, pyroomacoustics):
    (response starting at the direct path, RT60 asked for)."""
    import pyroomacoustics as pra  # 1.4 s to import: only when reverberation is on

    for _ in range(100):
        dims = np.array(
            [rng.uniform(*cfg.room_m), rng.uniform(*cfg.room_m), rng.uniform(*ROOM_HEIGHT_M)]
        )
        rt60 = float(rng.uniform(*cfg.rt60_s))
        try:
            absorption, max_order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # this room cannot be that reverberant: draw another
            continue
        lo = MIN_WALL_DISTANCE_M
        source = [rng.uniform(lo, d - lo) for d in dims[:2]] + [rng.uniform(1.2, 1.9)]
        mic = [rng.uniform(lo, d - lo) for d in dims[:2]] + [rng.uniform(0.7, 1.6)]
        room = pra.ShoeBox(
            dims, fs=sample_rate, materials=pra.Material(absorption), max_order=max_order
        )
        room.add_source(source)
        room.add_microphone(mic)
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)
        peak = int(np.argmax(np.abs(rir)))
        rir = rir[peak:] / rir[peak]  # direct path first, at unit gain: no delay, same level
        return rir.astype(np.float32), rt60
    raise ValueError(f"no shoebox room in {cfg.room_m} m has an RT60 in {cfg.rt60_s} s")


def simulate_rirs(cfg: AugmentConfig, sample_rate: int, seed: Sequence[int]) -> list[np.ndarray]:
    """The run's pool of :attr:`AugmentConfig.rir_pool` room responses, the same for a seed."""
    return [
        simulate_rir(np.random.default_rng([*seed, i]), cfg, sample_rate)[0]
        for i in range(cfg.rir_pool)
    ]


def reverberate(speech: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``speech`` in the room of ``rir``: same length, same power (the tail past the end is cut)."""
    wet = torchaudio.functional.fftconvolve(torch.from_numpy(speech), torch.from_numpy(rir))
    wet = wet[: len(speech)].numpy()
    power_in, power_out = float(np.mean(speech**2)), float(np.mean(wet**2)) + 1e-20
    return (wet * math.sqrt(power_in / power_out)).astype(np.float32)


def telephone(speech: np.ndarray, sample_rate: int) -> np.ndarray:
    """A narrowband telephone channel: 300 Hz high-pass, down to 8 kHz (which removes
    everything above ~3.6 kHz), 8-bit mu-law, back up to ``sample_rate``."""
    wav = torch.from_numpy(np.ascontiguousarray(speech, dtype=np.float32))
    wav = torchaudio.functional.highpass_biquad(wav, sample_rate, TELEPHONE_HIGHPASS_HZ)
    narrow = torchaudio.functional.resample(
        wav, sample_rate, TELEPHONE_RATE, **_TELEPHONE_RESAMPLING
    )
    peak = float(narrow.abs().max()) + 1e-12
    codes = torchaudio.functional.mu_law_encoding(narrow / peak, 256)
    narrow = torchaudio.functional.mu_law_decoding(codes, 256) * peak
    out = torchaudio.functional.resample(
        narrow, TELEPHONE_RATE, sample_rate, **_TELEPHONE_RESAMPLING
    )
    return out[: len(speech)].numpy().astype(np.float32)


def apply_gain(speech: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale by ``gain_db`` and clip at full scale, as an overdriven recorder would."""
    return np.clip(speech * 10 ** (gain_db / 20), -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- one utterance
@dataclass(frozen=True)
class Augmentation:
    """The effects one utterance gets (None / False: not this one)."""

    rir: int | None = None
    noise_kind: str | None = None
    snr_db: float = 0.0
    babble_sources: tuple[int, ...] = ()
    telephone: bool = False
    gain_db: float | None = None

    def describe(self) -> str:
        parts = []
        if self.rir is not None:
            parts.append(f"room {self.rir}")
        if self.noise_kind is not None:
            parts.append(f"{self.noise_kind} noise {self.snr_db:.1f} dB")
        if self.telephone:
            parts.append("telephone")
        if self.gain_db is not None:
            parts.append(f"gain {self.gain_db:+.1f} dB")
        return ", ".join(parts) or "none"


def draw_augmentation(
    cfg: AugmentConfig, rng: np.random.Generator, num_sources: int, index: int | None = None
) -> Augmentation:
    """One utterance's effects. ``num_sources``: utterances babble may draw from (excluding
    ``index``, the utterance itself). Every draw is made whether or not it is used, so the
    effects of one setting do not shift the draws of another."""
    u = rng.random(4)
    rir = int(rng.integers(cfg.rir_pool))
    kind = cfg.noise_kinds[int(rng.integers(len(cfg.noise_kinds)))]
    snr = float(rng.uniform(*cfg.noise_snr_db))
    talkers = int(rng.integers(cfg.babble_talkers[0], cfg.babble_talkers[1] + 1))
    others = [i for i in rng.choice(num_sources, size=min(num_sources, talkers + 1), replace=False)]
    gain = float(rng.uniform(*cfg.gain_db))
    noisy = u[1] < cfg.noise
    if kind == BABBLE:
        others = [int(i) for i in others if i != index][:talkers]
        if not others:
            noisy = False  # nobody else to talk
    return Augmentation(
        rir=rir if u[0] < cfg.reverb else None,
        noise_kind=kind if noisy else None,
        snr_db=snr,
        babble_sources=tuple(others) if noisy and kind == BABBLE else (),
        telephone=bool(u[2] < cfg.telephone),
        gain_db=gain if u[3] < cfg.gain else None,
    )


def apply_augmentation(
    speech: np.ndarray,
    sample_rate: int,
    aug: Augmentation,
    rng: np.random.Generator,
    rirs: Sequence[np.ndarray] = (),
    load_source: Callable[[int], np.ndarray] | None = None,
) -> np.ndarray:
    """``speech`` with ``aug``'s effects: room, then noise, then channel, then level.
    ``load_source(i)`` returns utterance ``i``'s samples (for babble)."""
    out = np.asarray(speech, dtype=np.float32)
    if out.size == 0:
        return out
    if aug.rir is not None:
        out = reverberate(out, rirs[aug.rir])
    if aug.noise_kind == BABBLE:
        if load_source is None:
            raise ValueError("babble noise needs load_source (other utterances' audio)")
        talkers = [load_source(i) for i in aug.babble_sources]
        out = mix_at_snr(out, babble(len(out), talkers, rng), aug.snr_db)
    elif aug.noise_kind is not None:
        out = add_noise(out, aug.snr_db, aug.noise_kind, rng)
    if aug.telephone:
        out = telephone(out, sample_rate)
    if aug.gain_db is not None:
        out = apply_gain(out, aug.gain_db)
    return out


# ---------------------------------------------------------------- a whole manifest
def _read(path: str) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    return samples.mean(axis=1), int(rate)


@dataclass(frozen=True)
class _ManifestJob:
    cfg: AugmentConfig
    audio: tuple[str, ...]  # every utterance's file, for babble
    out_files: tuple[str, ...]
    seed: tuple[int, ...]
    rirs: tuple[np.ndarray, ...] = ()

    def __call__(self, i: int) -> tuple[int, str]:
        torch.set_num_threads(1)
        rng = np.random.default_rng([*self.seed, _UTTERANCE_STREAM, i])
        aug = draw_augmentation(self.cfg, rng, len(self.audio), i)
        speech, rate = _read(self.audio[i])

        def load_source(j: int) -> np.ndarray:
            samples, r = _read(self.audio[j])
            if r != rate:
                samples = torchaudio.functional.resample(torch.from_numpy(samples), r, rate).numpy()
            return samples

        out = apply_augmentation(speech, rate, aug, rng, self.rirs, load_source)
        peak = float(np.abs(out).max(initial=0.0))
        if peak > 1.0:  # 16-bit FLAC stores [-1, 1)
            out = out / peak
        sf.write(self.out_files[i], out, rate, format="FLAC", subtype="PCM_16")
        return len(out), aug.describe()


_WORKER_JOB: _ManifestJob | None = None


def _set_worker_job(job: _ManifestJob) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job


def _run_worker_job(i: int) -> tuple[int, str]:
    assert _WORKER_JOB is not None
    return _WORKER_JOB(i)


def augment_manifest(
    manifest: str | Path,
    out_manifest: str | Path,
    cfg: AugmentConfig,
    *,
    seed: Sequence[int] = (0,),
    jobs: int = 1,
    audio_dir: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Write an augmented copy of every utterance of ``manifest`` (FLAC, same rate and length)
    under ``audio_dir`` (default: ``audio/<manifest name>`` beside ``out_manifest``) and a
    manifest of them. Babble comes from the manifest's other utterances. The output depends
    on ``seed`` and ``cfg`` only, not on ``jobs``."""
    from tqdm import tqdm

    from asr.data.manifest import read_manifest, write_manifest

    utts = read_manifest(manifest)
    out_manifest = Path(out_manifest)
    audio_dir = Path(audio_dir or out_manifest.parent / "audio" / out_manifest.stem)
    audio_dir.mkdir(parents=True, exist_ok=True)
    if utts and any(u.offset for u in utts):
        raise ValueError(f"{manifest}: segments (offset) are not supported; cut the audio first")
    rate = sf.info(utts[0].audio).samplerate if utts else 16000
    rirs = tuple(simulate_rirs(cfg, rate, [*seed, _ROOM_STREAM])) if cfg.reverb > 0 else ()
    job = _ManifestJob(
        cfg,
        tuple(u.audio for u in utts),
        tuple(str(audio_dir / f"{u.id}.flac") for u in utts),
        tuple(seed),
        rirs,
    )
    frames: list[int] = []
    bar = tqdm(total=len(utts), desc="augment", unit="utt", disable=not progress)
    if jobs <= 1:
        threads = torch.get_num_threads()
        try:
            for i in range(len(utts)):
                frames.append(job(i)[0])
                bar.update()
        finally:
            torch.set_num_threads(threads)
    else:  # the job (with its rooms) goes to each worker once, not with every task
        context = multiprocessing.get_context("spawn")
        with context.Pool(jobs, initializer=_set_worker_job, initargs=(job,)) as pool:
            for n, _ in pool.imap(_run_worker_job, range(len(utts)), chunksize=8):
                frames.append(n)
                bar.update()
    bar.close()
    out = [
        dataclasses.replace(u, audio=job.out_files[i], duration=round(frames[i] / rate, 6))
        for i, u in enumerate(utts)
    ]
    tmp = out_manifest.with_suffix(".jsonl.tmp")
    write_manifest(tmp, out)
    os.replace(tmp, out_manifest)
    return out_manifest


# ---------------------------------------------------------------- in the data loader
class WaveformAugmenter:
    """Augmentation applied while training reads its audio (``ASRDataModule(augment=...)``):
    fresh effects every epoch, at the price of computing features every epoch (no cache).

    Draws come from Python's ``random``, which PyTorch seeds in every DataLoader worker from
    the run's seed (as for speed perturbation), so a run is repeatable for a given number of
    workers. The rooms are simulated in each worker on first use; babble reads other training
    utterances.

    :param sources: audio files babble may draw from (the training manifest's).
    """

    def __init__(
        self, cfg: AugmentConfig, sources: Sequence[str], sample_rate: int, seed: int = 0
    ) -> None:
        self.cfg = cfg
        self.sources = list(sources)
        self.sample_rate = sample_rate
        self.seed = seed
        self._rirs: list[np.ndarray] | None = None

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        import random

        from asr.audio import load_audio

        if self._rirs is None:
            rooms = self.cfg.reverb > 0
            self._rirs = simulate_rirs(self.cfg, self.sample_rate, [self.seed]) if rooms else []
        rng = np.random.default_rng(random.getrandbits(64))
        aug = draw_augmentation(self.cfg, rng, len(self.sources))

        def load_source(j: int) -> np.ndarray:
            return load_audio(self.sources[j], self.sample_rate).waveform.numpy()

        out = apply_augmentation(
            waveform.numpy(), self.sample_rate, aug, rng, self._rirs, load_source
        )
        return torch.from_numpy(out)
