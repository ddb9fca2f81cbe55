"""Image datasets as pixel sequences: MNIST-format IDX files and CIFAR-10 binary batches.

Readers for the standard distribution formats, so users point the recipes at the files they
already have:

- IDX (MNIST, Fashion-MNIST): ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` with or without
  ``.gz``; big-endian header ``0 0 0x08 ndim`` then one uint32 per dimension, then the bytes.
- CIFAR-10 binary version: ``data_batch_{1..5}.bin``, ``test_batch.bin``; 10,000 records of
  1 label byte + 3,072 pixel bytes (1,024 red, 1,024 green, 1,024 blue, row-major). The python
  version is never read (unpickling runs code from the file).

A bad file raises :class:`DatasetError`, whose message is one line naming the file, what is
wrong and what would fix it. Images become token sequences in raster order, with an RGB
pixel's three sub-pixels next to each other (the paper's 3,072-step CIFAR-10 sequences).
Writing the readers by hand is simpler than depending on torchvision for two file formats.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tarfile
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

IDX_UBYTE = 0x08
DATASETS = ("mnist", "fashion-mnist", "cifar10")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST = ("test_batch.bin",)
CIFAR_RECORD = 1 + 3 * 32 * 32

# Official download locations and checksums (MD5 is what the publishers list).
DOWNLOADS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
    "cifar10": (
        "https://www.cs.toronto.edu/~kriz/",
        {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
    ),
}


class DatasetError(ValueError):
    """A dataset file that cannot be used; ``str()`` is one line: file, reason, fix."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


@dataclass(frozen=True)
class ImageSet:
    """uint8 images ``(n, height, width, channels)`` and their labels ``(n,)``."""

    images: np.ndarray
    labels: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def sequences(self) -> np.ndarray:
        """``(n, height * width * channels)`` tokens, raster order, sub-pixels adjacent."""
        return self.images.reshape(len(self.images), -1)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DatasetError(path, f"damaged gzip data ({exc}); download the file again") from None


def read_idx(path: str | Path, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip or plain) into an array of its shape."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(path, f"only {len(data)} bytes: truncated IDX file (download it again)")
    zero, dtype_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or dtype_code != IDX_UBYTE or (expect_ndim is not None and ndim != expect_ndim):
        want = f"0x00000{IDX_UBYTE:x}{expect_ndim:02x}" if expect_ndim else "0x000008NN"
        raise DatasetError(
            path,
            f"wrong magic number 0x{data[:4].hex()} (expected {want}: unsigned-byte IDX with "
            f"{expect_ndim or 'N'} dimensions); is this an MNIST-format "
            f"{'images' if expect_ndim == 3 else 'labels'} file?",
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(path, "truncated IDX header (download the file again)")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    need = int(np.prod(dims, dtype=np.int64))
    have = len(data) - header
    if have != need:
        what = "truncated" if have < need else "longer than its header says"
        raise DatasetError(
            path,
            f"{what}: header says {'x'.join(map(str, dims))} = {need} bytes of data, the file "
            f"has {have} (download it again)",
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_cifar10_batch(path: str | Path) -> ImageSet:
    """Read one CIFAR-10 binary batch into ``(n, 32, 32, 3)`` images and labels."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(path, f"cannot read ({exc.strerror})") from None
    if not data or len(data) % CIFAR_RECORD:
        hint = (
            " (this looks like the python version: use the binary version, cifar-10-binary.tar.gz)"
            if data[:1] == b"\x80"
            else " (truncated? download it again)"
        )
        raise DatasetError(
            path,
            f"{len(data)} bytes is not a whole number of {CIFAR_RECORD}-byte CIFAR-10 records"
            + hint,
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0]
    if int(labels.max()) > 9:
        bad = int(np.argmax(labels > 9))
        raise DatasetError(
            path,
            f"record {bad} has label {int(labels[bad])}, not 0-9: not a CIFAR-10 binary batch "
            "(CIFAR-100 binaries have two label bytes)",
        )
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return ImageSet(np.ascontiguousarray(images), labels.copy())


def _find(data_dir: Path, name: str) -> Path | None:
    for candidate in (data_dir / name, data_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def expected_files(dataset: str) -> list[str]:
    """The file names a dataset folder must hold (gzip optional for IDX)."""
    if dataset == "cifar10":
        return [*CIFAR_TRAIN, *CIFAR_TEST]
    _check_dataset(dataset)
    return [f"{n}[.gz]" for pair in _IDX_NAMES.values() for n in pair]


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")


def _missing(dataset: str, data_dir: Path, names: list[str]) -> DatasetError:
    fetch = f"asr-ar data {dataset} --data-dir {data_dir} --download"
    if dataset == "fashion-mnist":
        fetch += f", or apt-get install dataset-fashion-mnist (files in {DEBIAN_FASHION_MNIST})"
    return DatasetError(
        data_dir,
        f"missing {', '.join(names)}; the {dataset} folder needs {' '.join(expected_files(dataset))} "
        f"(get them with: {fetch})",
    )


def load_split(dataset: str, data_dir: str | Path, split: str) -> ImageSet:
    """The ``train`` or ``test`` images of ``dataset`` from the files in ``data_dir``."""
    _check_dataset(dataset)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    data_dir = Path(data_dir)
    if dataset == "cifar10":
        names = list(CIFAR_TRAIN if split == "train" else CIFAR_TEST)
        missing = [n for n in names if not (data_dir / n).is_file()]
        if missing:
            raise _missing(dataset, data_dir, missing)
        parts = [read_cifar10_batch(data_dir / n) for n in names]
        return ImageSet(
            np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts])
        )
    image_name, label_name = _IDX_NAMES[split]
    image_path, label_path = _find(data_dir, image_name), _find(data_dir, label_name)
    if image_path is None or label_path is None:
        missing = [n for n, p in ((image_name, image_path), (label_name, label_path)) if p is None]
        raise _missing(dataset, data_dir, missing)
    images = read_idx(image_path, expect_ndim=3)
    labels = read_idx(label_path, expect_ndim=1)
    if len(labels) != len(images):
        raise DatasetError(
            label_path, f"{len(labels)} labels for {len(images)} images in {image_path.name}"
        )
    return ImageSet(images[..., None], labels)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(dataset: str, data_dir: str | Path) -> Path:
    """Fetch ``dataset`` from its official location into ``data_dir`` (checksums verified).

    Only ever called on request (``asr-ar data DATASET --download``); files already present are
    kept.
    """
    _check_dataset(dataset)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    base, files = DOWNLOADS[dataset]
    for name, md5 in files.items():
        target = data_dir / name
        if dataset == "cifar10" and all((data_dir / n).is_file() for n in expected_files(dataset)):
            break
        if not target.is_file():
            print(f"downloading {base}{name}")
            with tempfile.NamedTemporaryFile(dir=data_dir, delete=False) as tmp:
                with urllib.request.urlopen(base + name, timeout=60) as response:
                    shutil.copyfileobj(response, tmp)
            Path(tmp.name).replace(target)
        if _md5(target) != md5:
            target.unlink()
            raise DatasetError(target, f"MD5 differs from the published {md5}; download again")
        if dataset == "cifar10":
            _extract_cifar(target, data_dir)
    return data_dir


def _extract_cifar(archive: Path, data_dir: Path) -> None:
    """Copy the six binary batches out of the archive (no other member is written)."""
    wanted = set(expected_files("cifar10"))
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and name in wanted:
                source = tar.extractfile(member)
                assert source is not None
                with source, (data_dir / name).open("wb") as out:
                    shutil.copyfileobj(source, out)


def default_data_dir(dataset: str) -> Path:
    """Where a dataset is looked for when no folder is given."""
    if dataset == "fashion-mnist":
        return DEBIAN_FASHION_MNIST
    return Path("data") / dataset


def load_test_sequences(
    dataset: str, data_dir: str | Path | None, max_images: int | None = None
) -> torch.Tensor:
    """The official test images as uint8 token rows (optionally the first ``max_images``)."""
    images = load_split(dataset, data_dir or default_data_dir(dataset), "test")
    seqs = torch.from_numpy(images.sequences().copy())
    return seqs[:max_images] if max_images else seqs
