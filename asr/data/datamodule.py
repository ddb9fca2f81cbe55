"""Lightning DataModule: manifests -> padded, normalised feature batches for CTC training.

Features are computed on the fly in DataLoader workers (optionally cached on disk), so no
feature-extraction stage is needed before training. Batches follow docs/ARCHITECTURE.md:
``features (B, T, F)`` with CMVN applied, ``feature_lengths``, ``targets (B, L)`` padded with
0 (the blank), ``target_lengths``, ``ids``, ``texts`` (normalised).

The module also defines what the model must match: ``feature_dim`` (from the one ``fbank``
config) and the ``tokenizer`` (loaded, or trained from the training transcripts); ``asr-train``
links both into the model.

Distributed training: the module builds a :class:`DurationBucketSampler` with the trainer's
rank and world size, so create the Trainer with ``use_distributed_sampler=False``.
Resumption: :class:`asr.data.resume.ResumableDataModule` keeps the sampler position in the
module's ``state_dict`` (saved by Lightning in every checkpoint), so a run killed mid-epoch
continues at the next batch.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from asr.audio import load_audio
from asr.data.augment import AugmentConfig, WaveformAugmenter
from asr.data.manifest import Utterance, read_manifest
from asr.data.resume import ResumableDataModule
from asr.data.sampler import DurationBucketSampler
from asr.data.tokenizer import Tokenizer, load_tokenizer, train_tokenizer
from asr.features import (
    VTLP,
    FbankConfig,
    FeatureCache,
    GlobalCMVN,
    SpecAugment,
    SpecAugmentConfig,
    as_fbank_config,
    compute_cmvn,
    fbank_features,
    speed_perturb,
    utterance_features,
)

log = logging.getLogger(__name__)


@dataclass
class FeaturePipeline:
    """audio -> (waveform augmentation) -> (speed perturbation) -> fbank (VTLP warp) -> CMVN ->
    (SpecAugment) for one utterance. Augmented audio is never cached."""

    fbank: FbankConfig
    cmvn: GlobalCMVN | None = None
    spec_augment: SpecAugment | None = None
    speed_factors: tuple[float, ...] = ()
    cache_dir: str | None = None
    augment: WaveformAugmenter | None = None
    vtlp: VTLP | None = None

    def __post_init__(self) -> None:
        self._cache = FeatureCache(self.cache_dir, self.fbank) if self.cache_dir else None

    def __call__(self, utt: Utterance) -> torch.Tensor:
        factor = random.choice(self.speed_factors) if self.speed_factors else 1.0
        warp = self.vtlp.draw(random) if self.vtlp is not None else 1.0
        if factor == 1.0 and warp == 1.0 and self.augment is None:  # the cache may hold it
            feats = utterance_features(utt, self.fbank, self._cache)
        else:
            audio = load_audio(utt.audio, self.fbank.sample_rate, utt.offset or 0.0, utt.duration)
            wav = audio.waveform if self.augment is None else self.augment(audio.waveform)
            wav = speed_perturb(wav, factor, audio.sample_rate)
            feats = fbank_features(wav, audio.sample_rate, self.fbank, vtln_warp=warp)
        if self.cmvn is not None:
            feats = self.cmvn(feats)
        if self.spec_augment is not None:
            feats = self.spec_augment(feats)
        return feats


class ASRDataset(Dataset):
    """Utterances -> {features, targets, id, text}; features computed on access."""

    def __init__(
        self, utterances: list[Utterance], tokenizer: Tokenizer, pipeline: FeaturePipeline
    ) -> None:
        self.utterances = utterances
        self.tokenizer = tokenizer
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, i: int) -> dict[str, Any]:
        utt = self.utterances[i]
        text = self.tokenizer.normalize(utt.text)
        return {
            "features": self.pipeline(utt),
            "targets": torch.tensor(self.tokenizer.encode(text), dtype=torch.long),
            "id": utt.id,
            "text": text,
        }


class BatchDataset(Dataset):
    """Indexed by one batch of utterance indices (what the sampler yields): its items."""

    def __init__(self, items: Dataset) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)  # type: ignore[arg-type]

    def __getitem__(self, indices: list[int]) -> list[dict[str, Any]]:
        return [self.items[i] for i in indices]


def collate_batch(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad features with 0 (the CMVN mean) and targets with 0 (the blank)."""
    feats = [it["features"] for it in items]
    targets = [it["targets"] for it in items]
    feat_dim = feats[0].shape[1]
    f_len = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
    t_len = torch.tensor([t.numel() for t in targets], dtype=torch.long)
    features = torch.zeros(len(items), int(f_len.max()), feat_dim)
    padded_targets = torch.zeros(len(items), max(1, int(t_len.max())), dtype=torch.long)
    for i, (f, t) in enumerate(zip(feats, targets, strict=True)):
        features[i, : f.shape[0]] = f
        padded_targets[i, : t.numel()] = t
    return {
        "features": features,
        "feature_lengths": f_len,
        "targets": padded_targets,
        "target_lengths": t_len,
        "ids": [it["id"] for it in items],
        "texts": [it["text"] for it in items],
    }


def _worker_init(_: int) -> None:
    # each worker is one of N processes on N cores: intra-op threads would only contend
    torch.set_num_threads(1)


class ASRDataModule(ResumableDataModule):
    """Train/val/test loaders over JSONL manifests.

    :param train_manifest: training JSONL (needed to build a missing tokenizer or CMVN).
    :param val_manifest: validation JSONL; ``test_manifest`` likewise for ``trainer.test``.
    :param tokenizer_path: tokenizer JSON; trained from ``train_manifest`` (``tokenizer_kind``,
        ``vocab_size``) and written there if the file does not exist; None: train, keep in memory.
    :param cmvn_path: CMVN JSON; computed from ``train_manifest`` and written if missing.
    :param fbank: :class:`FbankConfig` or a dict of its fields: the features of training, of the
        CMVN statistics and of the model package.
    :param spec_augment: SpecAugment settings for training (None: off; ``{}``: defaults).
    :param speed_perturb: training speed factors drawn per utterance, e.g. ``[0.9, 1.0, 1.1]``
        (default off). Batches of perturbed audio can be up to 1/min(factor) longer.
    :param vtlp: ``[low, high]``: vocal tract length perturbation of the training features, a
        warp factor drawn uniformly per utterance (default off; :class:`~asr.features.VTLP`).
    :param augment: :class:`~asr.data.augment.AugmentConfig` (or its fields) applied to the
        training audio as it is read (None: off; the synthetic corpus can bake it in instead).
    :param max_batch_seconds: audio seconds per batch (per device).
    :param max_batch_utterances: optional cap on utterances per batch.
    :param feature_cache_dir: cache unperturbed fbank features here (needs dither 0).
    :param cmvn_workers: threads for computing a missing CMVN file.
    :param prefetch_factor: batches each worker prepares ahead.
    """

    def __init__(
        self,
        train_manifest: str | None = None,
        val_manifest: str | None = None,
        test_manifest: str | None = None,
        tokenizer_path: str | None = None,
        tokenizer_kind: str = "char",
        vocab_size: int | None = None,
        cmvn_path: str | None = None,
        fbank: FbankConfig | dict[str, Any] | None = None,
        spec_augment: SpecAugmentConfig | dict[str, Any] | None = None,
        speed_perturb: list[float] | None = None,
        augment: AugmentConfig | dict[str, Any] | None = None,
        vtlp: list[float] | None = None,
        max_batch_seconds: float = 120.0,
        max_batch_utterances: int | None = None,
        num_buckets: int = 10,
        num_workers: int = 2,
        seed: int = 0,
        feature_cache_dir: str | None = None,
        cmvn_workers: int = 2,
        prefetch_factor: int = 4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # recorded in checkpoints beside the sampler state
        self.train_manifest = train_manifest
        self.val_manifest = val_manifest
        self.test_manifest = test_manifest
        self.tokenizer_path = tokenizer_path
        self.tokenizer_kind = tokenizer_kind
        self.vocab_size = vocab_size
        self.cmvn_path = cmvn_path
        self.fbank = as_fbank_config(fbank)
        if isinstance(spec_augment, dict):
            spec_augment = SpecAugmentConfig.from_dict(spec_augment)
        self.spec_augment = spec_augment
        self.speed_factors = tuple(float(f) for f in (speed_perturb or ()))
        self.augment = AugmentConfig.from_any(augment)
        self.vtlp = VTLP.from_any(vtlp)
        self.max_batch_seconds = max_batch_seconds
        self.max_batch_utterances = max_batch_utterances
        self.num_buckets = num_buckets
        self.num_workers = num_workers
        self.seed = seed
        self.feature_cache_dir = feature_cache_dir
        self.cmvn_workers = cmvn_workers
        self.prefetch_factor = prefetch_factor
        self._tokenizer: Tokenizer | None = None
        self.cmvn: GlobalCMVN | None = None

    # ---- what the model must match

    @property
    def feature_dim(self) -> int:
        """Features per frame (the encoder's ``input_dim``)."""
        return self.fbank.feature_dim

    @property
    def frame_shift_s(self) -> float:
        """Seconds per feature frame."""
        return self.fbank.frame_shift_ms / 1000.0

    @property
    def tokenizer(self) -> Tokenizer:
        """Loaded from ``tokenizer_path``, or trained from ``train_manifest`` when that file
        does not exist yet (:meth:`prepare_data` then writes this same tokenizer there)."""
        if self._tokenizer is None:
            if self.tokenizer_path and Path(self.tokenizer_path).exists():
                self._tokenizer = load_tokenizer(self.tokenizer_path)
            else:
                self._tokenizer = self._build_tokenizer()
        return self._tokenizer

    # ---- preparation

    def _train_utterances(self, what: str) -> list[Utterance]:
        if not self.train_manifest:
            raise ValueError(f"{what} needs train_manifest (or give an existing file path)")
        return read_manifest(self.train_manifest)

    def _build_tokenizer(self) -> Tokenizer:
        utts = self._train_utterances("training a tokenizer")
        return train_tokenizer(self.tokenizer_kind, (u.text for u in utts), self.vocab_size)

    def _build_cmvn(self) -> GlobalCMVN:
        utts = self._train_utterances("computing CMVN")
        return compute_cmvn(utts, self.fbank, num_workers=self.cmvn_workers)

    def prepare_data(self) -> None:
        """Rank 0 only: write a missing tokenizer / CMVN file so every rank loads the same."""
        if self.tokenizer_path and not Path(self.tokenizer_path).exists():
            log.info("training %s tokenizer -> %s", self.tokenizer_kind, self.tokenizer_path)
            self.tokenizer.save(self.tokenizer_path)
        if self.cmvn_path and not Path(self.cmvn_path).exists():
            log.info("computing CMVN -> %s", self.cmvn_path)
            self._build_cmvn().save(self.cmvn_path)

    def setup(self, stage: str | None = None) -> None:
        self.tokenizer  # noqa: B018 (load or train it now, not in the first loader)
        if self.cmvn is None:
            if self.cmvn_path and Path(self.cmvn_path).exists():
                self.cmvn = GlobalCMVN.load(self.cmvn_path)
            else:
                self.cmvn = self._build_cmvn()

    # ---- loaders

    def _dist(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _loader(self, manifest: str, train: bool) -> DataLoader:
        if self.cmvn is None:
            self.setup()
        utts = read_manifest(manifest)
        augment = None
        if train and self.augment is not None and self.augment.enabled:
            sources = [u.audio for u in utts]
            augment = WaveformAugmenter(self.augment, sources, self.fbank.sample_rate, self.seed)
        pipeline = FeaturePipeline(
            self.fbank,
            self.cmvn,
            SpecAugment(self.spec_augment) if train and self.spec_augment else None,
            self.speed_factors if train else (),
            self.feature_cache_dir,
            augment,
            self.vtlp if train else None,
        )
        rank, world = self._dist()
        sampler = DurationBucketSampler(
            [u.duration for u in utts],
            self.max_batch_seconds,
            self.max_batch_utterances,
            num_buckets=self.num_buckets,
            shuffle=train,
            seed=self.seed,
            rank=rank,
            world_size=world,
        )
        if train:
            sampler = self.resumable(sampler)
        return DataLoader(
            BatchDataset(ASRDataset(utts, self.tokenizer, pipeline)),
            sampler=sampler,  # yields whole batches; Lightning calls its set_epoch
            batch_size=None,
            num_workers=self.num_workers,
            collate_fn=collate_batch,
            worker_init_fn=_worker_init if self.num_workers else None,
            persistent_workers=self.num_workers > 0,
            prefetch_factor=self.prefetch_factor if self.num_workers else None,
        )

    def train_dataloader(self) -> DataLoader:
        if not self.train_manifest:
            raise ValueError("train_dataloader needs train_manifest")
        return self._loader(self.train_manifest, train=True)

    def val_dataloader(self) -> DataLoader | list:
        if not self.val_manifest:
            log.warning("no val_manifest: validation is skipped")
            return []  # Lightning's way of saying "no validation data"
        return self._loader(self.val_manifest, train=False)

    def test_dataloader(self) -> DataLoader:
        if not self.test_manifest:
            raise ValueError("test_dataloader needs test_manifest")
        return self._loader(self.test_manifest, train=False)
