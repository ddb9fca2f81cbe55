"""Write a few images in the official MNIST IDX or CIFAR-10 binary format, for smoke runs.

The image recipes' CI smoke needs files in the real formats without a download or a 30 MB
package; these are random blobs on a dark background (a little structure for the model), written
with the byte layouts the readers in ``asr.autoregressive.data.images`` parse.

    python tools/write_tiny_images.py mnist data/tiny_mnist --train 32 --test 20
    python tools/write_tiny_images.py cifar10 data/tiny_cifar10 --train 8 --test 4
"""

from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

import numpy as np

from asr.autoregressive.data.images import CIFAR_TEST, CIFAR_TRAIN


def blobs(n: int, size: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` images of one bright Gaussian blob each, uint8 (n, size, size, channels)."""
    yy, xx = np.mgrid[0:size, 0:size]
    centres = rng.uniform(size * 0.3, size * 0.7, (n, 2))
    widths = rng.uniform(size * 0.08, size * 0.2, n)
    dy = yy[None] - centres[:, 0, None, None]
    dx = xx[None] - centres[:, 1, None, None]
    dist2 = dy**2 + dx**2
    blob = np.exp(-dist2 / (2 * widths[:, None, None] ** 2))
    colour = rng.uniform(0.5, 1.0, (n, 1, 1, channels))
    return np.clip(blob[..., None] * colour * 255, 0, 255).astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX: two zero bytes, type 0x08 (unsigned byte), ndim, big-endian uint32 dims, data."""
    header = struct.pack(">I", 0x0800 | array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, n_train: int, n_test: int, rng: np.random.Generator) -> None:
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = blobs(n, 28, 1, rng)[..., 0]
        labels = rng.integers(0, 10, n).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            with gzip.open(folder / f"{prefix}-{kind}-ubyte.gz", "wb") as f:
                f.write(idx_bytes(array))


def write_cifar10(folder: Path, n_train: int, n_test: int, rng: np.random.Generator) -> None:
    """Records of 1 label byte then 1,024 R, 1,024 G, 1,024 B bytes; train split over 5 files
    (at least one image each, so the training set has at least 5)."""
    per_file = {CIFAR_TEST[0]: n_test}
    for i, name in enumerate(CIFAR_TRAIN):
        share = n_train // len(CIFAR_TRAIN) + (i < n_train % len(CIFAR_TRAIN))
        per_file[name] = max(1, share)
    for name, n in per_file.items():
        images = blobs(n, 32, 3, rng)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        planes = images.transpose(0, 3, 1, 2).reshape(n, -1)
        (folder / name).write_bytes(np.concatenate([labels[:, None], planes], axis=1).tobytes())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dataset", choices=["mnist", "cifar10"], help="file format to write")
    p.add_argument("out", type=Path, help="folder (created)")
    p.add_argument("--train", type=int, default=32, help="training images")
    p.add_argument("--test", type=int, default=20, help="test images")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.train < 1 or args.test < 1:
        p.error("--train and --test must be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    write = write_mnist if args.dataset == "mnist" else write_cifar10
    write(args.out, args.train, args.test, rng)
    print(f"wrote {args.train} + {args.test} {args.dataset}-format images to {args.out}")


if __name__ == "__main__":
    main()
