"""Lightning data modules for the autoregressive recipes: the copy task and pixel sequences.

Batches are dicts with ``tokens`` (long ``(B, N)``) and, where only some positions are scored,
``loss_mask`` (bool ``(B, N)``). Each module says what its sequences look like through
``vocab_size``, ``max_len`` and :meth:`describe`, which training stores in checkpoints and
packages (so sampling knows the image shape, and copy evaluation the task).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from asr.data.resume import ResumableDataModule

from .copy_task import CopyTask, CopyTaskDataset, collate_copy
from .images import default_data_dir, load_split
from .sampler import EpochBatchSampler

IMAGE_LEVELS = 256


class _Batches(Dataset):
    """``dataset[indices]`` -> the collated batch: the samplers yield whole batches, given to the
    DataLoader as ``sampler=`` with ``batch_size=None`` (what resumable training needs)."""

    def __init__(self, items: Dataset, collate: Callable[[list], Any]) -> None:
        self.items, self.collate = items, collate

    def __getitem__(self, indices: list[int]) -> Any:
        return self.collate([self.items[i] for i in indices])


def _batch_loader(
    items: Dataset,
    sampler: EpochBatchSampler,
    collate: Callable[[list], Any],
    num_workers: int = 0,
) -> DataLoader:
    return DataLoader(
        _Batches(items, collate),
        sampler=sampler,  # yields whole batches; Lightning calls its set_epoch
        batch_size=None,
        num_workers=num_workers,
    )


class CopyTaskDataModule(ResumableDataModule):
    """Copy-task sequences made on the fly (see :mod:`asr.autoregressive.data.copy_task`).

    :param train_sequences: sequences per training epoch (drawn once per index, so an epoch
        larger than the run never repeats a sequence).
    :param val_sequences: fixed validation sequences (a different seed from training).
    """

    def __init__(
        self,
        max_symbols: int = 128,
        n_symbols: int = 10,
        min_symbols: int = 1,
        batch_size: int = 64,
        train_sequences: int = 1_000_000,
        val_sequences: int = 512,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.task = CopyTask(max_symbols=max_symbols, n_symbols=n_symbols, min_symbols=min_symbols)
        self.batch_size, self.seed = batch_size, seed
        self.train_sequences, self.val_sequences = train_sequences, val_sequences

    @property
    def vocab_size(self) -> int:
        return self.task.vocab_size

    @property
    def max_len(self) -> int:
        return self.task.max_len

    def describe(self) -> dict:
        return {"task": "copy", **self.task.to_dict()}

    def _loader(self, dataset: Dataset, train: bool) -> DataLoader:
        sampler = EpochBatchSampler(
            len(dataset), self.batch_size, shuffle=False, seed=self.seed, drop_last=train
        )
        if train:
            sampler = self.resumable(sampler)
        return _batch_loader(dataset, sampler, partial(collate_copy, self.task))

    def train_dataloader(self) -> DataLoader:
        dataset = CopyTaskDataset(self.task, self.train_sequences, seed=self.seed)
        return self._loader(dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        dataset = CopyTaskDataset(self.task, self.val_sequences, seed=self.seed + 7_777_777)
        return self._loader(dataset, train=False)


class PixelSequences(Dataset):
    """uint8 token rows ``(n, N)`` as ``{"tokens": long (N,)}`` items."""

    def __init__(self, sequences: torch.Tensor) -> None:
        self.sequences = sequences

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.sequences[index]


def collate_pixels(rows: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"tokens": torch.stack(rows).long()}


class ImageDataModule(ResumableDataModule):
    """Images from MNIST-format IDX files or CIFAR-10 binary batches, as pixel sequences.

    The official training images are split into training and a held-out validation part (the
    last ``val_images``); the official test set is left for the final bits/dim evaluation.

    :param dataset: ``mnist``, ``fashion-mnist`` or ``cifar10``.
    :param data_dir: folder with the dataset's files (default: Debian's Fashion-MNIST package
        for ``fashion-mnist``, ``data/<dataset>`` otherwise).
    :param max_train_images: use only the first N training images (small runs, smoke tests).
    """

    def __init__(
        self,
        dataset: str = "fashion-mnist",
        data_dir: str | None = None,
        batch_size: int = 10,
        eval_batch_size: int | None = None,
        val_images: int = 1000,
        max_train_images: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.data_dir = Path(data_dir) if data_dir else default_data_dir(dataset)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.val_images, self.max_train_images = val_images, max_train_images
        self.seed, self.num_workers = seed, num_workers
        self.image_shape = (32, 32, 3) if dataset == "cifar10" else (28, 28, 1)
        self.train_set: PixelSequences | None = None
        self.val_set: PixelSequences | None = None

    @property
    def vocab_size(self) -> int:
        return IMAGE_LEVELS

    @property
    def max_len(self) -> int:
        h, w, c = self.image_shape
        return h * w * c

    def describe(self) -> dict:
        return {"task": "image", "dataset": self.dataset, "image_shape": list(self.image_shape)}

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        images = load_split(self.dataset, self.data_dir, "train")
        self.image_shape = images.shape
        seqs = torch.from_numpy(images.sequences().copy())
        if not 0 < self.val_images < len(seqs):
            raise ValueError(
                f"val_images={self.val_images} must leave training images ({len(seqs)} in total)"
            )
        train, val = seqs[: -self.val_images], seqs[-self.val_images :]
        if self.max_train_images:
            train = train[: self.max_train_images]
        self.train_set, self.val_set = PixelSequences(train), PixelSequences(val)

    def _loader(self, dataset: Dataset, batch: int, train: bool) -> DataLoader:
        sampler = EpochBatchSampler(
            len(dataset), batch, shuffle=train, seed=self.seed, drop_last=train
        )
        if train:
            sampler = self.resumable(sampler)
        return _batch_loader(dataset, sampler, collate_pixels, self.num_workers)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        assert self.train_set is not None
        return self._loader(self.train_set, self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        self.setup()
        assert self.val_set is not None
        return self._loader(self.val_set, self.eval_batch_size, train=False)
