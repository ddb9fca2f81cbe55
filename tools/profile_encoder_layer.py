"""Where the time and memory of one encoder layer (or the whole encoder) go: torch.profiler.

Times one forward+backward of a pre-norm transformer layer (``asr.models.encoder.TransformerLayer``)
or of a whole encoder at the paper's depth, batch 2, L seconds of audio (L * 100 / 4 frames after
the front end), after one warm-up, and prints

- the profiler's operator table (self CPU time, calls, memory allocated by the op itself);
- what autograd keeps for the backward pass: every tensor saved by the forward (deduplicated by
  storage), summed and listed by size, with the op that produced it where known.

    python tools/profile_encoder_layer.py --seconds 20 180 --attention linear softmax
    python tools/profile_encoder_layer.py --scope encoder --seconds 60 --attention linear
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

FRAMES_PER_S = 100


def build(args: argparse.Namespace, attention: str) -> tuple[nn.Module, tuple]:
    """The module profiled and its inputs; the one place that knows ``asr.models``."""
    from asr.models import EncoderConfig, build_encoder

    cfg = EncoderConfig.from_dict(
        dict(
            input_dim=80,
            subsampling=4,
            conv_channels=args.conv_channels,
            d_model=args.d_model,
            n_layers=args.layers,
            n_heads=args.heads,
            d_ff=args.d_ff,
            attention=attention,
            positional="conv",
            dropout=0.0,
        )
    )
    encoder = build_encoder(cfg)
    frames = int(args.seconds_now * FRAMES_PER_S)
    if args.scope == "layer":
        n = frames // 4
        x = torch.randn(2, n, args.d_model)
        pad = torch.zeros(2, n, dtype=torch.bool)
        return encoder.layers[0], (x, pad)
    return encoder, (torch.randn(2, frames, 80), torch.tensor([frames, frames]))


def run(module: nn.Module, inputs: tuple, grad: torch.Tensor | None = None) -> torch.Tensor:
    out = module(*inputs)
    out = out[0] if isinstance(out, tuple) else out
    out.backward(torch.ones_like(out) if grad is None else grad)
    return out


class SavedTensors:
    """Counts what autograd saves for backward (unique storages, parameters excluded)."""

    def __init__(self, module: nn.Module) -> None:
        self.seen: dict[int, tuple[int, str]] = {}
        self.parameters = {p.untyped_storage().data_ptr() for p in module.parameters()}

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key not in self.seen and key not in self.parameters:
            self.seen[key] = (storage.nbytes(), f"{tuple(t.shape)} {str(t.dtype)[6:]}")
        return t

    @staticmethod
    def unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    def report(self, top: int = 12) -> str:
        total = sum(b for b, _ in self.seen.values())
        by_shape = Counter()
        for nbytes, desc in self.seen.values():
            by_shape[desc] += nbytes
        lines = [f"saved for backward: {total / 2**20:.1f} MiB in {len(self.seen)} storages"]
        for desc, nbytes in by_shape.most_common(top):
            lines.append(f"  {nbytes / 2**20:8.1f} MiB  {desc}")
        return "\n".join(lines)


def profile_one(args: argparse.Namespace, attention: str) -> None:
    torch.manual_seed(0)
    module, inputs = build(args, attention)
    module.train()
    grad = run(module, inputs).detach().clone().normal_()  # warm-up: kernels built, libs loaded
    module.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    run(module, inputs, grad)
    plain = time.perf_counter() - t0
    module.zero_grad(set_to_none=True)
    saved = SavedTensors(module)
    with torch.autograd.graph.saved_tensors_hooks(saved.pack, saved.unpack):
        out = module(*inputs)
    del out
    with profile(
        activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=False
    ) as prof:
        run(module, inputs, grad)
    print(
        f"\n=== {args.scope} {attention}, {args.seconds_now:g} s (batch 2), "
        f"fwd+bwd {plain:.3f} s unprofiled, load {os.getloadavg()[0]:.2f}"
    )
    print(saved.report())
    print(
        prof.key_averages().table(
            sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=48
        )
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scope", choices=["layer", "encoder"], default="layer")
    p.add_argument("--seconds", type=float, nargs="+", default=[20, 180])
    p.add_argument("--attention", nargs="+", default=["linear", "softmax"])
    p.add_argument("--layers", type=int, default=9)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=1024)
    p.add_argument("--conv-channels", type=int, default=64)
    p.add_argument("--rows", type=int, default=18)
    args = p.parse_args(argv)
    print(f"command: python tools/profile_encoder_layer.py {' '.join(argv or sys.argv[1:])}")
    from asr.machine import machine_description

    print(f"machine: {machine_description()}, {torch.get_num_threads()} threads")
    for seconds in args.seconds:
        args.seconds_now = seconds
        for attention in args.attention:
            profile_one(args, attention)


if __name__ == "__main__":
    main()
