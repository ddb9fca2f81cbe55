"""Training throughput of the autoregressive image model: causal linear vs softmax (SDPA) attention.

Same model but the attention (the paper's CIFAR-10 model by default: 16 layers, 8 heads, width
256, feed-forward 1,024, a mixture of 10 discretised logistics), random 8-bit sequences of each
length, one full training step (forward, loss, backward, RAdam update) per run, the two kinds
interleaved over ``--repeats`` runs after a warm-up step. Reports tokens per second (median and
range) and the linear/softmax ratio per length; the last line is one JSON object
``{"<length>": {"linear": tok/s, "softmax": tok/s, "ratio": ...}}``.

    python tools/bench_ar_train.py                        # N = 3072 (CIFAR-10), batch 2
    python tools/bench_ar_train.py --lengths 784 3072 --layers 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

from asr.autoregressive import ARConfig, CausalTransformer, token_log_prob
from asr.machine import machine_description


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[3072])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--layers", type=int, default=16)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--markdown", help="append the table here")
    return p.parse_args(argv)


def make(
    kind: str, args: argparse.Namespace, length: int
) -> tuple[CausalTransformer, torch.optim.Optimizer]:
    torch.manual_seed(0)
    cfg = ARConfig(
        max_len=length,
        d_model=args.d_model,
        n_layers=args.layers,
        n_heads=args.heads,
        d_ff=4 * args.d_model,
        attention=f"causal-{kind}",
    )
    model = CausalTransformer(cfg).train()
    return model, torch.optim.RAdam(model.parameters(), lr=1e-4)


def step_seconds(
    model: CausalTransformer, opt: torch.optim.Optimizer, tokens: torch.Tensor
) -> float:
    start = time.perf_counter()
    cfg = model.config
    loss = -token_log_prob(model(tokens), tokens, cfg.output, cfg.vocab_size).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    summary, lines = {}, []
    lines += [
        f"Machine: {machine_description()}; {torch.get_num_threads()} torch threads.",
        f"Model: {args.layers} layers, {args.heads} heads, width {args.d_model}, feed-forward "
        f"{4 * args.d_model}, mixture of 10 logistics; batch {args.batch}; one training step "
        f"(forward, loss, backward, RAdam) per run, median of {args.repeats} interleaved runs.",
        f"Command: `python tools/bench_ar_train.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
        "",
        "| N | linear tokens/s (range) | softmax SDPA tokens/s (range) | linear / softmax |",
        "|---|---|---|---|",
    ]
    for n in args.lengths:
        tokens = torch.randint(0, 256, (args.batch, n), generator=torch.Generator().manual_seed(1))
        models = {k: make(k, args, n) for k in ("linear", "softmax")}
        for model, opt in models.values():  # warm-up: kernels, allocator, optimizer state
            step_seconds(model, opt, tokens)
        runs: dict[str, list[float]] = {k: [] for k in models}
        for r in range(args.repeats):
            order = ["linear", "softmax"] if r % 2 == 0 else ["softmax", "linear"]
            for kind in order:
                runs[kind].append(step_seconds(*models[kind], tokens))
                print(f"  N={n} run {r + 1} {kind}: {runs[kind][-1]:.2f} s", file=sys.stderr)
        rate = {k: args.batch * n / statistics.median(t) for k, t in runs.items()}
        span = {k: (args.batch * n / max(t), args.batch * n / min(t)) for k, t in runs.items()}
        ratio = rate["linear"] / rate["softmax"]
        summary[str(n)] = {"linear": rate["linear"], "softmax": rate["softmax"], "ratio": ratio}
        lines.append(
            f"| {n} | {rate['linear']:.0f} ({span['linear'][0]:.0f}-{span['linear'][1]:.0f}) "
            f"| {rate['softmax']:.0f} ({span['softmax'][0]:.0f}-{span['softmax'][1]:.0f}) "
            f"| {ratio:.2f}x |"
        )
        del models
    report = "\n".join(lines)
    print(report)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(report + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
