"""IDX and CIFAR-10 binary readers on files written in the official formats, good and bad."""

import gzip
import struct

import numpy as np
import pytest

from asr.autoregressive.data import (
    DatasetError,
    load_split,
    read_cifar10_batch,
    read_idx,
)
from asr.autoregressive.data.datamodule import ImageDataModule


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """The MNIST IDX layout: 0, 0, type 0x08, ndim, big-endian uint32 dims, then the bytes."""
    header = struct.pack(">I", magic if magic is not None else 0x0800 | array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path, array, gz=False, magic=None):
    data = idx_bytes(array, magic)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def cifar_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Official binary records: label byte, then 1024 R, 1024 G, 1024 B bytes (row-major)."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return np.concatenate([labels[:, None].astype(np.uint8), planes], axis=1).tobytes()


def one_line(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    got = read_idx(write_idx(tmp_path / name, images, gz), expect_ndim=3)
    assert got.shape == (7, 28, 28) and np.array_equal(got, images)


def test_idx_wrong_magic(tmp_path):
    labels = np.arange(5, dtype=np.uint8)
    path = write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    with pytest.raises(DatasetError) as err:
        read_idx(path, expect_ndim=3)  # a labels file where images were expected
    assert "wrong magic number 0x00000801" in one_line(err.value)
    bad = write_idx(tmp_path / "x-idx3-ubyte", np.zeros((2, 3, 3)), magic=0x12345678)
    with pytest.raises(DatasetError, match="wrong magic number 0x12345678"):
        read_idx(bad, expect_ndim=3)
    floats = write_idx(tmp_path / "f-idx3-ubyte", np.zeros((2, 3, 3)), magic=0x0D03)
    with pytest.raises(DatasetError, match="expected 0x00000803"):
        read_idx(floats, expect_ndim=3)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path, gz):
    data = idx_bytes(np.ones((10, 28, 28), dtype=np.uint8))[:-100]
    path = tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    with pytest.raises(DatasetError) as err:
        read_idx(path, expect_ndim=3)
    assert "truncated: header says 10x28x28 = 7840 bytes" in one_line(err.value)


def test_idx_damaged_gzip(tmp_path):
    whole = gzip.compress(idx_bytes(np.ones((10, 28, 28), dtype=np.uint8)))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(whole[: len(whole) // 2])  # cut mid-stream
    with pytest.raises(DatasetError) as err:
        read_idx(path, expect_ndim=3)
    assert "damaged gzip" in one_line(err.value) and path.name in str(err.value)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="damaged gzip"):
        read_idx(path, expect_ndim=3)


def write_mnist(folder, n_train=12, n_test=4, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n, 28, 28)), gz
        )
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n), gz)
    return folder


def test_load_mnist_split_and_missing_files(tmp_path):
    folder = write_mnist(tmp_path / "mnist", gz=False)
    train = load_split("mnist", folder, "train")
    assert train.images.shape == (12, 28, 28, 1) and train.sequences().shape == (12, 784)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError) as err:
        load_split("mnist", folder, "test")
    text = one_line(err.value)
    assert "missing t10k-labels-idx1-ubyte" in text and "train-images-idx3-ubyte[.gz]" in text


def test_label_count_mismatch(tmp_path):
    folder = write_mnist(tmp_path / "m")
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(11), gz=True)
    with pytest.raises(DatasetError, match="11 labels for 12 images"):
        load_split("mnist", folder, "train")


def write_cifar(folder, per_batch=3, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        images = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).astype(np.uint8)
        (folder / name).write_bytes(cifar_bytes(images, labels))
        batches[name] = (images, labels)
    return batches


def test_cifar_binary_round_trip(tmp_path):
    batches = write_cifar(tmp_path / "c")
    got = read_cifar10_batch(tmp_path / "c" / "data_batch_2.bin")
    images, labels = batches["data_batch_2.bin"]
    assert np.array_equal(got.images, images) and np.array_equal(got.labels, labels)
    # sub-pixels of one pixel are adjacent in the sequence: R, G, B of pixel (0, 0) first
    seq = got.sequences()
    assert seq.shape == (3, 3072) and list(seq[0, :3]) == list(images[0, 0, 0])
    train = load_split("cifar10", tmp_path / "c", "train")
    assert train.images.shape == (15, 32, 32, 3)
    assert np.array_equal(train.images[3:6], images)


def test_cifar_bad_files(tmp_path):
    batches = write_cifar(tmp_path / "c")
    path = tmp_path / "c" / "data_batch_1.bin"
    whole = path.read_bytes()
    path.write_bytes(whole[:-10])
    with pytest.raises(DatasetError) as err:
        read_cifar10_batch(path)
    assert "not a whole number of 3073-byte CIFAR-10 records" in one_line(err.value)
    path.write_bytes(b"\x80\x02" + whole[2:-5])  # what a pickle (python version) starts with
    with pytest.raises(DatasetError, match="python version"):
        read_cifar10_batch(path)
    images, labels = batches["data_batch_1.bin"]
    labels = labels.copy()
    labels[1] = 57
    path.write_bytes(cifar_bytes(images, labels))
    with pytest.raises(DatasetError, match="record 1 has label 57"):
        read_cifar10_batch(path)
    (tmp_path / "c" / "test_batch.bin").unlink()
    with pytest.raises(DatasetError) as err:
        load_split("cifar10", tmp_path / "c", "test")
    assert "missing test_batch.bin" in one_line(err.value) and "data_batch_5.bin" in str(err.value)


def test_image_datamodule_holds_out_validation(tmp_path):
    write_cifar(tmp_path / "c", per_batch=4)
    dm = ImageDataModule("cifar10", str(tmp_path / "c"), batch_size=3, val_images=5)
    dm.setup()
    assert len(dm.train_set) == 15 and len(dm.val_set) == 5 and dm.max_len == 3072
    batch = next(iter(dm.train_dataloader()))
    assert batch["tokens"].shape == (3, 3072) and batch["tokens"].dtype.is_floating_point is False
    assert dm.describe() == {"task": "image", "dataset": "cifar10", "image_shape": [32, 32, 3]}
