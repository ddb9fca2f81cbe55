"""Data for the autoregressive recipes: the copy task and image files as pixel sequences."""

from .copy_task import PAD, CopyTask, CopyTaskDataset, collate_copy
from .datamodule import CopyTaskDataModule, ImageDataModule, default_data_dir, load_test_sequences
from .images import (
    DATASETS,
    DatasetError,
    ImageSet,
    download,
    expected_files,
    load_split,
    read_cifar10_batch,
    read_idx,
)
from .sampler import EpochBatchSampler

__all__ = [
    "DATASETS",
    "PAD",
    "CopyTask",
    "CopyTaskDataModule",
    "CopyTaskDataset",
    "DatasetError",
    "EpochBatchSampler",
    "ImageDataModule",
    "ImageSet",
    "collate_copy",
    "default_data_dir",
    "download",
    "expected_files",
    "load_split",
    "read_cifar10_batch",
    "read_idx",
    "load_test_sequences",
]
