"""Training-step cost of linear vs softmax attention vs Bi-LSTM encoders at 5 s / 20 s / 60 s.

Same synthetic batches (random 80-dim features at 100 frames/s, random targets) for every
encoder; encoders of comparable parameter count (the Bi-LSTM's hidden size is chosen to match
the transformer). Each encoder runs in a fresh process; peak memory is the resident-memory
growth over the warm-up and timed steps on CPU (sampled every 2 ms), ``torch.cuda.max_memory_allocated``
on CUDA. Prints (and with --out appends) a markdown table.

    python tools/bench_train.py                       # short default (~ a few minutes, 2 cores)
    python tools/bench_train.py --device cuda --layers 9 --d-model 384 --heads 6 --batch 8
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import sys
import threading
import time
from dataclasses import replace

import torch

from asr.models import CTCModel, EncoderConfig, LSTMConfig, TransformerConfig

FRAMES_PER_S = 100


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def configs(args: argparse.Namespace) -> dict[str, EncoderConfig]:
    front = dict(
        input_dim=80, subsampling=4, conv_channels=args.conv_channels, d_model=args.d_model
    )
    layers = TransformerConfig(n_layers=args.layers, n_heads=args.heads, d_ff=4 * args.d_model)
    base = EncoderConfig(**front, dropout=0.1, transformer=layers)

    def bilstm(hidden: int) -> EncoderConfig:
        lstm = LSTMConfig(hidden_size=hidden, n_layers=args.lstm_layers)
        return EncoderConfig(**front, dropout=0.1, encoder_type="lstm", lstm=lstm)

    target = n_params(CTCModel(base, args.vocab))
    hidden, best = 32, None
    for h in range(32, 2049, 16):  # smallest gap in parameter count
        gap = abs(n_params(CTCModel(bilstm(h), args.vocab)) - target)
        if best is None or gap < best:
            hidden, best = h, gap
    return {
        "linear": replace(base, transformer=replace(layers, attention="linear")),
        "softmax": replace(base, transformer=replace(layers, attention="softmax")),
        "bilstm": bilstm(hidden),
    }


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class _PeakRSS:
    """Samples resident memory every 2 ms in a thread: peak above the level at start."""

    def __enter__(self) -> _PeakRSS:
        self.base = self.peak = _rss_mib()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.wait(0.002):
            self.peak = max(self.peak, _rss_mib())

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, _rss_mib())

    @property
    def delta(self) -> float:
        return self.peak - self.base


def run_encoder(cfg: EncoderConfig, args: argparse.Namespace, q: mp.Queue) -> None:
    """All lengths for one encoder in this (fresh) process."""
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = CTCModel(cfg, args.vocab).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ctc = torch.nn.CTCLoss(zero_infinity=True)
    for seconds in args.lengths:
        try:
            t = int(seconds * FRAMES_PER_S)
            x = torch.randn(args.batch, t, 80, device=dev)
            lengths = torch.full((args.batch,), t, device=dev)
            tgt_len = max(1, int(seconds * 3))  # ~3 tokens per second
            y = torch.randint(1, args.vocab, (args.batch, tgt_len), device=dev)
            ylen = torch.full((args.batch,), tgt_len, device=dev)

            def step() -> None:
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.bf16):
                    lp, n = model(x, lengths)  # noqa: B023
                loss = ctc(lp.transpose(0, 1), y, n, ylen)  # noqa: B023
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            with _PeakRSS() as rss:  # from before the first step: activations + grads
                step()  # warm-up (also allocates optimizer state on the first length)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                dt = (time.perf_counter() - t0) / args.steps
            peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else rss.delta
            q.put((seconds, {"s_per_step": dt, "peak_mib": peak, "params": n_params(model)}))
        except Exception as e:  # noqa: BLE001 - report OOM etc. as a table cell
            q.put((seconds, {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:60]}"}))
        finally:
            if dev.type == "cuda":
                torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--lengths", type=float, nargs="+", default=[5, 20, 60], help="seconds")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--conv-channels", type=int, default=64)
    p.add_argument("--lstm-layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per length")
    p.add_argument("--out", default=None, help="append the markdown here")
    args = p.parse_args(argv)

    ctx = mp.get_context("spawn")
    cfgs = configs(args)
    rows = []
    for name, cfg in cfgs.items():
        q = ctx.Queue()
        proc = ctx.Process(target=run_encoder, args=(cfg, args, q))
        proc.start()
        got = {}
        for _ in args.lengths:
            try:
                sec, r = q.get(timeout=args.timeout)
            except Exception:  # noqa: BLE001
                break
            got[sec] = r
            print(name, sec, r, file=sys.stderr, flush=True)
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
        for sec in args.lengths:
            rows.append((name, sec, got.get(sec, {"error": f"no result (exit {proc.exitcode})"})))

    dev = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    mem = "peak CUDA alloc" if args.device == "cuda" else "peak RSS growth"
    lines = [
        f"### {args.device}: {dev}, torch {torch.__version__}, {args.threads} threads"
        f"{', bf16 autocast' if args.bf16 else ''}",
        "",
        f"Command: `python tools/bench_train.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        f"Batch {args.batch} x length, {args.steps} timed steps (fwd+bwd+AdamW) after 1 warm-up; "
        f"transformer {args.layers} layers, d_model {args.d_model}, {args.heads} heads, 4x "
        f"subsampling; Bi-LSTM {args.lstm_layers} layers x {cfgs['bilstm'].lstm.hidden_size} per "
        "direction (matched parameter count).",
        "",
        "| encoder | params | "
        + " | ".join(f"{s:g} s: s/step" for s in args.lengths)
        + " | "
        + " | ".join(f"{s:g} s: {mem} MiB" for s in args.lengths)
        + " |",
        "|---|---|" + "---|" * (2 * len(args.lengths)),
    ]
    for name in cfgs:
        rs = [r for n, _, r in rows if n == name]
        params = next((r["params"] for r in rs if "params" in r), 0)
        cells_t = [f"{r['s_per_step']:.3f}" if "error" not in r else r["error"] for r in rs]
        cells_m = [f"{r['peak_mib']:.0f}" if "error" not in r else "-" for r in rs]
        lines.append(f"| {name} | {params / 1e6:.2f}M | " + " | ".join(cells_t + cells_m) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
