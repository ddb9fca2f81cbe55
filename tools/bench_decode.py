"""Decoding speed: real-time factor and peak memory of greedy and beam+LM search.

Two modes:

* with ``--model PKG`` (and ``--manifest M`` and/or ``--synthetic-minutes N``): the whole
  ``asr.transcribe`` path -- audio loading, features, model, search -- on a model package;
* ``--search-only``: the search alone, on synthetic CTC log-probs (a char vocabulary, 40 ms
  frames, peaked paths spelling random sentences with noise) with a synthetic word LM and
  lexicon. This isolates what ``asr.decode`` costs per audio second, with no model needed.

Each configuration runs in a fresh subprocess so ``ru_maxrss`` is its own peak. Results are
appended as markdown (command, machine, numbers) to ``--out``.

    python tools/bench_decode.py --search-only --minutes 10
    python tools/bench_decode.py --model exp/model.safetensors --manifest data/test.jsonl \
        --lexicon lm/lexicon.txt --lm lm/lm.arpa
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asr.machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "scratch" / "decode" / "BENCHMARKS_decode.md"
FRAME_SHIFT_S = 0.04  # 4x subsampled 10 ms frames, the encoder's usual output rate
ALPHABET = "abcdefghijklmnopqrstuvwxyz'"
#: logit added to the path token in search-only runs: the best token gets ~45% of the mass,
#: so a sizeable share of frames are confusable and the beam has real work to do.
PEAK_LOGIT = 4.0


class _CharTokenizer:
    """Just enough of asr.data.tokenizer.Tokenizer for search-only runs."""

    kind = "char"

    def __init__(self) -> None:
        self.tokens = ["<blk>", "|", *ALPHABET]
        self.vocab_size = len(self.tokens)

    def decode(self, ids: list[int]) -> str:
        return "".join(" " if self.tokens[i] == "|" else self.tokens[i] for i in ids if i)

    def word_to_tokens(self, word: str) -> list[str] | None:
        return list(word) if word and all(c in ALPHABET for c in word) else None


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _synthetic_lm(workdir: Path, n_words: int, seed: int) -> tuple[Path, Path, list[str]]:
    from asr.lm import NgramConfig, build_kn_lm, write_lexicon

    rng = random.Random(seed)
    vocab: set[str] = set()
    while len(vocab) < n_words:
        vocab.add("".join(rng.choice(ALPHABET[:-1]) for _ in range(rng.randint(2, 9))))
    words = sorted(vocab)
    weights = [1.0 / (i + 1) for i in range(len(words))]
    lines = [" ".join(rng.choices(words, weights, k=rng.randint(3, 15))) for _ in range(20000)]
    lm = build_kn_lm(lines, NgramConfig(order=3, prune=[0, 1]))
    lm.write_arpa(workdir / "lm.arpa")
    write_lexicon(_CharTokenizer(), words, workdir / "lexicon.txt")
    return workdir / "lexicon.txt", workdir / "lm.arpa", words


def _synthetic_log_probs(words: list[str], seconds: float, seed: int):
    """Peaked CTC posteriors spelling random words, 10% of frames confusable."""
    import torch

    tok = _CharTokenizer()
    rng = random.Random(seed)
    n = int(seconds / FRAME_SHIFT_S)
    path: list[int] = []
    while len(path) < n:
        for c in rng.choice(words):
            tid = tok.tokens.index(c)
            if path and path[-1] == tid:  # CTC needs a blank between repeated letters
                path.append(0)
            path += [tid] * rng.randint(1, 3) + [0] * rng.randint(0, 2)
        path += [1, 0]
    idx = torch.tensor(path[:n])
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, tok.vocab_size, generator=g)
    logits[torch.arange(n), idx] += PEAK_LOGIT
    return torch.log_softmax(logits, dim=-1)


def _worker_search_only(cfg: dict) -> dict:
    import torch

    from asr.decode import BeamSearchDecoder, greedy_decode

    torch.set_num_threads(cfg["threads"])
    workdir = Path(cfg["workdir"])
    words = (workdir / "words.txt").read_text().split()
    seconds = cfg["minutes"] * 60
    utt = cfg["utt_seconds"]
    lps = [
        _synthetic_log_probs(words, min(utt, seconds - s), seed=i)
        for i, s in enumerate(range(0, int(seconds), int(utt)))
    ]
    tok = _CharTokenizer()
    if cfg["search"] == "greedy":

        def run(lp):
            return greedy_decode(lp.unsqueeze(0), [lp.shape[0]], tok, FRAME_SHIFT_S)
    else:
        dec = BeamSearchDecoder(
            tok,
            workdir / "lexicon.txt",
            workdir / "lm.arpa",
            lm_weight=cfg["lm_weight"],
            beam_size=cfg["beam_size"],
            beam_threshold=cfg["beam_threshold"],
        )

        def run(lp):
            return dec(lp.unsqueeze(0), [lp.shape[0]], FRAME_SHIFT_S)

    start = time.perf_counter()
    for lp in lps:
        run(lp)
    elapsed = time.perf_counter() - start
    return {
        "audio_s": seconds,
        "elapsed_s": elapsed,
        "rtf": elapsed / seconds,
        "peak_mb": _peak_mb(),
    }


def _random_package(recipe_config: str) -> object:
    """A randomly initialised package sized like a recipe config's ``train.model.encoder``
    (features from its ``train.data.init_args.fbank``), with the bench's char tokenizer."""
    import torch
    from yaml_get import load_config, lookup

    from asr.features import as_fbank_config
    from asr.models import CTCModel, EncoderConfig
    from asr.package import ModelPackage

    config = load_config(recipe_config)
    fbank = as_fbank_config(lookup(config, "train.data.init_args.fbank", None))
    encoder = {**lookup(config, "train.model.encoder"), "input_dim": fbank.feature_dim}
    torch.manual_seed(0)
    tok = _CharTokenizer()
    model = CTCModel(EncoderConfig.from_dict(encoder), tok.vocab_size).eval()
    return ModelPackage(model=model, tokenizer=tok, fbank_config=fbank, cmvn=None)


def _worker_model(cfg: dict) -> dict:
    import torch

    from asr.inference import DecodeOptions, DecodeStats, iter_transcribe

    torch.set_num_threads(cfg["threads"])
    model = _random_package(cfg["random_model"]) if cfg.get("random_model") else cfg["model"]
    long_audio = {"long_audio": cfg["long_audio"]} if cfg.get("long_audio") else {}
    if cfg.get("chunk_seconds"):
        long_audio = {"long_audio": "chunk", "chunk_seconds": cfg["chunk_seconds"]}
    opts = DecodeOptions.from_flat(
        search=cfg["search"],
        lexicon=cfg.get("lexicon"),
        lm=cfg.get("lm"),
        lm_weight=cfg["lm_weight"],
        beam_size=cfg["beam_size"],
        beam_threshold=cfg["beam_threshold"],
        device=cfg["device"],
        **long_audio,
    )
    stats = DecodeStats()
    for _ in iter_transcribe(model, cfg["inputs"], opts, stats=stats):
        pass
    return {
        "audio_s": stats.audio_seconds,
        "elapsed_s": stats.elapsed_seconds,
        "rtf": stats.rtf,
        "peak_mb": _peak_mb(),
        "failed": stats.failed,
    }


def _run(cfg: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(cfg["threads"])}
    cmd = ["taskset", "-c", cfg["cpus"]] if cfg.get("cpus") else []
    cmd += [sys.executable, __file__, "--_worker", json.dumps(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({cfg['search']}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _machine() -> str:
    cpu = cpu_model()
    return f"{cpu}, {os.cpu_count()} CPUs visible, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="model package; omit with --search-only")
    p.add_argument("--manifest", help="JSONL manifest (or any asr-decode input)")
    p.add_argument("--synthetic-minutes", type=float, help="add one synthetic file this long")
    p.add_argument(
        "--random-model",
        help="randomly initialised model sized by this recipe config (e.g. "
        "recipes/synth/conf/demo.yaml)",
    )
    p.add_argument("--search-only", action="store_true", help="synthetic log-probs, no model")
    p.add_argument("--minutes", type=float, default=10.0, help="search-only audio length")
    p.add_argument("--utt-seconds", type=float, default=15.0, help="search-only utterance length")
    p.add_argument("--lm-words", type=int, default=5000, help="search-only LM vocabulary")
    p.add_argument("--lexicon")
    p.add_argument("--lm")
    p.add_argument("--lm-weight", type=float, default=1.0)
    p.add_argument("--beam-size", type=int, default=50)
    p.add_argument("--beam-threshold", type=float, default=25.0)
    p.add_argument("--chunk-seconds", type=float)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cpus", default="0,1", help="taskset CPU list ('' = no pinning)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker:
        cfg = json.loads(args._worker)
        res = _worker_search_only(cfg) if cfg["mode"] == "search" else _worker_model(cfg)
        print(json.dumps(res))
        return 0

    common = {
        "threads": args.threads,
        "cpus": args.cpus,
        "lm_weight": args.lm_weight,
        "beam_size": args.beam_size,
        "beam_threshold": args.beam_threshold,
        "device": args.device,
        "chunk_seconds": args.chunk_seconds,
    }
    tmp = tempfile.TemporaryDirectory(prefix="bench_decode_")
    workdir = Path(tmp.name)
    rows = []
    if args.search_only:
        lex, lm, words = _synthetic_lm(workdir, args.lm_words, seed=0)
        (workdir / "words.txt").write_text("\n".join(words))
        common.update(
            mode="search", workdir=str(workdir), minutes=args.minutes, utt_seconds=args.utt_seconds
        )
        setting = (
            f"search only: {args.minutes:g} min synthetic char log-probs, "
            f"{args.utt_seconds:g} s utterances, 3-gram LM over {args.lm_words} words"
        )
        configs = [("greedy", {}), ("beam+LM", {"search": "beam"})]
    else:
        if not args.model and not args.random_model:
            p.error("--model (or --random-model) is required unless --search-only")
        inputs = [args.manifest] if args.manifest else []
        if args.synthetic_minutes:
            import numpy as np
            import soundfile as sf

            wav = workdir / "synthetic.wav"
            n = int(args.synthetic_minutes * 60 * 16000)
            rng = np.random.default_rng(0)
            sf.write(wav, (0.05 * rng.standard_normal(n)).astype(np.float32), 16000)
            inputs.append(str(wav))
        if not inputs:
            p.error("give --manifest and/or --synthetic-minutes")
        if args.random_model and args.lm_words and not (args.lm and args.lexicon):
            lex, lm, _ = _synthetic_lm(workdir, args.lm_words, seed=0)
            args.lexicon, args.lm = str(lex), str(lm)
        common.update(mode="model", model=args.model, random_model=args.random_model, inputs=inputs)
        what = args.model or f"randomly initialised, sized by {args.random_model}"
        setting = f"model {what} on {', '.join(inputs)}"
        if args.synthetic_minutes:
            setting += f" ({args.synthetic_minutes:g} min synthetic noise file)"
        configs = [("greedy", {})]
        if args.lm and args.lexicon:
            configs.append(("beam+LM", {"search": "beam", "lexicon": args.lexicon, "lm": args.lm}))
        else:
            configs.append(("beam (no LM)", {"search": "beam"}))
    loads = [os.getloadavg()[0]]
    for name, extra in configs:
        cfg = {"search": "greedy", **common, **extra}
        res = _run(cfg)
        loads.append(os.getloadavg()[0])
        rows.append((name, res))
        print(f"{name}: RTF {res['rtf']:.4f}, peak {res['peak_mb']:.0f} MB", file=sys.stderr)
    tmp.cleanup()

    cmd = "python tools/bench_decode.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- command: `{cmd}`",
        f"- machine: {_machine()}; {args.threads} threads, pinned to CPUs `{args.cpus}`; "
        f"1-min load average {min(loads):.1f}-{max(loads):.1f} during the run "
        f"(above {args.threads} means other jobs shared the cores and inflated the RTF)",
        f"- setting: {setting}; beam {args.beam_size}, threshold {args.beam_threshold}, "
        f"lm_weight {args.lm_weight}",
        "",
        "| search | audio (s) | wall (s) | RTF | peak RSS (MB) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {r['audio_s']:.0f} | {r['elapsed_s']:.2f} | {r['rtf']:.4f} | {r['peak_mb']:.0f} |"
        for n, r in rows
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        out.write_text("# Decoding benchmarks (tools/bench_decode.py)\n")
    with open(out, "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
