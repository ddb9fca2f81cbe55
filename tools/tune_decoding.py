"""Pick the beam search's LM weight and word score on a dev set (a grid, the usual way).

The acoustic model runs once; every grid point only re-runs the beam search over the cached
log-probabilities, so a 5 x 5 grid on 100 utterances takes about a minute on 2 cores.
Prints a WER/CER table and the best pair (lowest WER, then CER); ``--out`` also writes it as
JSON for a recipe to read.

    python tools/tune_decoding.py exp/demo/model.safetensors data/demo/corpus/dev.jsonl \\
        --lexicon data/demo/lm/lexicon.txt --lm data/demo/lm/lm.arpa \\
        --lm-weights 0.5 1 1.5 2 3 --word-scores -1 0 1 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from asr.decode import BeamSearchConfig, BeamSearchDecoder
from asr.inference import DecodeOptions, Transcriber, collect_inputs
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("manifest", help="dev JSONL manifest (its text is the reference)")
    p.add_argument("--lexicon", required=True)
    p.add_argument("--lm", required=True)
    p.add_argument("--lm-weights", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0, 3.0])
    p.add_argument("--word-scores", type=float, nargs="+", default=[-1.0, 0.0, 1.0, 2.0])
    p.add_argument("--beam-size", type=int, default=BeamSearchConfig.beam_size)
    p.add_argument("--batch-seconds", type=float, default=DecodeOptions.batch_seconds)
    p.add_argument("--out", help="write the table and the best pair here as JSON")
    args = p.parse_args(argv)

    start = time.perf_counter()
    tr, batches = dev_log_probs(args.model, args.manifest, args.batch_seconds)
    refs = read_transcripts(args.manifest)
    rows = []
    grid = list(itertools.product(args.lm_weights, args.word_scores))
    for lm_weight, word_score in tqdm(grid, desc="grid", file=sys.stderr):
        config = BeamSearchConfig(
            lm_weight=lm_weight, word_score=word_score, beam_size=args.beam_size
        )
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
        Path(args.out).write_text(json.dumps({"grid": rows, "best": best}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
