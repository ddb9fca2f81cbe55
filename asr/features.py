"""Acoustic features: waveform -> log-mel filterbank frames, normalised and augmented.

Sits between :mod:`asr.audio` (waveforms) and :mod:`asr.data.datamodule` (batches). The same
:class:`FbankConfig` and :class:`GlobalCMVN` travel inside a model package so inference
featurises exactly like training did.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF
import torchaudio.transforms as T

from asr.audio import load_audio


@dataclass
class FbankConfig:
    """Kaldi-compatible log-mel filterbank settings.

    :param dither: Kaldi's default is 1.0; 0.0 keeps features deterministic (tests, caching).
    :param deltas: append delta and delta-delta features (feature_dim becomes 3 * num_mel_bins).
    :param utterance_mean: subtract each utterance's mean log-mel vector (cepstral mean
        normalisation done on the filterbank): a fixed spectral colouring, a channel's or a
        synthesiser's, becomes an offset the features no longer carry. Needs the whole
        utterance, so streaming refuses it.
    """

    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    dither: float = 0.0
    deltas: bool = False
    sample_rate: int = 16000
    utterance_mean: bool = False

    @property
    def feature_dim(self) -> int:
        return self.num_mel_bins * (3 if self.deltas else 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FbankConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown FbankConfig keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    def digest(self) -> str:
        """Short hash of the settings, used to key cached features (a switch that is off is
        left out, so adding one keeps the caches made before it)."""
        settings = {k: v for k, v in self.to_dict().items() if k != "utterance_mean" or v}
        blob = json.dumps(settings, sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:12]


def as_fbank_config(cfg: FbankConfig | dict[str, Any] | None) -> FbankConfig:
    """Accept a dataclass, a plain dict (YAML configs) or None (defaults)."""
    if cfg is None:
        return FbankConfig()
    if isinstance(cfg, FbankConfig):
        return cfg
    return FbankConfig.from_dict(dict(cfg))


# kaldi.fbank builds its mel filterbank afresh on every call, which a stream of short chunks
# pays again and again; the bank depends only on the settings, so it is built once per setting.
if not hasattr(kaldi.get_mel_banks, "cache_info"):
    kaldi.get_mel_banks = functools.lru_cache(maxsize=8)(kaldi.get_mel_banks)


def fbank_features(
    waveform: torch.Tensor,
    sample_rate: int,
    cfg: FbankConfig | None = None,
    vtln_warp: float = 1.0,
) -> torch.Tensor:
    """Log-mel filterbank ``(frames, feature_dim)`` of a mono waveform ``(T,)`` or ``(1, T)``.

    The waveform is float in [-1, 1]; Kaldi works on 16-bit sample values, so it is scaled by
    2**15 first, which keeps our features numerically comparable with Kaldi/lhotse ones.
    ``vtln_warp`` != 1 warps the filterbank's frequency axis (Kaldi's piecewise-linear VTLN
    warp): a longer or shorter vocal tract, i.e. another speaker (see :class:`VTLP`).
    """
    cfg = cfg or FbankConfig()
    if sample_rate != cfg.sample_rate:
        raise ValueError(
            f"waveform is {sample_rate} Hz but FbankConfig.sample_rate is {cfg.sample_rate}; "
            "resample with asr.audio.load_audio(path, sample_rate=...) first"
        )
    wav = waveform.reshape(1, -1).to(torch.float32) * 32768.0
    win = int(cfg.sample_rate * cfg.frame_length_ms / 1000)
    if wav.shape[1] < win:
        return torch.zeros(0, cfg.feature_dim)
    feats = kaldi.fbank(
        wav,
        num_mel_bins=cfg.num_mel_bins,
        frame_length=cfg.frame_length_ms,
        frame_shift=cfg.frame_shift_ms,
        dither=cfg.dither,
        energy_floor=0.0,
        sample_frequency=float(cfg.sample_rate),
        vtln_warp=vtln_warp,
    )
    return utterance_features_from_fbank(feats, cfg)


def utterance_features_from_fbank(fbank: torch.Tensor, cfg: FbankConfig) -> torch.Tensor:
    """The steps after the filterbank that read more than one frame (the utterance mean,
    deltas): what a recording featurized in pieces must apply to the joined pieces."""
    feats = fbank
    if cfg.utterance_mean:
        feats = feats - feats.mean(dim=0)
    if cfg.deltas:
        d1 = AF.compute_deltas(feats.T).T
        d2 = AF.compute_deltas(d1.T).T
        feats = torch.cat([feats, d1, d2], dim=1)
    return feats


# --------------------------------------------------------------------------------------------
# global CMVN


class GlobalCMVN:
    """Per-dimension mean/variance normalisation with statistics of the whole training set."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32).flatten()
        self.std = torch.as_tensor(std, dtype=torch.float32).flatten()
        if self.mean.shape != self.std.shape:
            raise ValueError(f"CMVN mean {self.mean.shape} and std {self.std.shape} differ")

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        if feats.shape[-1] != self.mean.numel():
            raise ValueError(
                f"features have dim {feats.shape[-1]} but CMVN was computed for "
                f"{self.mean.numel()}; recompute CMVN with the same FbankConfig"
            )
        return (feats - self.mean.to(feats)) / self.std.to(feats)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GlobalCMVN:
        return cls(torch.tensor(d["mean"]), torch.tensor(d["std"]))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> GlobalCMVN:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, KeyError, json.JSONDecodeError) as e:
            raise ValueError(
                f"{path}: not a CMVN JSON file ({e}); make one with asr-data cmvn"
            ) from e

    def __repr__(self) -> str:
        return f"GlobalCMVN(dim={self.mean.numel()})"


MIN_STD = 1e-5  # floor so constant dimensions (e.g. silent bands) do not divide by zero


def compute_cmvn(
    utterances: Iterable[Any],
    cfg: FbankConfig | None = None,
    num_workers: int = 1,
    progress: Callable[[int], None] | None = None,
    cache: FeatureCache | None = None,
) -> GlobalCMVN:
    """CMVN statistics in one streaming pass over ``utterances``.

    Items are :class:`asr.data.manifest.Utterance` objects (audio read with their offset and
    duration) or ready feature tensors ``(T, F)``. Sums are float64 so hours of audio do not
    lose precision. ``num_workers`` threads overlap decoding (soundfile and torch release the
    GIL). ``progress(n)`` is called with the number of utterances finished. With ``cache``,
    features are read from it when there and written to it otherwise, so that training's first
    epoch reads them back instead of computing them again.
    """
    cfg = cfg or FbankConfig()

    def featurize(item: Any) -> torch.Tensor:
        if isinstance(item, torch.Tensor):
            return item
        return utterance_features(item, cfg, cache)

    total = torch.zeros(0, dtype=torch.float64)  # sized by the first utterance
    total_sq = torch.zeros(0, dtype=torch.float64)
    count = 0

    def add(feats: torch.Tensor) -> None:
        nonlocal total, total_sq, count
        f = feats.to(torch.float64)
        if count == 0:
            total = torch.zeros(f.shape[-1], dtype=torch.float64)
            total_sq = torch.zeros_like(total)
        elif f.shape[-1] != total.numel():
            raise ValueError(f"feature dim {f.shape[-1]} differs from earlier {total.numel()}")
        total += f.sum(0)
        total_sq += (f * f).sum(0)
        count += f.shape[0]
        if progress is not None:
            progress(1)

    if num_workers <= 1:
        for item in utterances:
            add(featurize(item))
    else:
        with ThreadPoolExecutor(num_workers) as pool:
            for feats in pool.map(featurize, utterances):
                add(feats)
    if count == 0:
        raise ValueError("compute_cmvn: no feature frames (empty manifest or all clips too short)")
    mean = total / count
    var = (total_sq / count - mean * mean).clamp_min(0.0)
    return GlobalCMVN(mean.float(), var.sqrt().clamp_min(MIN_STD).float())


# --------------------------------------------------------------------------------------------
# augmentation


@dataclass
class SpecAugmentConfig:
    """SpecAugment (Park et al., 2019) masks; the defaults are the LibriSpeech "LD"-like policy.

    :param max_time_fraction: a time mask is at most this fraction of the utterance, so short
        utterances are not wiped out by a fixed-width mask.
    """

    freq_masks: int = 2
    freq_width: int = 27
    time_masks: int = 2
    time_width: int = 40
    max_time_fraction: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpecAugmentConfig:
        return cls(**d)


class SpecAugment(torch.nn.Module):
    """Frequency and time masking of one utterance's features ``(T, F)`` (masked with the mean).

    Applied before CMVN would bias the normalisation, so the data module applies it after
    CMVN, where a zero fill equals the global mean.
    """

    def __init__(self, cfg: SpecAugmentConfig | dict[str, Any] | None = None) -> None:
        super().__init__()
        if cfg is None:
            cfg = SpecAugmentConfig()
        elif isinstance(cfg, dict):
            cfg = SpecAugmentConfig.from_dict(cfg)
        self.cfg = cfg
        self.freq_mask = T.FrequencyMasking(cfg.freq_width) if cfg.freq_width > 0 else None

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = feats.T.unsqueeze(0)  # torchaudio masks want (..., freq, time)
        if self.freq_mask is not None:
            for _ in range(self.cfg.freq_masks):
                x = self.freq_mask(x)
        width = min(self.cfg.time_width, int(self.cfg.max_time_fraction * x.shape[-1]))
        if width > 0:
            tmask = T.TimeMasking(width)
            for _ in range(self.cfg.time_masks):
                x = tmask(x)
        return x.squeeze(0).T.contiguous()


@dataclass(frozen=True)
class VTLP:
    """Vocal tract length perturbation (Jaitly & Hinton, 2013): each training utterance's
    filterbank frequency axis warped by a factor drawn uniformly from ``[low, high]``. Unlike
    speed perturbation it changes the formants alone, not the pitch, the tempo or the frame
    count: new speakers from the same audio.
    """

    low: float = 0.9
    high: float = 1.1

    def __post_init__(self) -> None:
        if not 0.5 < self.low <= self.high < 2.0:
            raise ValueError(f"VTLP range must satisfy 0.5 < low <= high < 2, got {self}")

    @classmethod
    def from_any(cls, value: VTLP | Sequence[float] | None) -> VTLP | None:
        """``[low, high]`` from a config (None: off)."""
        if value is None or isinstance(value, VTLP):
            return value
        low, high = (float(v) for v in value)
        return cls(low, high)

    def draw(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


SPEED_MAX_DENOMINATOR = 100  # speed factors are used to two decimals (0.9, 0.95, 1.1)


def speed_perturb(waveform: torch.Tensor, factor: float, sample_rate: int = 16000) -> torch.Tensor:
    """Change speed and pitch by ``factor`` (Kaldi/lhotse style): resample to rate/factor and
    play back at the original rate, so 1.1 gives a clip 1/1.1 as long.

    Only the ratio matters, so ``sample_rate`` is accepted for symmetry with other transforms
    and does not change the result.
    """
    if factor == 1.0:
        return waveform
    if factor <= 0:
        raise ValueError(f"speed factor must be > 0, got {factor}")
    # Resampling depends only on the rate ratio; reducing it to a small fraction (0.9 -> 9/10)
    # keeps the polyphase filter tiny, where 16000 -> 17778 Hz would need thousands of phases.
    ratio = Fraction(factor).limit_denominator(SPEED_MAX_DENOMINATOR)
    return AF.resample(waveform, ratio.numerator, ratio.denominator)


# --------------------------------------------------------------------------------------------
# feature cache


class FeatureCache:
    """Features on disk, one ``.pt`` per utterance under ``root/<config digest>/``.

    Only deterministic features are cached (no dither, no speed perturbation); the config digest
    in the path means a changed FbankConfig never reads stale features.
    """

    def __init__(self, root: str | Path, cfg: FbankConfig) -> None:
        if cfg.dither != 0.0:
            raise ValueError("feature cache needs dither=0.0 (dithered features differ per read)")
        self.dir = Path(root) / cfg.digest()
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        safe = hashlib.sha1(key.encode()).hexdigest()[:16]
        return self.dir / f"{safe}.pt"

    def get(self, key: str) -> torch.Tensor | None:
        p = self._path(key)
        if not p.is_file():
            return None
        try:
            return torch.load(p, weights_only=True)
        except Exception:  # a half-written file from a killed worker: recompute
            return None

    def put(self, key: str, feats: torch.Tensor) -> None:
        p = self._path(key)
        tmp = p.with_suffix(f".tmp{id(feats)}")
        torch.save(feats.clone(), tmp)
        tmp.replace(p)  # atomic, so concurrent workers never see a partial file


def utterance_features(
    utt: Any, cfg: FbankConfig, cache: FeatureCache | None = None
) -> torch.Tensor:
    """Fbank of an utterance's audio (its offset and duration), read from ``cache`` when there
    and written to it otherwise: the one place that keys the cache, for CMVN and training."""
    key = f"{utt.id}\t{utt.audio}\t{utt.offset}\t{utt.duration}"
    feats = cache.get(key) if cache is not None else None
    if feats is None:
        audio = load_audio(utt.audio, cfg.sample_rate, utt.offset or 0.0, utt.duration)
        feats = fbank_features(audio.waveform, audio.sample_rate, cfg)
        if cache is not None:
            cache.put(key, feats)
    return feats
