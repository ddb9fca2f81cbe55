"""Where one step's time goes: torch.profiler over a CTC training step or an autoregressive
generation step, random weights and inputs (what a step costs does not depend on them).

* ``train``: one forward + CTC loss + backward + AdamW step of a recipe config's encoder
  (``train.model.encoder``, its fbank size), on a batch of ``--batch`` utterances of
  ``--seconds`` each (the demo's 40 s batches are about 12 x 3.3 s).
* ``generate``: one token of :class:`asr.autoregressive.incremental.IncrementalDecoder` (linear
  recurrent or softmax with a key/value cache) plus sampling, the paper's 8-layer MNIST model.

    python tools/profile_step.py train --config recipes/synth/conf/demo_10epochs.yaml
    python tools/profile_step.py generate --attention causal-linear --threads 1

Prints the mean step time and the profiler's operator table (self CPU time).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))


def train_step(args: argparse.Namespace) -> tuple[torch.nn.Module, Callable[[], None]]:
    """A recipe config's CTC model and one training step of it (forward, CTC loss, backward,
    AdamW) on ``args.batch`` utterances of ``args.seconds`` each."""
    from yaml_get import load_config, lookup

    from asr.features import as_fbank_config
    from asr.models import CTCModel, EncoderConfig

    config = load_config(args.config)
    fbank = as_fbank_config(lookup(config, "train.data.init_args.fbank", None))
    encoder = {**lookup(config, "train.model.encoder"), "input_dim": fbank.feature_dim}
    model = CTCModel(EncoderConfig.from_dict(encoder), args.vocab)
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    frames = int(args.seconds * 100)
    x = torch.randn(args.batch, frames, fbank.feature_dim)
    lengths = torch.full((args.batch,), frames)
    n_tokens = max(1, frames // 8)
    targets = torch.randint(1, args.vocab, (args.batch, n_tokens))
    target_lengths = torch.full((args.batch,), n_tokens)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            log_probs, out_lengths = model(x, lengths)
        loss = torch.nn.functional.ctc_loss(
            log_probs.transpose(0, 1), targets, out_lengths, target_lengths, zero_infinity=True
        )
        opt.zero_grad()
        loss.backward()
        opt.step()

    return model, step


def generate_step(args: argparse.Namespace) -> Callable[[], None]:
    from asr.autoregressive import ARConfig, CausalTransformer, level_probs, sample_tokens
    from asr.autoregressive.incremental import IncrementalDecoder

    cfg = ARConfig(max_len=784, n_layers=8, attention=args.attention)
    model = CausalTransformer(cfg).eval()
    decoder = IncrementalDecoder(model, args.batch, cfg.max_len)
    token = torch.zeros(args.batch, dtype=torch.long)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        nonlocal decoder
        if decoder.position >= cfg.max_len:  # start a new image
            decoder = IncrementalDecoder(model, args.batch, cfg.max_len)
        probs = level_probs(decoder.step(token), cfg.output, cfg.vocab_size)
        sample_tokens(probs, generator=generator)

    return step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("train", "generate"))
    p.add_argument("--config", default="recipes/synth/conf/demo.yaml", help="train: recipe config")
    p.add_argument("--seconds", type=float, default=3.3, help="train: seconds per utterance")
    p.add_argument("--batch", type=int, help="utterances (train, 12) or sequences (generate, 1)")
    p.add_argument("--vocab", type=int, default=72, help="train: output units")
    p.add_argument("--bf16", action="store_true", help="train: bf16 autocast (bf16-mixed)")
    p.add_argument(
        "--attention", default="causal-linear", choices=("causal-linear", "causal-softmax")
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, help="timed and profiled steps (train 10, generate 200)")
    p.add_argument("--rows", type=int, default=20)
    args = p.parse_args(argv)
    train = args.kind == "train"
    args.batch = args.batch or (12 if train else 1)
    steps = args.steps or (10 if train else 200)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    step = train_step(args)[1] if train else generate_step(args)
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(
        f"{args.kind} step: {(time.perf_counter() - start) / steps * 1e3:.2f} ms (mean of {steps})"
    )
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(min(steps, 50)):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
