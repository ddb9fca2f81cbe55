"""CUDA forward+backward times (GPU only): our causal product (the CUDA kernel and the Triton
one, asr/attention/_triton.py) vs SDPA flash attention, and the fused linear-attention layer vs
the composite PyTorch form vs flash.

python tools/bench_cuda_kernel.py [--n 1024 2048 4096 8192 16384] [--b 8 --h 16 --d 64]
Prints markdown tables (ms per call, CUDA events, median of --iters).
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from asr.attention import _cuda, _triton


def time_ms(fn, iters: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def ours(b, h, n, d, dtype, backward=True):
    q, k, v, g = (torch.randn(b, h, n, d, device="cuda", dtype=dtype) * 0.1 for _ in range(4))

    def run():
        _cuda.forward(q, k, v)
        if backward:
            _cuda.backward(q, k, v, g)

    return run


def triton_kernel(b, h, n, d, dtype):
    q, k, v, g = (torch.randn(b, h, n, d, device="cuda", dtype=dtype) * 0.1 for _ in range(4))

    def run():
        _triton.forward(q, k, v)
        _triton.backward(q, k, v, g)

    return run


def _time_or_nan(make, *args, iters: int) -> float:
    try:
        return time_ms(make(*args), iters)
    except Exception as exc:  # noqa: BLE001 - a failing column is reported, the others still run
        print(f"failed: {str(exc)[:200]}")
        return float("nan")


def flash(b, h, n, d, dtype, backward=True):
    q, k, v = (
        (torch.randn(b, h, n, d, device="cuda", dtype=dtype) * 0.1).requires_grad_()
        for _ in range(3)
    )
    g = torch.randn(b, h, n, d, device="cuda", dtype=dtype)

    def run():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        if backward:
            torch.autograd.grad(out, (q, k, v), g)

    return run


def layer(kind: str, b, h, n, d, dtype, causal: bool):
    """fwd+bwd of one attention over (B, N, H, D) inputs, as AttentionLayer calls it."""
    from asr.attention.fused import _FusedLinearAttention
    from asr.attention.linear import composite_linear_attention

    q, k, v = (
        (torch.randn(b, n, h, d, device="cuda", dtype=dtype) * 0.5).requires_grad_()
        for _ in range(3)
    )
    g = torch.randn(b, n, h, d, device="cuda", dtype=dtype)
    mask = torch.zeros(b, n, dtype=torch.bool, device="cuda")
    mask[-1, int(0.92 * n) :] = True  # a padded batch, as in training

    def run():
        if kind == "fused":
            out = _FusedLinearAttention.apply(q, k, v, mask, causal, 1e-6, _cuda)
        elif kind == "composite":
            out = composite_linear_attention(
                *(x.transpose(1, 2) for x in (q, k, v)), causal=causal, key_padding_mask=mask
            ).transpose(1, 2)
        else:
            allowed = ~mask[:, None, None, :]
            out = F.scaled_dot_product_attention(
                *(x.transpose(1, 2) for x in (q, k, v)), attn_mask=allowed, is_causal=False
            ).transpose(1, 2)
        torch.autograd.grad(out, (q, k, v), g)

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    p.add_argument("--b", type=int, default=8)
    p.add_argument("--h", type=int, default=16)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--iters", type=int, default=10)
    args = p.parse_args()
    print(
        f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, "
        f"B={args.b} H={args.h} D=M={args.d}, ms per call (median of {args.iters})"
    )
    print(
        "| N | ours fp32 fwd | ours fp32 fwd+bwd | ours bf16 fwd+bwd | flash bf16 fwd | "
        "flash bf16 fwd+bwd | triton fp32 fwd+bwd | triton bf16 fwd+bwd |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n in args.n:
        row = [
            time_ms(ours(args.b, args.h, n, args.d, torch.float32, backward=False), args.iters),
            time_ms(ours(args.b, args.h, n, args.d, torch.float32), args.iters),
            time_ms(ours(args.b, args.h, n, args.d, torch.bfloat16), args.iters),
        ]
        try:
            row += [
                time_ms(
                    flash(args.b, args.h, n, args.d, torch.bfloat16, backward=False), args.iters
                ),
                time_ms(flash(args.b, args.h, n, args.d, torch.bfloat16), args.iters),
            ]
        except RuntimeError as exc:  # flash not available for this GPU/dtype
            print(f"flash failed: {exc}")
            row += [float("nan")] * 2
        for dtype in (torch.float32, torch.bfloat16):
            row.append(
                _time_or_nan(triton_kernel, args.b, args.h, n, args.d, dtype, iters=args.iters)
            )
        print(f"| {n} | " + " | ".join(f"{x:.3f}" for x in row) + " |", flush=True)
        torch.cuda.empty_cache()
    print(
        f"\n# Attention in a layer: (B, N, H, D) = ({args.b}, N, {args.h}, {args.d}), last "
        "utterance 8% padded, fwd+bwd ms (median). fused = csrc/linear_attention_cuda.cu; "
        "composite = the PyTorch ops it replaces; sdpa = softmax with the padding mask."
    )
    kinds = ("fused", "composite", "sdpa")
    header = [
        f"{kind} {dt} {'causal' if c else 'non-causal'}"
        for kind in kinds
        for dt in ("fp32", "bf16")
        for c in (False, True)
        if not (kind == "sdpa" and c)
    ]
    print("| N | " + " | ".join(header) + " |")
    print("|---|" + "---|" * len(header))
    for n in args.n:
        row = []
        for kind in kinds:
            for dtype in (torch.float32, torch.bfloat16):
                for causal in (False, True):
                    if kind == "sdpa" and causal:
                        continue
                    try:
                        row.append(
                            time_ms(
                                layer(kind, args.b, args.h, n, args.d, dtype, causal), args.iters
                            )
                        )
                    except RuntimeError as exc:  # out of memory, unsupported
                        print(f"{kind} failed at N={n}: {str(exc)[:120]}")
                        row.append(float("nan"))
                    torch.cuda.empty_cache()
        print(f"| {n} | " + " | ".join(f"{x:.3f}" for x in row) + " |", flush=True)


if __name__ == "__main__":
    main()
