"""Evaluation of trained autoregressive models: bits/dim, copy accuracy, samples, curves.

Each function takes a model (or a package) and data and returns plain numbers or arrays; the
``asr-ar`` commands in :mod:`asr.autoregressive.cli` write them to JSON, PNG and CSV.
"""

from __future__ import annotations

import csv
import math
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .data.copy_task import CopyTask
from .distributions import bits_per_dim, token_log_prob
from .generation import generate, mode_label
from .model import CausalTransformer


@torch.inference_mode()
def sequence_bits_per_dim(
    model: CausalTransformer,
    sequences: torch.Tensor,
    batch_size: int = 50,
    progress: bool = False,
) -> dict:
    """Negative log-likelihood of ``sequences (n, N)`` in bits per token (per sub-pixel)."""
    if sequences.dim() != 2 or len(sequences) == 0:
        raise ValueError(
            f"sequences must be a non-empty (n, N) tensor, got {tuple(sequences.shape)}"
        )
    model.eval()
    cfg = model.config
    total = 0.0
    device = next(model.parameters()).device
    starts = range(0, len(sequences), batch_size)
    for s in tqdm(starts, desc="bits/dim", unit="batch", disable=not progress):
        tokens = sequences[s : s + batch_size].long().to(device)
        nll = -token_log_prob(model(tokens), tokens, cfg.output, cfg.vocab_size)
        total += float(nll.double().sum())
    dims = sequences.numel()
    return {
        "bits_per_dim": bits_per_dim(total, dims),
        "nll_nats_per_dim": total / dims,
        "sequences": len(sequences),
        "dims": dims,
    }


def copy_accuracy(
    model: CausalTransformer,
    task: CopyTask,
    n_sequences: int = 512,
    seed: int = 12345,
    batch_size: int = 64,
    mode: str = "incremental",
) -> dict:
    """Greedy copying of fresh sequences: the model sees ``s SEP`` and must generate ``s``.

    Sequences are grouped by length so each batch is one :func:`generate` call with a prompt.
    Returns symbol accuracy, whole-sequence accuracy and the accuracy per length quarter.
    """
    gen = torch.Generator().manual_seed(seed)
    by_length: dict[int, list[torch.Tensor]] = defaultdict(list)
    for _ in range(n_sequences):
        seq = task.sequence(gen)
        by_length[(len(seq) - 1) // 2].append(seq)
    right = exact = symbols = 0
    quarter_right: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for length, seqs in sorted(by_length.items()):
        for s in range(0, len(seqs), batch_size):
            batch = torch.stack(seqs[s : s + batch_size])
            out = generate(
                model,
                2 * length + 1,
                batch_size=len(batch),
                prompt=batch[:, : length + 1],
                mode=mode,
                temperature=0.0,
            )
            ok = out[:, length + 1 :] == batch[:, length + 1 :]
            right += int(ok.sum())
            exact += int(ok.all(dim=1).sum())
            symbols += ok.numel()
            q = min(3, (length - 1) * 4 // task.max_symbols)
            quarter_right[q][0] += int(ok.sum())
            quarter_right[q][1] += ok.numel()
    quarters = {}
    for q, (r, n) in sorted(quarter_right.items()):
        lo = q * task.max_symbols // 4 + 1
        hi = (q + 1) * task.max_symbols // 4
        quarters[f"{lo}-{hi}"] = r / n
    return {
        "symbol_accuracy": right / symbols,
        "sequence_accuracy": exact / n_sequences,
        "sequences": n_sequences,
        "symbol_accuracy_by_length": quarters,
        "mode": mode_label(model, mode),
    }


def sample_images(
    model: CausalTransformer,
    image_shape: tuple[int, int, int],
    n_images: int,
    *,
    batch_size: int = 16,
    mode: str = "incremental",
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> tuple[np.ndarray, float]:
    """``n_images`` samples as uint8 ``(n, h, w, c)`` and the images per second achieved."""
    h, w, c = image_shape
    length = h * w * c
    if length > model.config.max_len:
        raise ValueError(f"images of {image_shape} need max_len >= {length}")
    generator = torch.Generator().manual_seed(seed)
    chunks = []
    start = time.perf_counter()
    for s in tqdm(range(0, n_images, batch_size), desc="sampling", disable=not progress):
        b = min(batch_size, n_images - s)
        tokens = generate(
            model,
            length,
            batch_size=b,
            mode=mode,
            temperature=temperature,
            top_k=top_k,
            generator=generator,
        )
        chunks.append(tokens.cpu())
    seconds = time.perf_counter() - start
    images = torch.cat(chunks).to(torch.uint8).numpy().reshape(n_images, h, w, c)
    return images, n_images / seconds


def save_image_grid(images: np.ndarray, path: str | Path, columns: int | None = None) -> Path:
    """Tile uint8 ``(n, h, w, c)`` images into one PNG with a one-pixel gap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1, c), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, columns)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + col * (w + 1) : 1 + col * (w + 1) + w] = img
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if c == 1:
        plt.imsave(path, grid[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        plt.imsave(path, grid)
    return path


def read_metric(csv_path: str | Path, metric: str) -> list[tuple[int, float]]:
    """``(step, value)`` pairs of one metric from a Lightning ``CSVLogger`` metrics.csv."""
    rows = []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            value = row.get(metric, "")
            if value not in ("", None):
                rows.append((int(row["step"]), float(value)))
    if not rows:
        raise ValueError(f"{csv_path}: no values of {metric!r} (was it logged?)")
    return rows


def loss_curves(
    runs: dict[str, str | Path],
    out_png: str | Path,
    out_csv: str | Path,
    metric: str = "train_loss",
    ylabel: str = "training loss (nats per scored token)",
) -> None:
    """The paper's Figure 2: training loss against updates for several runs, PNG and CSV."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {label: dict(read_metric(path, metric)) for label, path in runs.items()}
    steps = sorted(set().union(*[set(s) for s in series.values()]))
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["update", *series])
        for step in steps:
            writer.writerow([step, *[series[k].get(step, "") for k in series]])
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in series.items():
        xs = sorted(points)
        ax.plot(xs, [points[x] for x in xs], label=label, linewidth=1)
    ax.set_xlabel("updates")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
