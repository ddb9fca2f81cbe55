"""Data for the autoregressive recipes: the copy task and image files as pixel sequences.

The Lightning data modules live in :mod:`asr.autoregressive.data.datamodule` (configs name
them by that path); this package stays free of Lightning so evaluation commands start fast.
"""

from .copy_task import PAD, CopyTask, CopyTaskDataset, collate_copy
from .images import (
    DATASETS,
    DatasetError,
    ImageSet,
    default_data_dir,
    download,
    expected_files,
    load_split,
    load_test_sequences,
    read_cifar10_batch,
    read_idx,
)
from .sampler import EpochBatchSampler

__all__ = [
    "DATASETS",
    "PAD",
    "CopyTask",
    "CopyTaskDataset",
    "DatasetError",
    "EpochBatchSampler",
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
