"""``asr-ar``: evaluate, sample from and compare autoregressive model packages; fetch data.

    asr-ar data fashion-mnist [--data-dir DIR] [--download]   check (or fetch) a dataset
    asr-ar bpd MODEL [--data-dir DIR] [--max-images N]          bits/dim on the test set
    asr-ar sample MODEL --out grid.png [--num 64]               sample grid (PNG) + images/s
    asr-ar copy-eval MODEL [--num 512]                          greedy copy accuracy
    asr-ar curves --run linear=A.csv --run softmax=B.csv --png P --csv C   loss vs updates

Results are printed as JSON (and written with ``--json``), so recipes can collect them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .data import (
    DATASETS,
    CopyTask,
    DatasetError,
    default_data_dir,
    download,
    load_split,
    load_test_sequences,
)
from .evaluate import (
    copy_accuracy,
    loss_curves,
    sample_images,
    save_image_grid,
    sequence_bits_per_dim,
)
from .generation import MODES, mode_label
from .package import load_package


def _emit(result: dict, path: str | None) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")


def _image_info(data: dict, model_path: str) -> tuple[str, tuple[int, int, int]]:
    if data.get("task") != "image":
        raise SystemExit(f"error: {model_path} was not trained on images (data: {data})")
    return data["dataset"], tuple(data["image_shape"])  # type: ignore[return-value]


def cmd_data(args: argparse.Namespace) -> None:
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir(args.dataset)
    if args.download:
        download(args.dataset, data_dir)
    summary = {"dataset": args.dataset, "data_dir": str(data_dir)}
    for split in ("train", "test"):
        images = load_split(args.dataset, data_dir, split)
        summary[split] = {"images": len(images.images), "shape": list(images.shape)}
    _emit(summary, args.json)


def cmd_bpd(args: argparse.Namespace) -> None:
    package = load_package(args.model)
    dataset, _ = _image_info(package.data, args.model)
    sequences = load_test_sequences(dataset, args.data_dir, args.max_images)
    result = sequence_bits_per_dim(package.model, sequences, args.batch_size, progress=True)
    _emit({"model": args.model, "dataset": dataset, "split": "test", **result}, args.json)


def cmd_sample(args: argparse.Namespace) -> None:
    package = load_package(args.model)
    _, shape = _image_info(package.data, args.model)
    images, per_second = sample_images(
        package.model,
        shape,
        args.num,
        batch_size=args.batch_size,
        mode=args.mode,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
        progress=True,
    )
    save_image_grid(images, args.out)
    result = {
        "model": args.model,
        "grid": args.out,
        "images": args.num,
        "batch_size": args.batch_size,
        "mode": mode_label(package.model, args.mode),
        "images_per_s": per_second,
        "threads": torch.get_num_threads(),
    }
    _emit(result, args.json)


def cmd_copy_eval(args: argparse.Namespace) -> None:
    package = load_package(args.model)
    data = package.data
    if data.get("task") != "copy":
        raise SystemExit(f"error: {args.model} was not trained on the copy task (data: {data})")
    task = CopyTask(**{k: v for k, v in data.items() if k != "task"})
    result = copy_accuracy(
        package.model, task, args.num, seed=args.seed, batch_size=args.batch_size, mode=args.mode
    )
    _emit({"model": args.model, **result}, args.json)


def cmd_curves(args: argparse.Namespace) -> None:
    runs = {}
    for spec in args.run:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise SystemExit(f"error: --run wants LABEL=metrics.csv, got {spec!r}")
        runs[label] = path
    loss_curves(runs, args.png, args.csv, metric=args.metric)
    print(f"wrote {args.png} and {args.csv}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr-ar", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="check that a dataset's files are readable, or fetch them")
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--data-dir", help="folder with the files (default depends on the dataset)")
    p.add_argument("--download", action="store_true", help="fetch missing files (needs network)")
    p.add_argument("--json")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("bpd", help="bits per dimension on the test set")
    p.add_argument("model")
    p.add_argument("--data-dir")
    p.add_argument("--max-images", type=int, help="first N test images only (default all)")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--json")
    p.set_defaults(func=cmd_bpd)

    p = sub.add_parser("sample", help="sample images into a PNG grid")
    p.add_argument("model")
    p.add_argument("--out", required=True, help="PNG path")
    p.add_argument("--num", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--mode", choices=MODES, default="incremental")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("copy-eval", help="greedy copy accuracy on fresh sequences")
    p.add_argument("model")
    p.add_argument("--num", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--mode", choices=MODES, default="incremental")
    p.add_argument("--json")
    p.set_defaults(func=cmd_copy_eval)

    p = sub.add_parser("curves", help="loss-vs-updates plot and CSV from training logs")
    p.add_argument("--run", action="append", required=True, help="LABEL=csv/metrics.csv")
    p.add_argument("--png", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--metric", default="train_loss")
    p.set_defaults(func=cmd_curves)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (DatasetError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
