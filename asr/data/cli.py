"""``asr-data``: manifest checks, Kaldi import/export, CMVN and tokenizer preparation.

Subcommands: ``validate``, ``info``, ``from-kaldi``, ``to-kaldi``, ``cmvn``, ``tokenizer``,
``augment``, ``wsj`` (WSJ from the LDC discs, :mod:`asr.data.wsj`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import yaml

from asr.data.manifest import read_manifest, validate_manifest, write_manifest
from asr.features import FbankConfig


def _validate(args: argparse.Namespace) -> int:
    bad = 0
    for m in args.manifests:
        errors = validate_manifest(m, check_audio=not args.no_audio_check)
        for e in errors:
            print(e)
        bad += len(errors)
        print(f"{m}: {'OK' if not errors else f'{len(errors)} error(s)'}", file=sys.stderr)
    return 1 if bad else 0


def _info(args: argparse.Namespace) -> int:
    print("| manifest | utterances | hours | speakers | mean s | max s |")
    print("|---|---|---|---|---|---|")
    for m in args.manifests:
        utts = read_manifest(m)
        durs = [u.duration for u in utts]
        spk = {u.speaker for u in utts if u.speaker is not None}
        mean = sum(durs) / len(durs) if durs else 0.0
        print(
            f"| {m} | {len(utts)} | {sum(durs) / 3600:.3f} | {len(spk) if spk else '-'} "
            f"| {mean:.2f} | {max(durs, default=0.0):.2f} |"
        )
    return 0


def _from_kaldi(args: argparse.Namespace) -> int:
    from asr.data.kaldi import import_kaldi_dir

    n = write_manifest(args.out, import_kaldi_dir(args.dir))
    print(f"wrote {n} utterances to {args.out}", file=sys.stderr)
    return 0


def _to_kaldi(args: argparse.Namespace) -> int:
    from asr.data.kaldi import export_kaldi_dir

    utts = read_manifest(args.manifest)
    export_kaldi_dir(utts, args.dir)
    print(f"wrote {len(utts)} utterances to {args.dir}", file=sys.stderr)
    return 0


def _fbank_config(args: argparse.Namespace) -> FbankConfig:
    """``--fbank-config`` (a YAML mapping of FbankConfig fields) with any field flags on top."""
    values: dict = {}
    if args.fbank_config:
        values = yaml.safe_load(Path(args.fbank_config).read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{args.fbank_config}: expected a mapping of FbankConfig fields")
    for f in fields(FbankConfig):
        if getattr(args, f.name) is not None:
            values[f.name] = getattr(args, f.name)
    return FbankConfig.from_dict(values)


def _cmvn(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from asr.features import FeatureCache, compute_cmvn

    cfg = _fbank_config(args)
    utts = read_manifest(args.manifest)
    cache = FeatureCache(args.cache_dir, cfg) if args.cache_dir else None
    with tqdm(total=len(utts), unit="utt", desc="cmvn") as bar:
        cmvn = compute_cmvn(
            utts, cfg, num_workers=args.num_workers, progress=bar.update, cache=cache
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cmvn.save(args.out)
    print(f"wrote CMVN ({cmvn.mean.numel()} dims) to {args.out}", file=sys.stderr)
    return 0


def _tokenizer(args: argparse.Namespace) -> int:
    from asr.data.tokenizer import train_tokenizer

    texts = [u.text for m in args.manifest for u in read_manifest(m)]
    opts = {}
    if args.kind == "phoneme":
        opts = {"keep_stress": args.keep_stress, "oov": args.oov}
    tok = train_tokenizer(args.kind, texts, args.vocab_size, **opts)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tok.save(args.out)
    print(f"wrote {args.kind} tokenizer ({tok.vocab_size} tokens) to {args.out}", file=sys.stderr)
    return 0


def _augment(args: argparse.Namespace) -> int:
    import yaml

    from asr.data.augment import AugmentConfig, augment_manifest

    cfg = AugmentConfig.from_any(yaml.safe_load(Path(args.config).read_text()) or {})
    assert cfg is not None
    out = augment_manifest(
        args.manifest, args.out, cfg, seed=(args.seed,), jobs=args.jobs, audio_dir=args.audio_dir
    )
    print(f"wrote {out} (audio: {cfg})", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asr-data", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("validate", help="list every bad row of manifests (exit 1 if any)")
    s.add_argument("manifests", nargs="+")
    s.add_argument("--no-audio-check", action="store_true", help="skip file existence checks")
    s.set_defaults(func=_validate)

    s = sub.add_parser("info", help="utterances, hours and speakers of manifests")
    s.add_argument("manifests", nargs="+")
    s.set_defaults(func=_info)

    s = sub.add_parser("from-kaldi", help="Kaldi data dir -> JSONL manifest")
    s.add_argument("dir")
    s.add_argument("out")
    s.set_defaults(func=_from_kaldi)

    s = sub.add_parser("to-kaldi", help="JSONL manifest -> Kaldi data dir")
    s.add_argument("manifest")
    s.add_argument("dir")
    s.set_defaults(func=_to_kaldi)

    s = sub.add_parser("cmvn", help="global CMVN statistics of a training manifest")
    s.add_argument("--manifest", required=True)
    s.add_argument("--out", required=True)
    s.add_argument(
        "--fbank-config",
        help="YAML mapping of asr.features.FbankConfig fields, e.g. a recipe's "
        "train.data.init_args.fbank section (the features training will use)",
    )
    for f in fields(FbankConfig):  # one flag per field, overriding --fbank-config
        kind = type(f.default)
        flag = "--" + f.name.replace("_", "-")
        if kind is bool:
            s.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            s.add_argument(flag, type=kind, default=None, help=f"default {f.default}")
    s.add_argument("--num-workers", type=int, default=2)
    s.add_argument(
        "--cache-dir",
        help="also keep the features here (training's --data.feature_cache_dir), so that "
        "its first epoch reads them instead of computing them again",
    )
    s.set_defaults(func=_cmvn)

    s = sub.add_parser("tokenizer", help="train a tokenizer on manifest transcripts")
    s.add_argument("--kind", required=True, choices=["char", "phoneme", "bpe", "unigram"])
    s.add_argument("--manifest", required=True, action="append", help="repeat for several")
    s.add_argument("--vocab-size", type=int, default=None, help="bpe/unigram, counts the blank")
    s.add_argument("--keep-stress", action="store_true", help="phoneme: keep stress digits")
    s.add_argument("--oov", default="spell", choices=["spell", "skip", "error"])
    s.add_argument("--out", required=True)
    s.set_defaults(func=_tokenizer)

    s = sub.add_parser(
        "augment", help="augmented copy of a manifest's audio (reverb, noise, telephone, gain)"
    )
    s.add_argument("--manifest", required=True)
    s.add_argument("--config", required=True, help="YAML mapping of asr.data.augment.AugmentConfig")
    s.add_argument("--out", required=True, help="the new manifest")
    s.add_argument("--audio-dir", help="where the audio goes (default: audio/<out name> beside it)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--jobs", type=int, default=2, help="worker processes (output does not change)")
    s.set_defaults(func=_augment)

    from asr.data.wsj import add_wsj_parser

    add_wsj_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, OSError) as e:  # our errors name the file/row: show them, no traceback
        print(f"asr-data {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
