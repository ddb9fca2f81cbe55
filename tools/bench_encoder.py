"""Encoder forward+backward time and peak memory: linear vs softmax transformer vs Bi-LSTM.

One process builds all encoders and times them interleaved (every round runs each model once,
the order rotating between rounds), so load from elsewhere hits them alike; it reports the
median and the spread (min-max) of each model and the per-round ratios to the linear encoder.
Peak memory is measured for each (model, length, batch) in fresh processes, the median of
``--memory-repeats`` interleaved between the models: resident-set high-water mark (``VmHWM``,
reset through ``/proc/self/clear_refs``) minus the resident set after the model and the batch
exist, over one forward+backward.

Batches: 2 utterances of L seconds (100 frames/s, 80 filterbank dims) -- ``equal`` (L, L) and
``padded`` (L, round(0.92 L)): in the demo corpus's duration-bucketed batches an utterance is on
average 0.92 of its batch's longest (8% padding; within-batch fractions p10 0.84, p50 0.94, p90
1.0; 3173 utterances, 40 s batches, 10 buckets). What is timed: the encoder's forward and the
backward of a fixed random gradient (no loss, no optimizer), dropout 0.

    python tools/bench_encoder.py                                  # 20 / 60 / 180 s, ~25 min
    python tools/bench_encoder.py --seconds 20 --repeats 3 --no-memory   # quick look
    python tools/bench_encoder.py --no-timing                      # peak memory only

Writes OUT_DIR/bench_encoder.md (tables, machine, command, load) and bench_encoder.json.
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

import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
FRAMES_PER_S = 100
FEATURE_DIM = 80
PADDED_FRACTION = 0.92  # mean utterance / batch-max duration in the demo corpus's batches
MODELS = ("linear", "softmax", "bilstm")
# on request: the Bi-LSTM's former packed-sequence path; the linear encoder through torch.compile
EXTRA_MODELS = ("bilstm-packed", "linear-compiled")
PRECISIONS = ("fp32", "bf16")  # a model given as NAME:fp32 or NAME:bf16 ignores --bf16


def model_label(text: str) -> str:
    """argparse type of --models: NAME or NAME:PRECISION."""
    name, _, precision = text.partition(":")
    if name not in MODELS + EXTRA_MODELS or (precision and precision not in PRECISIONS):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected one of {', '.join(MODELS + EXTRA_MODELS)}, optionally "
            f"followed by :fp32 or :bf16"
        )
    return text


def model_name(label: str) -> str:
    return label.partition(":")[0]


def baseline(labels: list[str]) -> str | None:
    """The label the ratios divide by: the first linear encoder."""
    return next((n for n in labels if model_name(n) == "linear"), None)


def runs_bf16(label: str, args: argparse.Namespace) -> bool:
    """The model's own precision if its label names one, else --bf16's."""
    precision = label.partition(":")[2]
    return precision == "bf16" if precision else args.bf16


def make_encoder(name: str, args: argparse.Namespace) -> nn.Module:
    """The encoders compared, at the paper's depth; the one place that knows ``asr.models``."""
    from asr.models import EncoderConfig, build_encoder, compile_layers

    common = dict(
        input_dim=FEATURE_DIM,
        subsampling=4,
        conv_channels=args.conv_channels,
        d_model=args.d_model,
        dropout=0.0,
    )
    if name in ("bilstm", "bilstm-packed"):
        flat = dict(
            encoder_type="lstm",
            lstm_hidden=args.lstm_hidden,
            lstm_layers=args.lstm_layers,
            **common,
        )
    else:
        flat = dict(
            attention=name.removesuffix("-compiled"),
            n_layers=args.layers,
            n_heads=args.heads,
            d_ff=args.d_ff,
            positional=args.positional,
            **common,
        )
    encoder = build_encoder(EncoderConfig.from_dict(flat))
    if name.endswith("-compiled"):
        compile_layers(encoder)  # the warm-up step compiles
    return PackedBiLSTM(encoder) if name == "bilstm-packed" else encoder


class PackedBiLSTM(nn.Module):
    """The Bi-LSTM encoder through ``forward_packed``: what its unpacked path saves."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder.forward_packed(features, lengths)


def batch_lengths(seconds: float, padded: bool) -> list[int]:
    frames = int(round(seconds * FRAMES_PER_S))
    return [frames, int(round(PADDED_FRACTION * frames))] if padded else [frames, frames]


def make_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lengths), max(lengths), FEATURE_DIM, generator=gen)
    return features, torch.tensor(lengths)


def fwd_bwd(
    model: nn.Module, features: torch.Tensor, lengths: torch.Tensor, bf16: bool = False
) -> float:
    """Seconds for one forward + backward (gradient of a fixed random projection of the output);
    ``bf16``: the forward under bf16 autocast, as Lightning's ``bf16-mixed`` trains."""
    model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out, _ = model(features, lengths)
    gen = torch.Generator().manual_seed(1)
    grad = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    out.backward(grad)
    return time.perf_counter() - t0


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------- memory (fresh process)


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_worker(args: argparse.Namespace) -> dict:
    """Peak resident-memory growth of one forward+backward, in this (fresh) process."""
    torch.manual_seed(0)
    model = make_encoder(model_name(args.worker), args).train()
    bf16 = runs_bf16(args.worker, args)
    features, lengths = make_batch(batch_lengths(args.worker_seconds, args.worker_padded))
    small_f, small_l = make_batch([100, 100])
    fwd_bwd(model, small_f, small_l, bf16)  # load kernels and libraries first
    model.zero_grad(set_to_none=True)
    base = _status_bytes("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        method = "VmHWM-VmRSS"
    except OSError:
        method = "VmHWM (not reset: upper bound)"
    seconds = fwd_bwd(model, features, lengths, bf16)
    return {"peak_bytes": _status_bytes("VmHWM") - base, "seconds": seconds, "method": method}


def measure_memory(args: argparse.Namespace, name: str, seconds: float, padded: bool) -> dict:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", name,
        "--worker-seconds", str(seconds), *(["--worker-padded"] if padded else []),
        *model_args(args),
    ]  # fmt: skip
    env = dict(os.environ)
    # An explicit PYTHONPATH wins (to measure another checkout's asr with this script).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO_ROOT)) if p)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=args.memory_timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.memory_timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail[:200]}"}


def summarise_memory(runs: list[dict]) -> dict:
    """Median and range of one cell's fresh-process peaks (allocator and thread-pool state make
    two processes differ by a few percent); the first error if any run failed."""
    peaks = [r["peak_bytes"] for r in runs if "peak_bytes" in r]
    if len(peaks) < len(runs):
        return next(r for r in runs if "error" in r)
    return {
        "peak_bytes": statistics.median(peaks),
        "min_bytes": min(peaks),
        "max_bytes": max(peaks),
        "runs": runs,
    }


def model_args(args: argparse.Namespace) -> list[str]:
    return [
        "--layers", str(args.layers), "--d-model", str(args.d_model), "--heads", str(args.heads),
        "--d-ff", str(args.d_ff), "--conv-channels", str(args.conv_channels),
        "--lstm-hidden", str(args.lstm_hidden), "--lstm-layers", str(args.lstm_layers),
        "--positional", args.positional, *(["--bf16"] if args.bf16 else []),
    ]  # fmt: skip


# ------------------------------------------------------------------------------ timing (one process)


def time_interleaved(
    models: dict[str, nn.Module], seconds: float, padded: bool, args: argparse.Namespace
) -> dict:
    """Rounds of one fwd+bwd per model, order rotating; a model slower than --time-cap stops early."""
    features, lengths = make_batch(batch_lengths(seconds, padded))
    names = list(models)
    times: dict[str, list[float]] = {n: [] for n in names}
    for name in names:  # warm-up at this length
        first = fwd_bwd(models[name], features, lengths, runs_bf16(name, args))
        if first > args.time_cap:
            times[name].append(first)
    for r in range(args.repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            if times[name] and times[name][0] > args.time_cap:
                continue
            times[name].append(fwd_bwd(models[name], features, lengths, runs_bf16(name, args)))
        print(f"  {seconds:g} s {'padded' if padded else 'equal'} round {r + 1}: "
              + ", ".join(f"{n} {times[n][-1]:.3f}" for n in names), flush=True)  # fmt: skip
    result = {}
    for name in names:
        ts = times[name]
        result[name] = {
            "median_s": statistics.median(ts),
            "min_s": min(ts),
            "max_s": max(ts),
            "runs": len(ts),
            "times": ts,
        }
    base_name = baseline(names)
    if base_name:
        base = times[base_name]
        for name in names:
            if name == base_name:
                continue
            ts = times[name]
            paired = [t / b for t, b in zip(ts, base, strict=False)]
            result[name]["ratio_to_linear"] = {
                "median": statistics.median(paired),
                "min": min(paired),
                "max": max(paired),
            }
    return result


# ---------------------------------------------------------------------------------------- report


def machine() -> str:
    from asr.machine import machine_description

    return f"{machine_description()}, {torch.get_num_threads()} torch threads"


def _memory_cell(cell: dict) -> str:
    if "peak_bytes" not in cell:
        return cell["error"]
    mib = 2**20
    spread = f" [{cell['min_bytes'] / mib:.0f}-{cell['max_bytes'] / mib:.0f}]"
    return f"{cell['peak_bytes'] / mib:.0f}" + (spread if len(cell["runs"]) > 1 else "")


def write_report(args, timing, memory, params, loads, out_dir: Path) -> str:
    lines = [
        "# Encoder benchmark",
        "",
        f"Command: `python tools/bench_encoder.py {' '.join(args.argv)}`",
        "",
        f"Machine: {machine()}. Load average (1 min) before/after: "
        f"{loads[0]:.2f} / {loads[1]:.2f}.",
        f"Encoders: transformer {args.layers} layers, d_model {args.d_model}, {args.heads} heads, "
        f"FFN {args.d_ff}, conv front end {args.conv_channels} channels (4x), {args.positional} "
        f"positions; Bi-LSTM {args.lstm_layers} x {args.lstm_hidden} per direction. Parameters: "
        + ", ".join(f"{n} {p / 1e6:.2f}M" for n, p in params.items())
        + ".",
        f"Batch 2: equal (L, L), padded (L, {PADDED_FRACTION} L); forward + backward, dropout 0, "
        + ("bf16 autocast" if args.bf16 else "float32")
        + (" unless a model's label names its precision" if any(":" in m for m in args.models)
           else "")
        + (f"; median [min-max] of {args.repeats} interleaved rounds after a warm-up." if timing
           else "."),
    ]  # fmt: skip
    names = timing_models(timing) if timing else list(args.models)
    base = baseline(names)
    if timing:
        lines += [
            "",
            "| L | batch | " + " | ".join(f"{n} s" for n in names)
            + " | " + " | ".join(f"{n} / linear" for n in names if n != base) + " |",
            "|---|---|" + "---|" * (2 * len(names) - 1),
        ]  # fmt: skip
    for key, per in timing.items():
        seconds, kind = key.split("/")
        cells = [
            f"{per[n]['median_s']:.3f} [{per[n]['min_s']:.3f}-{per[n]['max_s']:.3f}]" for n in names
        ]
        ratios = [
            f"{per[n]['ratio_to_linear']['median']:.2f}x "
            f"[{per[n]['ratio_to_linear']['min']:.2f}-{per[n]['ratio_to_linear']['max']:.2f}]"
            for n in names
            if n != base and "ratio_to_linear" in per[n]
        ]
        lines.append(f"| {seconds} s | {kind} | " + " | ".join(cells + ratios) + " |")
    if memory:
        lines += [
            "",
            "Peak memory of one forward+backward, MiB (VmHWM - VmRSS), median [min-max] of "
            f"{args.memory_repeats} fresh processes per cell, interleaved:",
            "",
            "| L | batch | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for key, per in memory.items():
            seconds, kind = key.split("/")
            cells = [_memory_cell(per[n]) for n in names]
            lines.append(f"| {seconds} s | {kind} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (out_dir / "bench_encoder.md").write_text(text)
    (out_dir / "bench_encoder.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "machine": machine(),
                "loads": loads,
                "timing": timing,
                "memory": memory,
                "params": params,
            },
            indent=1,
        )  # fmt: skip
    )
    return text


def timing_models(timing: dict) -> list[str]:
    return list(next(iter(timing.values()))) if timing else list(MODELS)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, nargs="+", default=[20, 60, 180])
    p.add_argument("--batches", nargs="+", default=["equal", "padded"], choices=["equal", "padded"])
    p.add_argument(
        "--models", nargs="+", default=list(MODELS), type=model_label,
        help=f"of {', '.join(MODELS + EXTRA_MODELS)}; NAME:fp32 or NAME:bf16 fixes one's precision",
    )  # fmt: skip
    p.add_argument("--repeats", type=int, default=5, help="interleaved timed rounds")
    p.add_argument("--time-cap", type=float, default=60.0, help="a model whose warm-up takes "
                   "longer than this many seconds is timed once")  # fmt: skip
    p.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory runs")
    p.add_argument("--no-timing", action="store_true", help="only the fresh-process memory runs")
    p.add_argument("--memory-timeout", type=float, default=900.0)
    p.add_argument(
        "--memory-repeats", type=int, default=3, help="fresh processes per memory cell (median)"
    )
    p.add_argument("--layers", type=int, default=9)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=1024)
    p.add_argument("--conv-channels", type=int, default=64)
    p.add_argument("--positional", default="conv", choices=["conv", "sinusoidal", "none"])
    p.add_argument("--lstm-hidden", type=int, default=336)
    p.add_argument("--lstm-layers", type=int, default=3)
    p.add_argument("--bf16", action="store_true", help="forward under bf16 autocast (bf16-mixed)")
    p.add_argument("--out-dir", default="exp/bench_encoder")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-seconds", type=float, help=argparse.SUPPRESS)
    p.add_argument("--worker-padded", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_repeats < 1:
        p.error("--memory-repeats must be at least 1")
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        try:
            print(json.dumps(memory_worker(args)))
        except Exception as exc:  # noqa: BLE001 - report OOM etc. as a table cell
            print(json.dumps({"error": f"{type(exc).__name__}: {str(exc)[:200]}"}))
        return
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loads = [os.getloadavg()[0]]
    print(f"machine: {machine()}; load {loads[0]:.2f}", flush=True)
    torch.manual_seed(0)
    models = {label: make_encoder(model_name(label), args).train() for label in args.models}
    params = {name: n_params(m) for name, m in models.items()}
    timing: dict[str, dict] = {}
    for seconds in args.seconds if not args.no_timing else []:
        for kind in args.batches:
            timing[f"{seconds:g}/{kind}"] = time_interleaved(
                models, seconds, kind == "padded", args
            )
    memory: dict[str, dict] = {}
    if not args.no_memory:
        del models
        for seconds in args.seconds:
            for kind in args.batches:
                runs: dict[str, list[dict]] = {name: [] for name in args.models}
                for _ in range(args.memory_repeats):  # interleaved: one process per model a round
                    for name in args.models:
                        runs[name].append(measure_memory(args, name, seconds, kind == "padded"))
                        print(f"  memory {seconds:g} s {kind} {name}: {runs[name][-1]}", flush=True)
                memory[f"{seconds:g}/{kind}"] = {n: summarise_memory(r) for n, r in runs.items()}
    loads.append(os.getloadavg()[0])
    text = write_report(args, timing, memory, params, loads, out_dir)
    print(text)
    print(f"wrote {out_dir / 'bench_encoder.md'}")


if __name__ == "__main__":
    main()
