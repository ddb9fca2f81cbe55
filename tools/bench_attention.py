"""Benchmark attention: time and peak memory of forward+backward against sequence length N.

Reproduces the shape of Figure 1 of Katharopoulos et al. (2020): causal/non-causal linear
attention, softmax attention (``F.scaled_dot_product_attention``), the raw causal product
kernel and its pure-PyTorch versions, optionally the CPU kernel of ``pytorch-fast-transformers``.

Every (method, N) runs in a fresh subprocess so its peak memory is its own: on CPU the peak
resident set (``VmHWM``, reset through ``/proc/self/clear_refs``) minus the resident set after the
inputs exist; on CUDA ``torch.cuda.max_memory_allocated`` minus the memory allocated before.
A method stops growing N once a run fails or is predicted to exceed ``--time-cap``/``--mem-cap-gb``.

    python tools/bench_attention.py                          # CPU, fp32, B=4 H=8 D=M=64
    python tools/bench_attention.py --compare-fast-transformers scratch/attn/ftvenv/bin/python
    python tools/bench_attention.py --device cuda --dtype bf16 --max-n 65536

Writes ``OUT_DIR/bench_attention.md`` (tables, machine, command) and ``bench_attention.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from asr.machine import cpu_model

REPO_ROOT = Path(__file__).resolve().parents[1]
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "fp64": "float64"}
# Counted FLOPs of causal_product forward+backward per head (RNN form: forward 4NDM, backward
# 10NDM), the convention used for "% of matmul rate".
CAUSAL_PRODUCT_FLOPS_PER_NDM = 14


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    quadratic_memory: bool = False  # materialises (B, H, N, N)
    kernel_row: bool = False  # raw causal product: report counted GFLOPS


METHODS = {
    m.name: m
    for m in [
        Method("causal-product", "causal_product (ours, dispatch)", kernel_row=True),
        Method(
            "causal-product-ft", "causal_dot_product (fast-transformers 0.4.0)", kernel_row=True
        ),
        Method(
            "causal-product-torch", "causal_product pure-PyTorch chunked fallback", kernel_row=True
        ),
        Method("causal-product-reference", "reference (QK^T).tril() V", True, kernel_row=True),
        Method("linear-causal", "linear_attention causal (elu)"),
        Method("linear", "linear_attention non-causal (elu)"),
        Method("softmax-causal", "softmax SDPA causal"),
        Method("softmax", "softmax SDPA non-causal"),
    ]
}
DEFAULT_METHODS = [m for m in METHODS if m != "causal-product-ft"]


# ----------------------------------------------------------------------------- worker side


def _method_fn(name: str):
    import torch

    if name == "causal-product-ft":
        from fast_transformers.causal_product import causal_dot_product

        return causal_dot_product
    from asr.attention import causal_product, linear_attention, softmax_attention

    table = {
        "causal-product": causal_product,
        "causal-product-torch": lambda q, k, v: causal_product(q, k, v, backend="torch"),
        "causal-product-reference": lambda q, k, v: (q @ k.transpose(-1, -2)).tril() @ v,
        "linear-causal": lambda q, k, v: linear_attention(q, k, v, causal=True),
        "linear": lambda q, k, v: linear_attention(q, k, v, causal=False),
        "softmax-causal": lambda q, k, v: softmax_attention(q, k, v, causal=True),
        "softmax": lambda q, k, v: softmax_attention(q, k, v, causal=False),
    }
    del torch
    return table[name]


def _rss_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_worker(args: argparse.Namespace) -> dict:
    """Time fwd+bwd of one (method, N) in this process; return a JSON-able result."""
    import torch

    if args.chunk:
        from asr.attention import _cpu

        _cpu.CONFIG = _cpu.CpuKernelConfig(chunk=args.chunk)
    fn = _method_fn(args.worker)
    device = torch.device(args.device)
    dtype = getattr(torch, DTYPES[args.dtype])
    b, h, n, d = args.batch, args.heads, args.n, args.dim
    shapes = ((b, h, n, d), (b, h, n, d), (b, h, n, d))
    q, k, v = (torch.randn(s, device=device, dtype=dtype, requires_grad=True) for s in shapes)
    grad = torch.randn(b, h, n, d, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def once() -> tuple[float, float]:
        for x in (q, k, v):
            x.grad = None
        sync()
        t0 = time.perf_counter()
        out = fn(q, k, v)
        sync()
        t1 = time.perf_counter()
        out.backward(grad)
        sync()
        t2 = time.perf_counter()
        return t1 - t0, t2 - t0

    # Warm up (load kernels, BLAS buffers) on a short sequence, so that the first full-size run
    # measures peak memory before any allocator cache of the same size exists.
    small = [x[:, :, : min(n, 64)].detach().requires_grad_() for x in (q, k, v)]
    fn(*small).backward(grad[:, :, : min(n, 64)])
    del small
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        first = once()
        peak = torch.cuda.max_memory_allocated() - base
        mem_method = "cuda.max_memory_allocated"
    else:
        base = _rss_bytes("VmRSS")
        exact = _reset_peak_rss()
        first = once()
        peak = _rss_bytes("VmHWM") - base
        mem_method = "VmHWM-VmRSS" if exact else "VmHWM (not reset: upper bound)"
    runs = [first]
    n_runs = args.repeats if first[1] < args.time_cap / 4 else 2
    for _ in range(n_runs - 1):
        runs.append(once())
    return {
        "fwd_s": statistics.median(r[0] for r in runs),
        "total_s": statistics.median(r[1] for r in runs),
        "runs": len(runs),
        "peak_bytes": max(peak, 0),
        "mem_method": mem_method,
        "threads": torch.get_num_threads(),
    }


# ----------------------------------------------------------------------------- driver side


def machine_info() -> dict:
    import torch

    cpu = cpu_model()
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def matmul_gflops(device: str, size: int = 2048, repeats: int = 5) -> float:
    """The machine's fp32 GEMM rate (median of ``repeats`` size x size matmuls)."""
    import torch

    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    a @ b
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - t)
    return 2 * size**3 / statistics.median(times) / 1e9


def spawn(args: argparse.Namespace, method: str, n: int, python: str, chunk: int = 0) -> dict:
    cmd = [
        python, str(Path(__file__).resolve()), "--worker", method, "--n", str(n),
        "--device", args.device, "--dtype", args.dtype, "--batch", str(args.batch),
        "--heads", str(args.heads), "--dim", str(args.dim), "--repeats", str(args.repeats),
        "--time-cap", str(args.time_cap), "--chunk", str(chunk),
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    timeout = args.time_cap * (args.repeats + 3) + 120
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail[:200]}"}


def predicted_skip(args, method: Method, n: int, history: list[tuple[int, float]]) -> str | None:
    """Reason to skip N without running it (time or memory cap), or None."""
    elem = {"fp32": 4, "bf16": 2, "fp16": 2, "fp64": 8}[args.dtype]
    if method.quadratic_memory:
        need = 3 * args.batch * args.heads * n * n * elem
        if need > args.mem_cap_gb * 2**30:
            return f"skipped: needs ~{need / 2**30:.0f} GiB > cap {args.mem_cap_gb} GiB"
    if len(history) >= 1:
        n0, t0 = history[-1]
        exponent = 1.0
        if len(history) >= 2:
            n1, t1 = history[-2]
            exponent = max(1.0, math.log(t0 / t1) / math.log(n0 / n1)) if t1 > 0 else 1.0
        guess = t0 * (n / n0) ** exponent
        if guess > args.time_cap:
            return f"skipped: predicted {guess:.0f} s > cap {args.time_cap:.0f} s"
    return None


def fmt_time(r: dict, key: str) -> str:
    return f"{r[key]:.4g}" if key in r else r.get("error", r.get("skip", "-"))


def write_report(args, results: dict, info: dict, gflops: list[float], loads, out_dir: Path) -> str:
    ns = sorted({n for per in results.values() for n in per})
    methods = [m for m in results]
    lines = [
        "# Attention benchmark",
        "",
        f"Command: `{' '.join(sys.argv)}`",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']} "
        f"({info['torch_threads']} threads), Python {info['python']}"
        + (f", GPU {info['gpu']}" if "gpu" in info else ""),
        f"Shape: B={args.batch}, H={args.heads}, D=M={args.dim}, dtype {args.dtype}, "
        f"device {args.device}; median of up to {args.repeats} runs after a warm-up.",
        f"fp32 {2048}x{2048} matmul: {gflops[0]:.1f} GFLOPS before, {gflops[1]:.1f} GFLOPS after. "
        f"Load average (1 min) before/after: {loads[0]:.2f} / {loads[1]:.2f}.",
        "",
    ]

    def table(title: str, cell) -> None:
        lines.extend([f"## {title}", "", "| method | " + " | ".join(f"N={n}" for n in ns) + " |"])
        lines.append("|---|" + "---|" * len(ns))
        for m in methods:
            row = [cell(results[m].get(n, {"skip": "-"})) for n in ns]
            lines.append(f"| {METHODS[m].label} | " + " | ".join(row) + " |")
        lines.append("")

    table("Forward + backward time (s)", lambda r: fmt_time(r, "total_s"))
    table("Forward time (s)", lambda r: fmt_time(r, "fwd_s"))
    table(
        "Peak extra memory during forward + backward (MiB)",
        lambda r: f"{r['peak_bytes'] / 2**20:.0f}" if "peak_bytes" in r else "-",
    )
    rate = max(gflops)
    lines.extend(
        [
            "## Causal product throughput",
            "",
            f"Counted FLOPs: {CAUSAL_PRODUCT_FLOPS_PER_NDM}·N·D·M per head for forward+backward; "
            f"% of the best matmul rate measured in this run ({rate:.1f} GFLOPS).",
            "",
            "| method | N | fwd+bwd (s) | GFLOPS | % of matmul |",
            "|---|---|---|---|---|",
        ]
    )
    for m in methods:
        if not METHODS[m].kernel_row:
            continue
        for n in ns:
            r = results[m].get(n, {})
            if "total_s" not in r:
                continue
            flops = CAUSAL_PRODUCT_FLOPS_PER_NDM * n * args.dim * args.dim * args.batch * args.heads
            g = flops / r["total_s"] / 1e9
            lines.append(
                f"| {METHODS[m].label} | {n} | {r['total_s']:.4g} | {g:.1f} | {100 * g / rate:.0f}% |"
            )
    lines.append("")
    if "causal-product-ft" in results and "causal-product" in results:
        lines.extend(["## Ours vs fast-transformers 0.4.0 (CPU causal product)", ""])
        lines.append("| N | fwd speed-up | fwd+bwd speed-up |")
        lines.append("|---|---|---|")
        for n in ns:
            a, b = results["causal-product"].get(n, {}), results["causal-product-ft"].get(n, {})
            if "total_s" in a and "total_s" in b:
                lines.append(
                    f"| {n} | {b['fwd_s'] / a['fwd_s']:.2f}x | {b['total_s'] / a['total_s']:.2f}x |"
                )
        lines.append("")
    mem_methods = {r.get("mem_method") for per in results.values() for r in per.values()}
    lines.append(f"Memory measured as: {', '.join(sorted(str(x) for x in mem_methods if x))}.")
    text = "\n".join(lines) + "\n"
    (out_dir / "bench_attention.md").write_text(text)
    (out_dir / "bench_attention.json").write_text(
        json.dumps(
            {"args": vars(args), "machine": info, "matmul_gflops": gflops, "results": results},
            indent=1,
        )
    )
    return text


def plot(results: dict, args, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 4.5))
    for m, per in results.items():
        ns = [n for n in sorted(per) if "total_s" in per[n]]
        if not ns:
            continue
        ax_t.plot(ns, [per[n]["total_s"] for n in ns], "o-", label=METHODS[m].label)
        ax_m.plot(
            ns, [max(per[n]["peak_bytes"], 1) / 2**20 for n in ns], "o-", label=METHODS[m].label
        )
    for ax, ylabel in ((ax_t, "forward+backward time (s)"), (ax_m, "peak extra memory (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length N")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=7)
    fig.suptitle(f"B={args.batch} H={args.heads} D=M={args.dim} {args.dtype} {args.device}")
    fig.tight_layout()
    fig.savefig(out_dir / "bench_attention.png", dpi=120)


def run_driver(args: argparse.Namespace) -> None:
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    methods = args.methods or list(DEFAULT_METHODS)
    ft_python = None
    if args.compare_fast_transformers is not None:
        ft_python = args.compare_fast_transformers or sys.executable
        methods = ["causal-product-ft", *[m for m in methods if m != "causal-product-ft"]]
    info = machine_info()
    loads = [os.getloadavg()[0]]
    gflops = [matmul_gflops(args.device)]
    print(f"machine: {info}; matmul {gflops[0]:.1f} GFLOPS; load {loads[0]:.2f}", flush=True)
    if args.tune_chunks:
        for chunk in (int(c) for c in args.tune_chunks.split(",")):
            r = spawn(args, "causal-product", args.ref_n, sys.executable, chunk=chunk)
            print(f"chunk {chunk}: {r}", flush=True)
        return
    ns = [n for n in (2**i for i in range(30)) if args.min_n <= n <= args.max_n]
    results: dict[str, dict[int, dict]] = {}
    for name in methods:
        method = METHODS[name]
        python = ft_python if name == "causal-product-ft" else sys.executable
        per: dict[int, dict] = {}
        history: list[tuple[int, float]] = []
        stopped = None
        for n in ns:
            if stopped:
                per[n] = {"skip": stopped}
                continue
            reason = predicted_skip(args, method, n, history)
            if reason:
                per[n] = {"skip": reason}
                stopped = reason.split(":")[0]
                continue
            r = spawn(args, name, n, python)
            per[n] = r
            print(f"{name:28s} N={n:6d} {r}", flush=True)
            if "total_s" not in r:
                stopped = "failed"
                continue
            history.append((n, r["total_s"]))
        results[name] = per
    gflops.append(matmul_gflops(args.device))
    loads.append(os.getloadavg()[0])
    text = write_report(args, results, info, gflops, loads, out_dir)
    plot(results, args, out_dir)
    print(text)
    print(f"wrote {out_dir / 'bench_attention.md'} and {out_dir / 'bench_attention.png'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--dim", type=int, default=64, help="D = M, the head size")
    p.add_argument("--min-n", type=int, default=256)
    p.add_argument("--max-n", type=int, default=16384)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--time-cap", type=float, default=30.0, help="seconds per fwd+bwd run")
    p.add_argument("--mem-cap-gb", type=float, default=8.0)
    p.add_argument("--methods", nargs="+", choices=sorted(METHODS))
    p.add_argument(
        "--compare-fast-transformers",
        nargs="?",
        const="",
        metavar="PYTHON",
        help="add the fast-transformers row; PYTHON is an interpreter where it is installed "
        "(default: this one)",
    )
    p.add_argument("--ref-n", type=int, default=4096, help="N used by --tune-chunks")
    p.add_argument("--tune-chunks", help="comma list of CPU kernel chunk sizes to time, then exit")
    p.add_argument("--out-dir", default="exp/bench_attention")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--chunk", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        try:
            print(json.dumps(run_worker(args)))
        except Exception as exc:  # noqa: BLE001 - report any failure (OOM, missing package) as a row
            print(json.dumps({"error": f"{type(exc).__name__}: {str(exc)[:200]}"}))
        return
    run_driver(args)


if __name__ == "__main__":
    main()
