"""Score hypotheses against references: ``asr-score REF HYP`` (WER/CER reports).

Last step of the data flow. Both sides are normalised with the training normaliser
(:class:`asr.text.TextNormalizer`) so WER measures the model, not the text conventions; error
counts come from jiwer (``process_words`` / ``process_characters``). The report gives the
summary (the line printed on stdout), per-speaker figures, the most frequent confusions and
per-utterance alignments in sclite ``pra`` style (REF/HYP columns, errors uppercase, ``***``
for gaps) with icefall's ``(ref->hyp)`` line beside; ``summary.json`` holds the same figures.
``--compare HYP_B`` adds how far a second system's WER is from the first one's, with a paired
bootstrap interval over utterances (:func:`paired_bootstrap`), so an ablation can tell a change
from sampling noise.

Inputs: ``id text`` lines, JSONL with ``id``/``text`` (optional ``speaker``), sclite trn
(``text (spk-utt)``) or CTM (``.ctm``), all read by :func:`asr.transcripts.read_transcripts`.
References missing from the hypotheses count as deletions (sclite's convention;
``--ignore-missing`` scores matched ids only); extra hypotheses are listed only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jiwer
import numpy as np

from asr.text import DEFAULT_NOISE_TOKENS, TextNormalizer
from asr.transcripts import Transcript, read_transcripts

GAP = "***"
#: confusions listed per kind in the report.
TOP_CONFUSIONS = 20
#: utterance draws the paired bootstrap holds at a time (its memory stays bounded on large sets)
BOOTSTRAP_CELLS = 2**22


@dataclass
class ErrorCounts:
    """Word or character error counts; ``rate`` = (S + D + I) / N."""

    n: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @classmethod
    def from_ops(cls, n: int, ops: list) -> ErrorCounts:
        """Counts from an alignment's ``(op, ...)`` tuples, op in S/D/I (C = correct)."""
        return cls(n, *(sum(o[0] == kind for o in ops) for kind in "SDI"))

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        return self.errors / self.n if self.n else float(self.errors > 0)

    def add(self, other: ErrorCounts) -> None:
        self.n += other.n
        self.substitutions += other.substitutions
        self.deletions += other.deletions
        self.insertions += other.insertions

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "errors": self.errors, "rate": self.rate}


@dataclass
class UttAlignment:
    id: str
    speaker: str | None
    ref: list[str]
    hyp: list[str]
    ops: list[tuple[str, str | None, str | None]]  # (kind, ref word, hyp word)
    counts: ErrorCounts


@dataclass
class ScoreResult:
    words: ErrorCounts
    chars: ErrorCounts
    utterances: list[UttAlignment]
    missing: list[str]
    extra: list[str]
    speakers: dict[str, dict[str, ErrorCounts]] = field(default_factory=dict)
    substitutions: Counter[tuple[str, str]] = field(default_factory=Counter)
    deletions: Counter[str] = field(default_factory=Counter)
    insertions: Counter[str] = field(default_factory=Counter)

    @property
    def sentence_errors(self) -> int:
        return sum(1 for u in self.utterances if u.counts.errors)

    def summary_line(self) -> str:
        w, c = self.words, self.chars
        return (
            f"%WER {100 * w.rate:.2f} [ {w.errors} / {w.n}, {w.insertions} ins, "
            f"{w.deletions} del, {w.substitutions} sub ] %CER {100 * c.rate:.2f} "
            f"[ {c.errors} / {c.n} ] utts {len(self.utterances)} "
            f"(missing {len(self.missing)}, extra {len(self.extra)})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "wer": self.words.rate,
            "cer": self.chars.rate,
            "words": self.words.to_dict(),
            "chars": self.chars.to_dict(),
            "utterances": len(self.utterances),
            "sentence_errors": self.sentence_errors,
            "missing": self.missing,
            "extra": self.extra,
            "speakers": {
                s: {"wer": d["words"].rate, "cer": d["chars"].rate, "words": d["words"].to_dict()}
                for s, d in sorted(self.speakers.items())
            },
            "top_substitutions": [
                [r, h, n] for (r, h), n in self.substitutions.most_common(TOP_CONFUSIONS)
            ],
            "top_deletions": self.deletions.most_common(TOP_CONFUSIONS),
            "top_insertions": self.insertions.most_common(TOP_CONFUSIONS),
        }


def _ops(chunks: Any, ref: list[str], hyp: list[str]) -> list[tuple[str, str | None, str | None]]:
    ops: list[tuple[str, str | None, str | None]] = []
    for ch in chunks:
        r = ref[ch.ref_start_idx : ch.ref_end_idx]
        h = hyp[ch.hyp_start_idx : ch.hyp_end_idx]
        if ch.type == "equal":
            ops += [("C", a, b) for a, b in zip(r, h, strict=True)]
        elif ch.type == "substitute":
            ops += [("S", a, b) for a, b in zip(r, h, strict=True)]
        elif ch.type == "delete":
            ops += [("D", a, None) for a in r]
        else:
            ops += [("I", None, b) for b in h]
    return ops


def score(
    refs: dict[str, Transcript],
    hyps: dict[str, Transcript],
    normalizer: TextNormalizer | None = None,
    ignore_missing: bool = False,
) -> ScoreResult:
    """Align every reference with its hypothesis (by id) and count errors."""
    norm = normalizer or TextNormalizer()
    missing = [i for i in refs if i not in hyps]
    extra = [i for i in hyps if i not in refs]
    ids = [i for i in refs if i in hyps or not ignore_missing]
    ref_texts = [norm(refs[i].text) for i in ids]
    hyp_texts = [norm(hyps[i].text) if i in hyps else "" for i in ids]
    result = ScoreResult(ErrorCounts(), ErrorCounts(), [], missing, extra)
    if not ids:
        return result
    wout = jiwer.process_words(ref_texts, hyp_texts)
    cout = jiwer.process_characters(ref_texts, hyp_texts)
    for k, uid in enumerate(ids):
        ref, hyp = wout.references[k], wout.hypotheses[k]
        ops = _ops(wout.alignments[k], ref, hyp)
        wc = ErrorCounts.from_ops(len(ref), ops)
        cref, chyp = cout.references[k], cout.hypotheses[k]
        cops = _ops(cout.alignments[k], cref, chyp)
        cc = ErrorCounts.from_ops(len(cref), cops)
        spk = refs[uid].speaker or (hyps[uid].speaker if uid in hyps else None)
        result.utterances.append(UttAlignment(uid, spk, ref, hyp, ops, wc))
        result.words.add(wc)
        result.chars.add(cc)
        if spk is not None:
            d = result.speakers.setdefault(spk, {"words": ErrorCounts(), "chars": ErrorCounts()})
            d["words"].add(wc)
            d["chars"].add(cc)
        for kind, r, h in ops:
            if kind == "S":
                result.substitutions[(r, h)] += 1
            elif kind == "D":
                result.deletions[r] += 1
            elif kind == "I":
                result.insertions[h] += 1
    return result


def format_alignment(u: UttAlignment) -> str:
    """sclite-pra-style REF/HYP columns plus icefall's ``(ref->hyp)`` line."""
    ref_cells, hyp_cells, inline = [], [], []
    for kind, r, h in u.ops:
        if kind == "C":
            ref_cells.append(r)
            hyp_cells.append(h)
            inline.append(r)
        else:
            rc = GAP if r is None else r.upper()
            hc = GAP if h is None else h.upper()
            ref_cells.append(rc)
            hyp_cells.append(hc)
            inline.append(f"({r or '*'}->{h or '*'})")
    widths = [max(len(a), len(b)) for a, b in zip(ref_cells, hyp_cells, strict=True)]
    c = u.counts
    head = f"id: ({u.id})" + (f"  speaker: {u.speaker}" if u.speaker else "")
    return (
        f"{head}\nScores: (#C #S #D #I) {c.n - c.substitutions - c.deletions} "
        f"{c.substitutions} {c.deletions} {c.insertions}\n"
        f"REF:  {' '.join(a.ljust(w) for a, w in zip(ref_cells, widths, strict=True))}\n"
        f"HYP:  {' '.join(b.ljust(w) for b, w in zip(hyp_cells, widths, strict=True))}\n"
        f"ERR:  {' '.join(inline)}\n"
    )


def format_report(res: ScoreResult, ref_path: str, hyp_path: str, norm: TextNormalizer) -> str:
    """Human-readable report: summary, speakers, confusions, missing/extra ids."""
    lines = [
        f"REF: {ref_path}",
        f"HYP: {hyp_path}",
        f"normaliser: {norm}",
        "",
        res.summary_line(),
        f"sentence errors: {res.sentence_errors} / {len(res.utterances)}",
        "",
    ]
    if res.speakers:
        lines.append("Per speaker:  speaker  #words  %WER  %CER  sub  del  ins")
        for spk, d in sorted(res.speakers.items()):
            w, c = d["words"], d["chars"]
            lines.append(
                f"  {spk}  {w.n}  {100 * w.rate:.2f}  {100 * c.rate:.2f}  "
                f"{w.substitutions}  {w.deletions}  {w.insertions}"
            )
        lines.append("")
    lines.append("Most frequent substitutions (ref -> hyp: count):")
    lines += [f"  {r} -> {h}: {n}" for (r, h), n in res.substitutions.most_common(TOP_CONFUSIONS)]
    lines.append("Most frequent deletions (ref: count):")
    lines += [f"  {r}: {n}" for r, n in res.deletions.most_common(TOP_CONFUSIONS)]
    lines.append("Most frequent insertions (hyp: count):")
    lines += [f"  {h}: {n}" for h, n in res.insertions.most_common(TOP_CONFUSIONS)]
    if res.missing:
        lines += ["", f"Missing from HYP ({len(res.missing)}): {' '.join(res.missing)}"]
    if res.extra:
        lines += ["", f"Extra in HYP, not scored ({len(res.extra)}): {' '.join(res.extra)}"]
    return "\n".join(lines) + "\n"


@dataclass
class WerDifference:
    """WER of system B minus that of system A on the same utterances, in points, with the
    ``level`` interval of the paired bootstrap."""

    difference: float
    low: float
    high: float
    level: float
    b_better: float  # share of resamples in which B's WER is lower
    utterances: int
    resamples: int

    def summary_line(self) -> str:
        return (
            f"B - A: %WER {self.difference:+.2f} [{100 * self.level:.0f}% interval "
            f"{self.low:+.2f}, {self.high:+.2f}] (paired bootstrap: {self.utterances} utts, "
            f"{self.resamples} resamples; B lower in {100 * self.b_better:.1f}%)"
        )


def paired_bootstrap(
    a: ScoreResult, b: ScoreResult, resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> WerDifference:
    """Bisani and Ney's paired bootstrap (ICASSP 2004): draw the utterances with replacement,
    ``resamples`` times, and take B's WER minus A's over each draw. Utterances that only one
    side scored are left out; the errors of one utterance are not independent, its words are
    not resampled apart."""
    errors_b = {u.id: u.counts.errors for u in b.utterances}
    common = [u for u in a.utterances if u.id in errors_b]
    if not common:
        raise ValueError("the two systems have no scored utterance in common")
    n = np.array([u.counts.n for u in common])
    ea = np.array([u.counts.errors for u in common])
    eb = np.array([errors_b[u.id] for u in common])
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    block = max(1, BOOTSTRAP_CELLS // len(common))
    for start in range(0, resamples, block):
        picks = rng.integers(0, len(common), (min(block, resamples - start), len(common)))
        words = np.maximum(n[picks].sum(axis=1), 1)
        diffs[start : start + len(picks)] = 100 * (eb - ea)[picks].sum(axis=1) / words
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return WerDifference(
        difference=100 * (eb.sum() - ea.sum()) / max(n.sum(), 1),
        low=float(low),
        high=float(high),
        level=level,
        b_better=float(np.mean(diffs < 0)),
        utterances=len(common),
        resamples=resamples,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asr-score", description="WER/CER of HYP against REF.")
    p.add_argument("ref", help="references: 'id text', JSONL or trn")
    p.add_argument("hyp", help="hypotheses: 'id text', JSONL, trn or CTM (.ctm)")
    p.add_argument("--out-dir", help="write report.txt, summary.json, alignments.txt here")
    p.add_argument("--no-lowercase", action="store_true", help="keep case")
    p.add_argument("--keep-punctuation", action="store_true")
    p.add_argument(
        "--noise-tokens",
        nargs="*",
        default=list(DEFAULT_NOISE_TOKENS),
        help="tokens removed before scoring (default: %(default)s)",
    )
    p.add_argument("--ignore-missing", action="store_true", help="score matched ids only")
    p.add_argument(
        "--compare",
        metavar="HYP_B",
        help="a second system's hypotheses: its WER minus HYP's, with a paired bootstrap interval",
    )
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (--compare)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asr-score``; prints the summary line on stdout."""
    args = build_parser().parse_args(argv)
    norm = TextNormalizer(
        lowercase=not args.no_lowercase,
        remove_punctuation=not args.keep_punctuation,
        noise_tokens=tuple(args.noise_tokens),
    )
    try:
        refs = read_transcripts(args.ref)
        hyps = read_transcripts(args.hyp)
        hyps_b = read_transcripts(args.compare) if args.compare else None
    except (FileNotFoundError, ValueError) as e:
        print(f"asr-score: error: {e}", file=sys.stderr)
        return 2
    if args.resamples < 1:
        print("asr-score: error: --resamples must be at least 1", file=sys.stderr)
        return 2
    res = score(refs, hyps, norm, ignore_missing=args.ignore_missing)
    compared = None
    if hyps_b is not None:
        res_b = score(refs, hyps_b, norm, ignore_missing=args.ignore_missing)
        try:
            compared = (res_b, paired_bootstrap(res, res_b, args.resamples))
        except ValueError as e:
            print(f"asr-score: error: {e}", file=sys.stderr)
            return 2
    if res.missing:
        print(f"asr-score: {len(res.missing)} reference ids have no hypothesis", file=sys.stderr)
    if res.extra:
        print(f"asr-score: {len(res.extra)} hypothesis ids are not in REF", file=sys.stderr)
    if args.out_dir:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.txt").write_text(format_report(res, args.ref, args.hyp, norm), "utf-8")
        summary = {**res.to_json(), "ref": args.ref, "hyp": args.hyp, "normalizer": asdict(norm)}
        if compared is not None:
            res_b, difference = compared
            summary["compare"] = {
                "hyp": args.compare,
                "wer": res_b.words.rate,
                **asdict(difference),
            }
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
        (out / "alignments.txt").write_text(
            "\n".join(format_alignment(u) for u in res.utterances), "utf-8"
        )
    print(res.summary_line())
    if compared is not None:
        print(f"B: {compared[0].summary_line()}")
        print(compared[1].summary_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
