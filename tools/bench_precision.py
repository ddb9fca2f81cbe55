"""Training-step time of a recipe config's model in float32 and in bf16 autocast (Lightning's
``bf16-mixed``) on this CPU: the measurement behind ``run.bf16_when_native``.

The two precisions alternate in rounds in one process (the machine's drift hits both alike);
each round times ``--steps`` steps after one untimed step. Random weights and inputs, the step of
``tools/profile_step.py train`` (forward, CTC loss, backward, AdamW).

    python tools/bench_precision.py --config recipes/synth/conf/demo.yaml
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from profile_step import train_step

from asr.machine import machine_description, native_bf16


def time_rounds(
    steps: dict[str, Callable[[], None]], rounds: int, per_round: int
) -> dict[str, list[float]]:
    """Seconds per step of each named step function, one list entry per round."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            step()
            start = time.perf_counter()
            for _ in range(per_round):
                step()
            times[name].append((time.perf_counter() - start) / per_round)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="recipes/synth/conf/demo.yaml")
    p.add_argument("--seconds", type=float, default=3.3, help="seconds per utterance")
    p.add_argument("--batch", type=int, default=12, help="utterances per step")
    p.add_argument("--vocab", type=int, default=72)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=5, help="timed steps per round")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = {}
    for name, bf16 in (("float32", False), ("bf16-mixed", True)):
        torch.manual_seed(0)
        steps[name] = train_step(argparse.Namespace(**{**vars(args), "bf16": bf16}))[1]
    times = time_rounds(steps, args.rounds, args.steps)
    base = statistics.median(times["float32"])
    print(f"{machine_description()}; native bf16: {native_bf16('cpu')}; {args.threads} threads")
    print(f"{args.config}: batch {args.batch} x {args.seconds} s, {args.rounds} rounds")
    print("| precision | ms per step, median [min-max] | faster than float32 |")
    print("|---|---|---|")
    for name, t in times.items():
        med = statistics.median(t)
        print(
            f"| {name} | {med * 1e3:.0f} [{min(t) * 1e3:.0f}-{max(t) * 1e3:.0f}] "
            f"| {base / med:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
