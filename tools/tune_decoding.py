"""Pick the beam search's LM weight and word score on a dev set (a grid, the usual way).

The acoustic model runs once; every grid point only re-runs the beam search over the cached
log-probabilities, so a 5 x 5 grid on 100 utterances takes about a minute on 2 cores.
Prints a WER/CER table and the best pair (lowest WER, then CER); ``--out`` also writes it as
JSON, which ``asr-bundle add --tuning`` puts into the package (recipe stage 5). Without
``--lexicon``/``--lm`` the package's own decoding bundle is used, so a bundled model can be
retuned on a user's dev set; the other search settings (beam size) come from the bundle too.
``--out`` with ``--reuse`` leaves an existing result alone when it was computed from the same
weights, lexicon, LM, manifest and grid (content hashes), so a recipe can rerun the stage.

    python tools/tune_decoding.py exp/demo/model.safetensors data/demo/corpus/dev.jsonl \\
        --lexicon data/demo/lm/lexicon.txt --lm data/demo/lm/lm.arpa \\
        --lm-weights 0.5 1 1.5 2 3 --word-scores -1 0 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import sys
import time
from pathlib import Path

import torch
import yaml
from safetensors import safe_open
from tqdm import tqdm

from asr.bundle import TENSOR_PREFIX
from asr.decode import BeamSearchDecoder
from asr.inference import DecodeOptions, Transcriber, collect_inputs, options_for_model
from asr.score import score
from asr.transcripts import Transcript, read_transcripts


def dev_log_probs(
    model: str, manifest: str, batch_seconds: float
) -> tuple[Transcriber, list[tuple[list[str], torch.Tensor, torch.Tensor]]]:
    """(ids, log_probs, lengths) per batch of the manifest, computed once."""
    items, errors = collect_inputs([manifest])
    if errors:
        raise SystemExit(f"tune_decoding: unreadable inputs: {[e.error for e in errors]}")
    tr = Transcriber(model, DecodeOptions(batch_seconds=batch_seconds))
    out = []
    for batch in tqdm(list(tr.batches(items)), desc="acoustic model", file=sys.stderr):
        log_probs, lengths = tr.log_probs([tr.featurize(it)[0] for it in batch])
        out.append(([it.id for it in batch], log_probs, lengths))
    return tr, out


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def weights_sha256(package: str | Path) -> str:
    """Hash of a package's tensors other than its decoding bundle: what the acoustic model is."""
    h = hashlib.sha256()
    with safe_open(str(package), framework="pt", device="cpu") as f:
        for key in sorted(k for k in f.keys() if not k.startswith(TENSOR_PREFIX)):  # noqa: SIM118
            h.update(key.encode())
            h.update(f.get_tensor(key).contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("manifest", help="dev JSONL manifest (its text is the reference)")
    p.add_argument("--lexicon", help="default: the package's decoding bundle")
    p.add_argument("--lm", help="default: the package's decoding bundle")
    p.add_argument("--lm-weights", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0, 3.0])
    p.add_argument("--word-scores", type=float, nargs="+", default=[-1.0, 0.0, 1.0, 2.0])
    p.add_argument("--beam-size", type=int, help="default: the bundle's, else asr-decode's")
    p.add_argument(
        "--config",
        help="YAML decoding options for the search (a recipe's decode.yaml); the grid replaces "
        "lm_weight and word_score",
    )
    p.add_argument("--batch-seconds", type=float, default=DecodeOptions.batch_seconds)
    p.add_argument("--out", help="write the table and the best pair here as JSON")
    p.add_argument("--reuse", action="store_true", help="keep --out if its inputs are unchanged")
    args = p.parse_args(argv)

    given = yaml.safe_load(Path(args.config).read_text()) or {} if args.config else {}
    given |= {k: getattr(args, k) for k in ("lexicon", "lm", "beam_size") if getattr(args, k)}
    base = options_for_model(args.model, given)
    if not (base.lexicon and base.lm):
        p.error("give --lexicon and --lm (the package carries no decoding bundle)")
    args.lexicon, args.lm = base.lexicon, base.lm
    inputs = {
        "weights_sha256": weights_sha256(args.model),
        "lexicon_sha256": _sha256(args.lexicon),
        "lm_sha256": _sha256(args.lm),
        "manifest_sha256": _sha256(args.manifest),
        "lm_weights": args.lm_weights,
        "word_scores": args.word_scores,
        "search": {
            k: v
            for k, v in dataclasses.asdict(base.beam).items()
            if k not in ("lm_weight", "word_score")
        },
    }
    if args.reuse and args.out and Path(args.out).is_file():
        try:
            previous = json.loads(Path(args.out).read_text())
        except json.JSONDecodeError:
            previous = {}
        if previous.get("inputs") == inputs:
            best = previous["best"]
            print(
                f"{args.out} is up to date: lm_weight {best['lm_weight']:g}, word_score {best['word_score']:g}"
            )
            return 0

    start = time.perf_counter()
    tr, batches = dev_log_probs(args.model, args.manifest, args.batch_seconds)
    refs = read_transcripts(args.manifest)
    rows = []
    grid = list(itertools.product(args.lm_weights, args.word_scores))
    for lm_weight, word_score in tqdm(grid, desc="grid", file=sys.stderr):
        config = dataclasses.replace(base.beam, lm_weight=lm_weight, word_score=word_score)
        dec = BeamSearchDecoder(tr.tokenizer, args.lexicon, args.lm, config=config)
        hyps: dict[str, Transcript] = {}
        for ids, log_probs, lengths in batches:
            for utt, nbest in zip(ids, dec(log_probs, lengths, tr.frame_shift_s), strict=True):
                hyps[utt] = Transcript(utt, nbest[0].text)
        res = score(refs, hyps, tr.tokenizer.normalizer)
        rows.append(
            {
                "lm_weight": lm_weight,
                "word_score": word_score,
                "wer": 100 * res.words.rate,
                "cer": 100 * res.chars.rate,
            }
        )
    best = min(rows, key=lambda r: (r["wer"], r["cer"]))
    print("| lm_weight | word_score | WER % | CER % |\n|---|---|---|---|")
    for r in rows:
        mark = " **best**" if r is best else ""
        print(
            f"| {r['lm_weight']:g} | {r['word_score']:g} | {r['wer']:.2f} | {r['cer']:.2f}{mark} |"
        )
    print(
        f"best: lm_weight {best['lm_weight']:g}, word_score {best['word_score']:g} "
        f"({len(rows)} points, {time.perf_counter() - start:.0f} s)"
    )
    if args.out:
        result = {
            "best": best,
            "options": {"lm_weight": best["lm_weight"], "word_score": best["word_score"]},
            "manifest": args.manifest,
            "inputs": inputs,
            "grid": rows,
        }
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
