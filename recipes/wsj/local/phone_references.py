"""Reference phone sequences of a manifest, for the phoneme error rate (the paper's metric).

Each transcript becomes the phones the phoneme tokenizer trains on (CMUdict, stress removed,
noise tokens dropped); ``asr-score`` then compares them with the phones greedy decoding
outputs, so PER counts phone substitutions, deletions and insertions (word boundaries are not
tokens of their own).

    python local/phone_references.py --tokenizer T.json --manifest dev.jsonl --out dev.phones.jsonl
"""

from __future__ import annotations

import argparse
import json

from asr.data.manifest import read_manifest
from asr.data.tokenizer import load_tokenizer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    tok = load_tokenizer(args.tokenizer)
    if tok.kind != "phoneme":
        raise SystemExit(f"{args.tokenizer}: a {tok.kind} tokenizer has no phones")
    with open(args.out, "w", encoding="utf-8") as f:
        for u in read_manifest(args.manifest):
            phones = " ".join(t for t in tok.decode(tok.encode(u.text)).split() if t != "|")
            f.write(json.dumps({"id": u.id, "text": phones, "speaker": u.speaker}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
