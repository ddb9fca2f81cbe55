"""The conv front end of another revision against today's, inside whole encoders: one process
builds each encoder of ``tools/bench_encoder.py`` (linear, softmax, Bi-LSTM at the paper's
depth), loads ``Conv2dSubsampling`` from ``git show REV:asr/models/encoder.py`` with the same
weights, and times forward + backward with either front end swapped in, interleaved, the
order alternating between rounds. Prints medians and the per-round ratios old / new.
``--config``: instead, a recipe config's CTC model, one training step (forward, CTC loss,
backward, AdamW; ``tools/profile_step.py``'s) on 12 utterances of 3.3 s, the demo's batch shape.

    python tools/bench_front_end_ab.py --rev 3cade76            # float32
    python tools/bench_front_end_ab.py --rev 3cade76 --bf16     # bf16 autocast
    python tools/bench_front_end_ab.py --rev 3cade76 --bf16 --config recipes/synth/conf/demo.yaml
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_encoder as be

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_old_encoder_module(rev: str):
    """``asr/models/encoder.py`` as it was at ``rev``, as a module of its own."""
    source = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "show", f"{rev}:asr/models/encoder.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "encoder_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("encoder_old", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def old_front_end(old, new_fe, input_dim: int):
    """The old revision's front end with the same shape and weights as ``new_fe``."""
    channels = new_fe.convs[0].out_channels
    old_fe = old.Conv2dSubsampling(input_dim, channels, new_fe.out.out_features, new_fe.subsampling)
    old_fe.load_state_dict(new_fe.state_dict())
    return old_fe


def time_ab(encoder, old_fe, new_fe, step, rounds: int) -> str:
    """``step()`` timed in interleaved rounds with either front end in ``encoder``."""
    times: dict[str, list[float]] = {"old": [], "new": []}
    for r in range(rounds + 1):  # round 0 warms up
        pair = [("old", old_fe), ("new", new_fe)]
        for key, front_end in pair if r % 2 == 0 else pair[::-1]:
            encoder.front_end = front_end
            times[key].append(step())
    ratios = [o / n for o, n in zip(times["old"][1:], times["new"][1:], strict=True)]
    return (
        f"old {statistics.median(times['old'][1:]):.3f} s, "
        f"new {statistics.median(times['new'][1:]):.3f} s, old / new "
        f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"
    )


def config_step(config_path: str, bf16: bool):
    """A recipe config's encoder and a timed training step of its CTC model on the demo's
    batch shape (``tools/profile_step.py``'s step)."""
    import profile_step

    step_args = argparse.Namespace(config=config_path, vocab=68, seconds=3.3, batch=12, bf16=bf16)
    model, step = profile_step.train_step(step_args)

    def timed() -> float:
        t0 = time.perf_counter()
        step()
        return time.perf_counter() - t0

    return model.encoder, timed


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rev", required=True, help="git revision of the old front end")
    p.add_argument("--seconds", type=float, nargs="+", default=[20, 60, 180])
    p.add_argument("--models", nargs="+", default=list(be.MODELS), choices=be.MODELS)
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (3 at 180 s and more)")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--config", help="time this recipe config's training step instead")
    args = p.parse_args(argv)
    old = load_old_encoder_module(args.rev)
    precision = "bf16 autocast" if args.bf16 else "float32"
    print(f"machine: {be.machine()}; {precision}; old = {args.rev}")
    if args.config:
        encoder, step = config_step(args.config, args.bf16)
        old_fe = old_front_end(old, encoder.front_end, encoder.cfg.input_dim)
        result = time_ab(encoder, old_fe, encoder.front_end, step, args.rounds)
        print(f"{args.config} training step: {result}")
        return
    bench_args = be.parse_args([])
    for seconds in args.seconds:
        for padded in (False, True):
            features, lengths = be.make_batch(be.batch_lengths(seconds, padded))
            for name in args.models:
                model = be.make_encoder(name, bench_args)
                old_fe = old_front_end(old, model.front_end, be.FEATURE_DIM)
                rounds = args.rounds if seconds < 180 else min(args.rounds, 3)
                result = time_ab(
                    model, old_fe, model.front_end,
                    lambda m=model, x=features, n=lengths: be.fwd_bwd(m, x, n, args.bf16), rounds,
                )  # fmt: skip
                kind = "padded" if padded else "equal"
                print(f"{seconds:>5g} s {kind:<6} {name:<8} {result}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
