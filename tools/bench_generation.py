"""Generation speed: causal linear attention as an RNN vs softmax with and without a key/value cache.

With no arguments: the paper's MNIST model (8 layers, 8 heads, width 256, feed-forward 1,024,
a mixture of 10 discretised logistics), random weights (speed does not depend on them), batch 1,
one 784-pixel image per run, the three modes interleaved over ``--repeats`` runs. Prints a table
and, as its last line, one JSON object of median images per second:
``{"linear_recurrent": ..., "softmax_cache": ..., "softmax_nocache": ...}``.

    python tools/bench_generation.py                       # MNIST size, batch 1 (< 10 min, 2 cores)
    python tools/bench_generation.py --batch 64            # no-cache estimated from sampled positions
    python tools/bench_generation.py --preset cifar10 --per-position --plot docs/generation_per_token.png
    python tools/bench_generation.py --package lin.safetensors --package soft.safetensors --json g.json

Modes: ``linear_recurrent`` (state S, z per layer, O(1) per token), ``softmax_cache`` (a key/value
cache preallocated for the whole image, O(t) per token), ``softmax_nocache`` (the full forward
over the prefix for every token, the paper's baseline). ``--per-position`` runs each mode in its
own process over ``--max-position`` tokens and records milliseconds per token and resident
memory against the position (peak of each 64-token window: VmHWM reset through
/proc/self/clear_refs); the no-cache mode is timed at sampled positions. When the no-cache mode
would take too long to run in full (batch > 1 or more than 784 tokens), its images/s is the sum
of its per-token times interpolated between sampled positions, and is labelled as estimated.

The weight floor: every mode reads every weight matrix once per token step (at batch 1 a
matrix-vector product per layer, bound by memory bandwidth), so one pass of a (batch, in) input
through the model's linear layers, timed alone, is the least a token can cost. Its sum over an
image bounds how much faster the recurrent mode can be than each baseline on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from asr.autoregressive import ARConfig, CausalTransformer, generate, level_probs, sample_tokens
from asr.autoregressive.incremental import IncrementalDecoder
from asr.machine import machine_description

REPO_ROOT = Path(__file__).resolve().parents[1]
PRESETS = {
    "mnist": ARConfig(max_len=784, n_layers=8),
    "cifar10": ARConfig(max_len=3072, n_layers=16),
}
MODES = ("linear_recurrent", "softmax_cache", "softmax_nocache")
MEMORY_WINDOW = 64
FULL_NOCACHE_MAX_TOKENS = 784  # batch 1 and at most MNIST length: run it in full


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="mnist")
    p.add_argument("--layers", type=int, help="override the preset's layer count")
    p.add_argument("--d-model", type=int, help="override the width (feed-forward = 4x)")
    p.add_argument("--length", type=int, help="tokens per image (default: the preset's)")
    p.add_argument(
        "--package", action="append", default=[], help="trained packages (one linear, one softmax)"
    )
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    p.add_argument("--nocache", choices=["auto", "full", "estimate", "skip"], default="auto")
    p.add_argument("--positions", type=int, nargs="+", help="no-cache sample positions")
    p.add_argument(
        "--per-position", action="store_true", help="ms per token and memory vs position"
    )
    p.add_argument(
        "--max-position", type=int, help="length of the per-position runs (default --length)"
    )
    p.add_argument("--plot", help="PNG for the per-position curves")
    p.add_argument("--json", help="write all results here")
    p.add_argument("--markdown", help="append the tables here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- models


def build_models(args: argparse.Namespace) -> dict[str, CausalTransformer]:
    """{"linear": model, "softmax": model}: same size and config but the attention."""
    if args.package:
        from asr.autoregressive.package import load_package

        models = {}
        for path in args.package:
            model = load_package(path).model
            kind = "linear" if model.config.attention == "causal-linear" else "softmax"
            models[kind] = model
        if set(models) != {"linear", "softmax"}:
            raise SystemExit("error: give one causal-linear and one causal-softmax --package")
        a, b = (models[k].config.to_dict() for k in ("linear", "softmax"))
        a.pop("attention"), b.pop("attention")
        if a != b:
            raise SystemExit(f"error: the packages differ in more than attention: {a} vs {b}")
        return models
    base = PRESETS[args.preset].to_dict()
    if args.layers:
        base["n_layers"] = args.layers
    if args.d_model:
        base["d_model"], base["d_ff"] = args.d_model, 4 * args.d_model
    if args.length:
        base["max_len"] = max(base["max_len"], args.length)
    if args.max_position:
        base["max_len"] = max(base["max_len"], args.max_position)
    models = {}
    for kind in ("linear", "softmax"):
        torch.manual_seed(args.seed)
        models[kind] = CausalTransformer(ARConfig(**{**base, "attention": f"causal-{kind}"})).eval()
    return models


def image_length(args: argparse.Namespace, models: dict[str, CausalTransformer]) -> int:
    if args.length:
        return args.length
    if args.package:
        return models["linear"].config.max_len
    return PRESETS[args.preset].max_len


def model_for(models: dict[str, CausalTransformer], mode: str) -> tuple[CausalTransformer, str]:
    kind, _, how = mode.partition("_")
    return models[kind], "recompute" if how == "nocache" else "incremental"


# ----------------------------------------------------------------------------- measurements


def time_images(model: CausalTransformer, mode: str, length: int, batch: int, seed: int) -> float:
    """Seconds to generate one batch of ``length``-token images."""
    start = time.perf_counter()
    generate(model, length, batch_size=batch, mode=mode, seed=seed)
    return time.perf_counter() - start


@torch.inference_mode()
def recompute_token_seconds(
    model: CausalTransformer, position: int, batch: int, repeats: int
) -> float:
    """Time the no-cache mode spends on the token at ``position`` (a forward over the prefix)."""
    cfg = model.config
    inputs = torch.randint(0, cfg.vocab_size, (batch, position + 1))
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        params = model.forward_inputs(inputs)[:, -1]
        sample_tokens(level_probs(params, cfg.output, cfg.vocab_size), generator=gen)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.inference_mode()
def weight_pass_seconds(model: CausalTransformer, batch: int, rounds: int = 7) -> dict:
    """Median time of one (batch, in) input through each of ``model``'s linear layers in turn:
    the weight reads a token step cannot avoid (the attention itself left out)."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    inputs = [torch.randn(batch, m.in_features) for m in linears]
    passes = 20

    def one_pass() -> None:
        for m, x in zip(linears, inputs, strict=True):
            m(x)

    one_pass()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(passes):
            one_pass()
        times.append((time.perf_counter() - t0) / passes)
    nbytes = sum(p.numel() * p.element_size() for m in linears for p in m.parameters())
    return {"seconds": statistics.median(times), "bytes": nbytes, "layers": len(linears)}


def default_positions(length: int) -> list[int]:
    grid = {0, length - 1}
    p = 16
    while p < length:
        grid.add(p - 1)
        p *= 2
    grid.update(int(length * f) - 1 for f in (0.25, 0.5, 0.75))
    return sorted(g for g in grid if 0 <= g < length)


def estimate_total(positions: list[int], seconds: list[float], length: int) -> float:
    """Sum over every position of the per-token time interpolated between sampled positions."""
    return float(np.interp(np.arange(length), positions, seconds).sum())


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def per_position_worker(args: argparse.Namespace) -> dict:
    """One mode in this process: ms per token and memory against the position."""
    models = build_models(args)
    model, how = model_for(models, args.worker)
    length = args.max_position or image_length(args, models)
    generate(model, min(length, 32), batch_size=args.batch, mode=how, seed=args.seed)  # warm-up
    if how == "recompute":
        positions = args.positions or default_positions(length)
        base = _rss("VmRSS")
        result = {"positions": [], "ms_per_token": [], "peak_mib": []}
        for pos in positions:
            _reset_peak()
            sec = recompute_token_seconds(model, pos, args.batch, args.repeats)
            result["positions"].append(pos + 1)
            result["ms_per_token"].append(1e3 * sec)
            result["peak_mib"].append((_rss("VmHWM") - base) / 2**20)
        return result
    stamps: list[float] = []
    memory: list[tuple[int, float, float]] = []
    base = _rss("VmRSS")
    exact = _reset_peak()

    def on_token(t: int) -> None:
        now = time.perf_counter()
        if (t + 1) % MEMORY_WINDOW == 0:
            memory.append((t + 1, (_rss("VmRSS") - base) / 2**20, (_rss("VmHWM") - base) / 2**20))
            _reset_peak()
            stamps.append(now)
            stamps.append(time.perf_counter())  # the memory probe is not the model's time
        else:
            stamps.append(now)
            stamps.append(now)

    start = time.perf_counter()
    generate(model, length, batch_size=args.batch, mode=how, seed=args.seed, on_token=on_token)
    ends, resumes = stamps[0::2], [start, *stamps[1::2][:-1]]
    ms = [1e3 * (e - r) for e, r in zip(ends, resumes, strict=True)]
    probe = IncrementalDecoder(model, args.batch, length)
    probe.position = length  # what the state holds after the last token
    return {
        "state_mib_at_end": probe.state_bytes() / 2**20,
        "positions": list(range(1, length + 1)),
        "ms_per_token": ms,
        "memory_positions": [m[0] for m in memory],
        "rss_mib": [m[1] for m in memory],
        "peak_mib": [m[2] for m in memory],
        "memory_method": "VmHWM per window" if exact else "VmHWM (not reset)",
        "seconds": sum(ms) / 1e3,
    }


def spawn_worker(args: argparse.Namespace, mode: str, argv: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--worker", mode]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    raise RuntimeError(f"{mode} worker failed (exit {proc.returncode}): {tail[:300]}")


def throughput(args: argparse.Namespace, models: dict[str, CausalTransformer]) -> dict:
    """Images/s per mode: interleaved full runs; no-cache estimated when a full run is too long."""
    length = image_length(args, models)
    nocache = args.nocache
    if nocache == "auto":
        full_ok = args.batch == 1 and length <= FULL_NOCACHE_MAX_TOKENS
        nocache = "full" if full_ok else "estimate"
    modes = [m for m in MODES if not (m == "softmax_nocache" and nocache in ("skip", "estimate"))]
    for mode in modes:  # warm-up: kernels, allocator, feature-map code paths
        model, how = model_for(models, mode)
        generate(model, min(length, 16), batch_size=args.batch, mode=how, seed=args.seed)
    runs: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(args.repeats):
        order = modes[r % len(modes) :] + modes[: r % len(modes)]  # rotate: no mode always first
        for mode in order:
            model, how = model_for(models, mode)
            runs[mode].append(time_images(model, how, length, args.batch, args.seed + r))
            print(f"  run {r + 1}/{args.repeats} {mode}: {runs[mode][-1]:.2f} s", file=sys.stderr)
    result = {
        m: {
            "images_per_s": args.batch / statistics.median(t),
            "seconds": t,
            "how": "measured",
        }
        for m, t in runs.items()
    }
    if nocache == "estimate":
        model, _ = model_for(models, "softmax_nocache")
        positions = args.positions or default_positions(length)
        secs = []
        for p in positions:
            secs.append(recompute_token_seconds(model, p, args.batch, max(1, args.repeats)))
            print(f"  no-cache position {p + 1}: {1e3 * secs[-1]:.1f} ms", file=sys.stderr)
        total = estimate_total(positions, secs, length)
        result["softmax_nocache"] = {
            "images_per_s": args.batch / total,
            "seconds": [total],
            "how": f"estimated from {len(positions)} sampled positions",
            "positions": [p + 1 for p in positions],
            "ms_per_token": [1e3 * s for s in secs],
        }
    floor = weight_pass_seconds(models["linear"], args.batch)
    floor["image_seconds"] = length * floor["seconds"]
    return {"length": length, "batch": args.batch, "modes": result, "weight_floor": floor}


# ----------------------------------------------------------------------------- reporting


def plot_per_position(curves: dict[str, dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"linear_recurrent": "C0", "softmax_cache": "C1", "softmax_nocache": "C3"}
    for mode, c in curves.items():
        pos, ms = np.array(c["positions"]), np.array(c["ms_per_token"])
        if mode == "softmax_nocache":
            ax_t.plot(pos, ms, "o-", color=colors[mode], label=mode + " (sampled positions)")
            ax_m.plot(pos, c["peak_mib"], "o-", color=colors[mode], label=mode)
            continue
        ax_t.plot(pos, ms, color=colors[mode], alpha=0.25, linewidth=0.5)
        w = MEMORY_WINDOW
        smooth = [np.median(ms[i : i + w]) for i in range(0, len(ms), w)]
        ax_t.plot(pos[::w] + w // 2, smooth, color=colors[mode], label=f"{mode} (median of {w})")
        ax_m.plot(c["memory_positions"], c["peak_mib"], color=colors[mode], label=mode)
    ax_t.set_yscale("log")
    ax_t.set_xlabel("position (tokens generated)")
    ax_t.set_ylabel("ms per token")
    ax_t.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=8)
    ax_m.set_xlabel("position (tokens generated)")
    ax_m.set_ylabel("peak resident memory above start (MiB)")
    ax_m.grid(True, alpha=0.3)
    ax_m.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def describe(models: dict[str, CausalTransformer]) -> str:
    c = models["linear"].config
    n = sum(p.numel() for p in models["linear"].parameters())
    return (
        f"{c.n_layers} layers, {c.n_heads} heads, width {c.d_model}, feed-forward {c.d_ff}, "
        f"{c.output} output, {n / 1e6:.2f}M parameters"
    )


def markdown(args: argparse.Namespace, models: dict, tp: dict | None, curves: dict | None) -> str:
    lines = [
        f"Machine: {machine_description()}; {torch.get_num_threads()} torch threads.",
        f"Model: {describe(models)}.",
        f"Command: `python tools/{Path(__file__).name} {' '.join(sys.argv[1:])}`",
    ]
    if tp:
        base = tp["modes"]["linear_recurrent"]["images_per_s"]
        lines += [
            "",
            f"Batch {tp['batch']}, {tp['length']} tokens per image, median of {args.repeats} "
            "interleaved runs:",
            "",
            "| mode | images/s | seconds per batch (runs) | linear recurrent is faster by | how |",
            "|---|---|---|---|---|",
        ]
        for mode, r in tp["modes"].items():
            runs = ", ".join(f"{s:.2f}" for s in r["seconds"])
            lines.append(
                f"| {mode} | {r['images_per_s']:.4g} | {runs} | {base / r['images_per_s']:.2f}x "
                f"| {r['how']} |"
            )
        floor = tp["weight_floor"]
        ceilings = "; ".join(
            f"{mode} at most {args.batch / r['images_per_s'] / floor['image_seconds']:.3g}x "
            f"(measured {base / r['images_per_s']:.3g}x)"
            for mode, r in tp["modes"].items()
            if mode != "linear_recurrent"
        )
        lines += [
            "",
            f"Weight floor: one pass of a batch-{tp['batch']} input through the model's "
            f"{floor['layers']} linear layers ({floor['bytes'] / 1e6:.1f} MB of weights) takes "
            f"{1e3 * floor['seconds']:.3f} ms, so {tp['length']} tokens take at least "
            f"{floor['image_seconds']:.3g} s in any mode. How much faster the recurrent mode "
            f"could be than each baseline if nothing but those reads cost time: {ceilings}.",
        ]
    if curves:
        lines += ["", "Per-position runs (one image each):", ""]
        lines += ["| mode | ms/token first 64 | ms/token last 64 | peak MiB first window | last window |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for mode, c in curves.items():
            ms, peak = c["ms_per_token"], c["peak_mib"]
            w = 1 if mode == "softmax_nocache" else MEMORY_WINDOW
            lines.append(
                f"| {mode} | {statistics.median(ms[:w]):.3f} | {statistics.median(ms[-w:]):.3f} "
                f"| {peak[0]:.1f} | {peak[-1]:.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(per_position_worker(args)))
        return
    models = build_models(args)
    print(f"{describe(models)}; {torch.get_num_threads()} threads", file=sys.stderr)
    tp = throughput(args, models)
    curves = None
    if args.per_position:
        curves = {}
        for mode in MODES:
            print(f"  per-position run: {mode}", file=sys.stderr)
            curves[mode] = spawn_worker(args, mode, raw)
        if args.plot:
            title = f"{describe(models)}, batch {args.batch}; {machine_description()}"
            plot_per_position(curves, args.plot, title)
        length = args.max_position or image_length(args, models)
        lin, cache = curves["linear_recurrent"], curves["softmax_cache"]
        noc = curves["softmax_nocache"]
        noc_total = estimate_total(
            [p - 1 for p in noc["positions"]], [m / 1e3 for m in noc["ms_per_token"]], length
        )
        tp["per_position_images_per_s"] = {
            "length": length,
            "linear_recurrent": args.batch / lin["seconds"],
            "softmax_cache": args.batch / cache["seconds"],
            "softmax_nocache (estimated)": args.batch / noc_total,
        }
    report = markdown(args, models, tp, curves)
    print(report)
    if tp.get("per_position_images_per_s"):
        print(
            f"\nImages/s at {tp['per_position_images_per_s']['length']} tokens (one run each): "
            + json.dumps(
                {k: v for k, v in tp["per_position_images_per_s"].items() if k != "length"}
            )
        )
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(report + "\n")
    summary = {m: r["images_per_s"] for m, r in tp["modes"].items()}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        full = {
            "machine": machine_description(),
            "threads": torch.get_num_threads(),
            "model": describe(models),
            "setting": f"batch {tp['batch']}, {tp['length']} tokens, {describe(models)}",
            "images_per_s": summary,
            "throughput": tp,
            "per_position": curves,
        }
        Path(args.json).write_text(json.dumps(full) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
