"""Attention ratios measured in one process, interleaved: the numbers the acceptance bars use.

``layer``: one attention layer with its projections (``asr.attention.AttentionLayer``), forward +
backward, B=2, N=1500 frames (60 s after 4x subsampling), d_model 256, 4 heads: linear (fused
kernel), linear (the composite PyTorch form it replaced), softmax (SDPA), each on an equal-length
and a padded batch (second utterance 0.92 N long, the demo corpus's mean fill); with
``--previous-kernel``, also the fused layer on an earlier revision's kernel source, and the fused
attention alone (no projections) on both kernels.

``kernel``: the causal product forward + backward at B=4, H=8, D=M=64 against the fp32 matmul
rate (2048^2 GEMM) of the same process, optionally beside pytorch-fast-transformers 0.4.0's CPU
``causal_dot_product`` -- whose gradients are first checked against the float64 reference; its
times are reported only if they check out. Counted FLOPs: 14 N D M per head (RNN form: 4 forward,
10 backward), the convention of tools/bench_attention.py.

Every round runs each contender once in a rotating order; the report gives medians, min-max and
per-round ratios, the load average before and after, and the machine.

    python tools/bench_attention_ratios.py layer
    python tools/bench_attention_ratios.py layer --previous-kernel /tmp/prev/asr/attention/csrc/attention_cpu.cpp
    python tools/bench_attention_ratios.py kernel --n 4096 8192 16384
    git worktree add /tmp/prev ceb7ac2   # the kernel source and its headers as they were
    python tools/bench_attention_ratios.py kernel --previous-kernel /tmp/prev/asr/attention/csrc/attention_cpu.cpp
    FT=/tmp/ftvenv/bin/python; PYTHONPATH=. $FT tools/bench_attention_ratios.py kernel --fast-transformers
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

import asr.attention.fused as fused_module
from asr.attention import AttentionLayer, _cpu, causal_product, causal_product_reference
from asr.machine import machine_description

CAUSAL_PRODUCT_FLOPS_PER_NDM = 14


def interleave(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run every contender once per round (order rotating); each returns its own seconds."""
    names = list(contenders)
    for name in names:  # warm-up
        contenders[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(contenders[name]())
    return times


def summary(ts: list[float]) -> str:
    return f"{statistics.median(ts):.4f} [{min(ts):.4f}-{max(ts):.4f}]"


def ratio(num: list[float], den: list[float]) -> str:
    per_round = [a / b for a, b in zip(num, den, strict=True)]
    return f"{statistics.median(per_round):.2f}x [{min(per_round):.2f}-{max(per_round):.2f}]"


def header(args: argparse.Namespace, load_before: float) -> list[str]:
    return [
        f"Command: `python tools/bench_attention_ratios.py {' '.join(args.argv)}`",
        "",
        f"Machine: {machine_description()}, {torch.get_num_threads()} torch threads. "
        f"Load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}.",
        "",
    ]


# ------------------------------------------------------------------------------------- layer


def no_kernel(device: torch.device) -> None:
    """Stands in for asr.attention.fused.fused_kernel_for: the composite path everywhere."""
    return None


@contextmanager
def kernel_lookup(kernel_for: Callable[[torch.device], object | None]) -> Iterator[None]:
    """asr.attention.fused looks its kernel up through ``kernel_for`` inside the block."""
    saved = fused_module.fused_kernel_for
    fused_module.fused_kernel_for = kernel_for
    try:
        yield
    finally:
        fused_module.fused_kernel_for = saved


def layer_contenders(args: argparse.Namespace, padded: bool) -> dict[str, Callable[[], float]]:
    torch.manual_seed(0)
    b, n, d = 2, args.frames, args.d_model
    x = torch.randn(b, n, d)
    mask = None
    if padded:
        mask = torch.zeros(b, n, dtype=torch.bool)
        mask[1, round(0.92 * n) :] = True
        x = x.masked_fill(mask[..., None], 0.0)
    grad = torch.randn(b, n, d)
    layers = {
        "linear": AttentionLayer(d, args.heads, kind="linear"),
        "softmax": AttentionLayer(d, args.heads, kind="softmax"),
    }
    layers["linear (composite)"] = layers["linear"]
    names = ["linear", "linear (composite)", "softmax"]
    kernel = fused_module.fused_kernel_for(torch.device("cpu"))
    lookups = {name: lambda device: kernel for name in ("linear", "softmax")}
    lookups["linear (composite)"] = no_kernel
    kernels = {"linear": kernel}
    if args.previous_kernel:
        names.append("linear (previous kernel)")
        layers[names[-1]] = layers["linear"]
        kernels[names[-1]] = _cpu.CpuKernel(previous_extension(args.previous_kernel))
        lookups[names[-1]] = lambda device: kernels["linear (previous kernel)"]
    if args.compile:
        names.append("linear (torch.compile)")
        layers[names[-1]] = torch.compile(layers["linear"], dynamic=False)
        lookups[names[-1]] = no_kernel  # the same object every call: no recompiles

    def timed(name: str) -> Callable[[], float]:
        layer = layers[name]

        def run() -> float:
            with kernel_lookup(lookups[name]):
                layer.zero_grad(set_to_none=True)
                xi = x.detach().requires_grad_()
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                    out = layer(xi, key_padding_mask=mask)
                out.backward(grad.to(out.dtype))
                return time.perf_counter() - t0

        return run

    contenders = {name: timed(name) for name in names}
    for name in kernels if args.previous_kernel else ():
        contenders[f"{name}: attention alone"] = attention_alone(kernels[name], x, mask, args)
    if args.compile:
        t0 = time.perf_counter()
        contenders["linear (torch.compile)"]()
        args.compile_seconds[padded] = time.perf_counter() - t0
    return contenders


def attention_alone(
    kernel: object, x: torch.Tensor, mask: torch.Tensor | None, args: argparse.Namespace
) -> Callable[[], float]:
    """The fused kernel's forward + backward on packed q, k, v of the layer's shape, without
    the projections around it: the kernel's own time."""
    b, n, d = x.shape
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    qkv = torch.randn(b, n, 3, args.heads, d // args.heads, dtype=dtype)
    grad = torch.randn(b, n, args.heads, d // args.heads, dtype=dtype)

    def run() -> float:
        with kernel_lookup(lambda device: kernel):
            qi = qkv.detach().requires_grad_()
            t0 = time.perf_counter()
            out = fused_module.fused_self_attention(qi, causal=False, key_padding_mask=mask)
            out.backward(grad)
            return time.perf_counter() - t0

    return run


def run_layer(args: argparse.Namespace) -> str:
    load = os.getloadavg()[0]
    lines = ["## Attention layer alone", ""]
    results = {}
    args.compile_seconds = {}
    for padded in (False, True):
        results[padded] = interleave(layer_contenders(args, padded), args.rounds)
    lines += header(args, load)
    lines += [
        f"AttentionLayer (q/k/v/out projections included), B=2, N={args.frames}, d_model "
        f"{args.d_model}, {args.heads} heads, {'bf16 autocast' if args.bf16 else 'fp32'}, "
        f"forward + backward; median [min-max] of "
        f"{args.rounds} interleaved rounds, seconds.",
        "",
        "| batch | linear (fused) | linear (composite) | softmax (SDPA) | softmax / linear | "
        "composite / fused |",
        "|---|---|---|---|---|---|",
    ]
    for padded, t in results.items():
        lines.append(
            f"| {'padded (N, 0.92 N)' if padded else 'equal'} | {summary(t['linear'])} | "
            f"{summary(t['linear (composite)'])} | {summary(t['softmax'])} | "
            f"{ratio(t['softmax'], t['linear'])} | {ratio(t['linear (composite)'], t['linear'])} |"
        )
    if args.previous_kernel:
        lines += [
            "",
            f"The fused layer on the kernel source {args.previous_kernel}, same rounds:",
            "",
            "| batch | layer, previous kernel (s) | previous / today's | attention alone, "
            "today's (s) | attention alone, previous (s) | previous / today's |",
            "|---|---|---|---|---|---|",
        ]
        for padded, t in results.items():
            prev = t["linear (previous kernel)"]
            alone, alone_prev = (
                t["linear: attention alone"],
                t["linear (previous kernel): attention alone"],
            )
            lines.append(
                f"| {'padded' if padded else 'equal'} | {summary(prev)} | "
                f"{ratio(prev, t['linear'])} | {summary(alone)} | {summary(alone_prev)} | "
                f"{ratio(alone_prev, alone)} |"
            )
    if args.compile:
        lines += [
            "",
            "torch.compile (inductor, dynamic=False) of the composite layer, same rounds:",
            "",
            "| batch | compiled (s) | compiled / fused | first call incl. compile (s) |",
            "|---|---|---|---|",
        ]
        for padded, t in results.items():
            c = t["linear (torch.compile)"]
            lines.append(
                f"| {'padded' if padded else 'equal'} | {summary(c)} | {ratio(c, t['linear'])} | "
                f"{args.compile_seconds[padded]:.1f} |"
            )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ kernel


def matmul_seconds(size: int = 2048) -> Callable[[], float]:
    a, b = torch.randn(size, size), torch.randn(size, size)

    def run() -> float:
        t0 = time.perf_counter()
        a @ b
        return time.perf_counter() - t0

    return run


def product_seconds(fn, n: int, args: argparse.Namespace) -> Callable[[], float]:
    q, k, v = (
        torch.randn(args.batch, args.heads, n, args.dim, requires_grad=True) for _ in range(3)
    )
    grad = torch.randn(args.batch, args.heads, n, args.dim)

    def run() -> float:
        t0 = time.perf_counter()
        torch.autograd.grad(fn(q, k, v), (q, k, v), grad)
        return time.perf_counter() - t0

    return run


def gradient_error(fn) -> float:
    """Largest relative error of fn's output and gradients against the float64 reference."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.rand(1, 2, 300, 32, generator=gen) for _ in range(3))
    g = torch.randn(1, 2, 300, 32, generator=gen)
    qs, ks, vs = (x.clone().requires_grad_() for x in (q, k, v))
    ours = [fn(qs, ks, vs)]
    ours += torch.autograd.grad(ours[0], (qs, ks, vs), g)
    qd, kd, vd = (x.double().requires_grad_() for x in (q, k, v))
    ref = [causal_product_reference(qd, kd, vd)]
    ref += torch.autograd.grad(ref[0], (qd, kd, vd), g.double())
    errors = [
        ((a.double() - b).abs().max() / b.abs().max()).item()
        for a, b in zip(ours, ref, strict=True)
    ]
    return max(e if e == e else float("inf") for e in errors)  # NaN counts as infinite


def previous_extension(source: str) -> object:
    """An earlier revision's CPU extension (its attention_cpu.cpp, headers beside it), built under
    another name so that both load in one process."""
    from pathlib import Path

    from torch.utils.cpp_extension import load

    return load(
        name="previous_attention_cpu",
        sources=[source],
        extra_cflags=["-O3", "-fopenmp"],
        extra_ldflags=["-fopenmp"],
        extra_include_paths=[str(Path(source).resolve().parent)],
    )


def load_previous_kernel(source: str) -> Callable:
    """An earlier version of the CPU kernel (a .cpp with forward/backward(q, k, v, [g,] chunk)),
    as a differentiable function: before/after in one process."""
    ext = previous_extension(source)

    class Previous(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(q, k, v)
            return ext.forward(q, k, v, _cpu.CONFIG.chunk)

        @staticmethod
        def backward(ctx, grad):  # type: ignore[no-untyped-def]
            return tuple(ext.backward(*ctx.saved_tensors, grad.contiguous(), _cpu.CONFIG.chunk))

    return Previous.apply


def run_kernel(args: argparse.Namespace) -> str:
    load = os.getloadavg()[0]
    contenders = {"matmul": matmul_seconds()}
    for n in args.n:
        contenders[f"ours {n}"] = product_seconds(causal_product, n, args)
    fallback = lambda q, k, v: causal_product(q, k, v, backend="torch")  # noqa: E731
    for n in args.fallback_n:
        contenders[f"fallback {n}"] = product_seconds(fallback, n, args)
    if args.previous_kernel:
        previous = load_previous_kernel(args.previous_kernel)
        for n in args.n:
            contenders[f"previous {n}"] = product_seconds(previous, n, args)
    ft_note = ""
    if args.fast_transformers:
        from fast_transformers.causal_product import causal_dot_product

        err = gradient_error(causal_dot_product)
        ft_note = (
            f"fast-transformers 0.4.0 max relative error vs float64 (out and gradients): {err:.2g}"
        )
        if err < 1e-4:
            for n in args.n:
                contenders[f"ft {n}"] = product_seconds(causal_dot_product, n, args)
        else:
            ft_note += " -- its gradients are wrong on this machine, so its times are not reported"
    ours_err = gradient_error(causal_product)
    times = interleave(contenders, args.rounds)
    rate = 2 * 2048**3 / statistics.median(times["matmul"]) / 1e9
    lines = ["## Causal product kernel", ""] + header(args, load)
    lines += [
        f"B={args.batch}, H={args.heads}, D=M={args.dim}, fp32, forward + backward; median "
        f"[min-max] of {args.rounds} interleaved rounds. fp32 2048^2 matmul in the same process: "
        f"{rate:.1f} GFLOPS ({summary(times['matmul'])} s). Our max relative error vs float64: "
        f"{ours_err:.2g}.",
        *([ft_note] if ft_note else []),
        "",
        "| N | ours fwd+bwd (s) | GFLOPS (14 NDM) | % of matmul | previous kernel (s) | "
        "previous / ours | fast-transformers (s) | ft / ours |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in args.n:
        ours = times[f"ours {n}"]
        flops = CAUSAL_PRODUCT_FLOPS_PER_NDM * n * args.dim * args.dim * args.batch * args.heads
        gflops = flops / statistics.median(ours) / 1e9
        ft, prev = times.get(f"ft {n}"), times.get(f"previous {n}")
        lines.append(
            f"| {n} | {summary(ours)} | {gflops:.1f} | {100 * gflops / rate:.0f}% | "
            f"{summary(prev) if prev else '-'} | {ratio(prev, ours) if prev else '-'} | "
            f"{summary(ft) if ft else '-'} | {ratio(ft, ours) if ft else '-'} |"
        )
    for n in args.fallback_n:
        fb = times[f"fallback {n}"]
        lines.append(
            f"\nPure-PyTorch fallback (backend='torch', what runs without a C++ compiler) at N={n}: "
            f"{summary(fb)} s, {ratio(fb, times[f'ours {n}'])} the kernel's time."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("what", choices=["layer", "kernel"])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--frames", type=int, default=1500, help="layer: N")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=None, help="layer: 4, kernel: 8")
    p.add_argument("--n", type=int, nargs="+", default=[4096, 8192, 16384], help="kernel: N")
    p.add_argument("--batch", type=int, default=4, help="kernel: B")
    p.add_argument("--dim", type=int, default=64, help="kernel: D = M")
    p.add_argument("--fast-transformers", action="store_true", help="kernel: add ft 0.4.0")
    p.add_argument(
        "--fallback-n", type=int, nargs="*", default=[4096], help="kernel: time the fallback here"
    )
    p.add_argument("--compile", action="store_true", help="layer: add torch.compile's version")
    p.add_argument("--bf16", action="store_true", help="layer: forward under bf16 autocast")
    p.add_argument(
        "--previous-kernel",
        metavar="CPP",
        help="also time this earlier attention_cpu.cpp (e.g. from a git worktree)",
    )
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.heads = args.heads or (4 if args.what == "layer" else 8)
    print(run_layer(args) if args.what == "layer" else run_kernel(args))


if __name__ == "__main__":
    main()
