"""A WSJ-shaped miniature corpus: the LDC discs' layout and formats with espeak-ng speech.

Nobody can ship WSJ, so the recipe (``recipes/wsj``) and its tests run on this instead. It has
what the data preparation must cope with on the real discs:

- the LDC folder and file names: disc folders (``11-1.1`` ..., or ``11_1_1``, or all discs
  merged with ``--layout merged``), ``wsj0/si_tr_s/011/011c0201.wv1``, the index files at their
  real paths (``11-13.1/wsj0/doc/indices/train/tr_s_wv1.ndx``, ``.../test/nvp/si_et_20.ndx``,
  ``13-34.1/wsj1/doc/indices/si_tr_s.ndx``, ``.../h1_p0.ndx``) with ``;`` comments, disc prefixes
  and, for eval92, no ``.wv1`` extension; an entry for the missing speaker 401 Kaldi drops;
- one ``.dot`` transcript file per speaker session, with noise markers (``[loud_breath]``,
  ``[<door_slam]``, ``[phone_ring/]`` ... ``[/phone_ring]``), verbalised punctuation
  (``,COMMA``) in WSJ0 training sessions, verbal deletions (``<and>``), mispronunciations
  (``*word*``), fragments (``th-``), ``~`` and ``.`` marks, backslash escapes, mixed case;
- audio as NIST SPHERE with embedded shorten (``pcm,embedded-shorten-v2.00``, big- and
  little-endian), spoken by espeak-ng in a different voice per speaker, 16 kHz;
- the 20k open-vocabulary trigram where WSJ1 keeps it
  (``13-32.1/wsj1/doc/lng_modl/base_lm/tcb20onp.z``): a Unix ``compress`` file whose ARPA text
  follows a free-text preamble, upper case, ``<UNK>``;
- with ``--with-problems``: a truncated ``.wv1``, a corrupt shorten stream, a transcribed
  utterance whose audio is gone, an index entry with neither, an utterance with no transcript,
  a null recording (``~~``), a bad index line.

The speech says the transcript as normalised (keep mode: "comma" is spoken where ``,COMMA``
is written, as WSJ0's readers did), so a model can learn from it. The language model is
estimated (:func:`asr.lm.build_kn_lm`) on sentences from the same grammar, never the dev/test
ones, and like the LDC's ``tcb20onp`` ("nvp": non-verbalised punctuation) its text holds no
verbalised punctuation: the training transcripts enter it as ``drop`` normalises them.

    python tools/wsj_mini_corpus.py --out-dir data/mini [--train-per-speaker 8] [--layout ldc]
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from asr.data.wsj import normalize_transcript
from asr.sphere import write_sphere

SAMPLE_RATE = 16000
MARKER = "MINIATURE_CORPUS"
VOICES = ("en-us", "en-gb", "en-us-nyc", "en-029", "en-gb-scotland", "en-gb-x-rp")

# a small financial-news grammar: every word is in CMUdict
COMPANIES = (
    "general motors|international paper|texas instruments|american express|eastern airlines|"
    "digital equipment|pacific telesis|united technologies|chemical bank|federal express"
).split("|")
METRICS = "profit|revenue|earnings|sales|income|volume".split("|")
PERIODS = "third quarter|second quarter|fiscal year|first half|fourth quarter".split("|")
NUMBERS = "two|three|five|seven|nine|eleven|twelve|fifteen|twenty|thirty".split("|")
MOVES_UP = "rose|climbed|jumped|increased|gained".split("|")
MOVES_DOWN = "fell|dropped|slipped|declined|tumbled".split("|")
SECTORS = "banking|airline|computer|chemical|insurance|steel|housing".split("|")
PEOPLE = "analysts|traders|economists|investors|officials|executives".split("|")
TEMPLATES = (
    "{company} said its {period} {metric} {up} {number} percent",
    "shares of {company} {down} {number} cents in heavy trading",
    "{people} expect the {sector} industry to recover next year",
    "the federal reserve {down} interest rates by a quarter point",
    "{company} will report {period} {metric} after the market closes",
    "{people} said the {sector} market {up} sharply last week",
    "the dollar {down} against the yen while bond prices {up}",
    "{company} agreed to buy a {sector} company for {number} million dollars",
    "{people} said {company} could {verb} its {metric} forecast",
    "the {sector} index {up} {number} points to a record high",
)
VERBS = "raise|cut|keep|revise|lower".split("|")


def sentence(rng: random.Random) -> str:
    """One lower-case sentence of the grammar."""
    return rng.choice(TEMPLATES).format(
        company=rng.choice(COMPANIES),
        period=rng.choice(PERIODS),
        metric=rng.choice(METRICS),
        up=rng.choice(MOVES_UP),
        down=rng.choice(MOVES_DOWN),
        number=rng.choice(NUMBERS),
        sector=rng.choice(SECTORS),
        people=rng.choice(PEOPLE),
        verb=rng.choice(VERBS),
    )


def dot_text(words: list[str], rng: random.Random, verbal_punctuation: bool, test: bool) -> str:
    """A ``.dot`` transcript of ``words`` with WSJ's notations sprinkled in (mixed case)."""
    out: list[str] = []
    if rng.random() < 0.4:
        out.append(rng.choice(["[loud_breath]", "[lip_smack]", "[tongue_click]"]))
    for i, w in enumerate(words):
        if w == "percent" and test:
            w = "%PERCENT"  # how the Nov'92/93 test transcripts write it
        r = rng.random()
        if r < 0.04:
            out.append(f"[<{rng.choice(['door_slam', 'paper_rustle'])}]")
        elif r < 0.08:
            out.append(f"[{rng.choice(['door_slam', 'chair_squeak'])}>]")
        if rng.random() < 0.05 and not w.startswith("%"):
            out.append(w[:2] + "-")  # a fragment: the reader broke off and restarted
        if w == "the" and rng.random() < 0.2:
            w = "<the>"
        elif rng.random() < 0.05 and w.isalpha():
            w = f"*{w}*"
        if i == 0:
            w = w.capitalize()
        out.append(w.replace("'", "\\'"))
        if verbal_punctuation and i == len(words) // 2:
            out.append(",COMMA")
        if rng.random() < 0.03:
            out.append(".")
    if rng.random() < 0.3:
        i = rng.randrange(len(out) + 1)
        out[i:i] = ["[phone_ring/]"]
        out.append("[/phone_ring]")
    if verbal_punctuation:
        out.append(".PERIOD")
    if rng.random() < 0.1:
        out.append("~")
    return " ".join(out)


@lru_cache(maxsize=4)
def _resampler(rate: int):  # building the sinc kernel costs more than applying it
    import torchaudio

    return torchaudio.transforms.Resample(rate, SAMPLE_RATE)


def speak(text: str, voice: str, speed: int) -> np.ndarray:
    """espeak-ng's reading of ``text`` as int16 at 16 kHz."""
    import soundfile as sf
    import torch

    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-v", voice, "-s", str(speed), text],
        capture_output=True,
        check=True,
    ).stdout
    x, sr = sf.read(io.BytesIO(wav), dtype="float32")
    with torch.no_grad():
        y = _resampler(sr)(torch.from_numpy(x)).numpy()
    return np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class Group:
    """Speakers of one split: where their audio and transcripts go and which index lists them."""

    corpus: str
    audio_disc: str  # normalised id, e.g. "11_1_1"
    folder: str  # e.g. "si_tr_s"
    speakers: tuple[str, ...]
    session: str  # the 4th-6th characters of the ids: "c02", "c03"
    dot_disc: str
    dot_folder: str  # path of the .dot files' folder on dot_disc, before <speaker>/
    index: str  # index path on its disc (see INDEX_DISC)
    byte_format: str
    verbal_punctuation: bool
    test: bool


INDEX_DISC = {"wsj0": "11_13_1", "wsj1": "13_34_1"}
LM_DISC, LM_PATH = "13_32_1", "wsj1/doc/lng_modl/base_lm/tcb20onp.z"
GROUPS = (
    Group("wsj0", "11_1_1", "si_tr_s", ("011", "01a"), "c02", "11_1_1", "wsj0/transcrp/dots/si_tr_s",
          "wsj0/doc/indices/train/tr_s_wv1.ndx", "10", True, False),
    Group("wsj1", "13_2_1", "si_tr_s", ("46u", "46v"), "c03", "13_34_1", "wsj1/trans/wsj1/si_tr_s",
          "wsj1/doc/indices/si_tr_s.ndx", "01", False, False),
    Group("wsj1", "13_16_1", "si_dt_20", ("4k0", "4k1"), "c03", "13_34_1", "wsj1/trans/wsj1/si_dt_20",
          "wsj1/doc/indices/h1_p0.ndx", "01", False, True),
    Group("wsj0", "11_14_1", "si_et_20", ("440", "441"), "c02", "11_14_1", "wsj0/transcrp/dots/si_et_20",
          "wsj0/doc/indices/test/nvp/si_et_20.ndx", "10", False, True),
)  # fmt: skip


def disc_dir(root: Path, disc: str, layout: str) -> Path:
    """Where a disc's contents go: ``11-1.1``, ``11_1_1`` or (merged) the corpus root itself."""
    a, b, c = disc.split("_")
    if layout == "merged":
        return root
    return root / (f"{a}-{b}.{c}" if layout == "ldc" else disc)


def utt_id(speaker: str, session: str, k: int) -> str:
    """``011c0201``: speaker, session, then two base-36 digits (as the LDC numbers them)."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return f"{speaker}{session}{digits[(k + 1) // 36]}{digits[(k + 1) % 36]}"


def make_mini_corpus(
    out: Path,
    train_per_speaker: int = 8,
    test_per_speaker: int = 4,
    lm_sentences: int = 3000,
    layout: str = "ldc",
    with_problems: bool = False,
    seed: int = 0,
) -> dict[str, Path]:
    """Write the corpus under ``out/wsj0`` and ``out/wsj1``; returns those two roots."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng not found: apt-get install espeak-ng")
    rng = random.Random(seed)
    roots = {"wsj0": out / "wsj0", "wsj1": out / "wsj1"}
    for root in roots.values():
        root.mkdir(parents=True, exist_ok=True)
        # recipes/wsj labels results on this corpus as a pipeline check, never as WSJ results
        (root / MARKER).write_text(f"made by tools/wsj_mini_corpus.py (seed {seed}); not WSJ\n")
    index_lines: dict[tuple[str, str], list[str]] = {}
    lm_train: list[str] = []  # training transcripts as the LM text has them
    held_out: set[str] = set()
    voice_of = {}
    for g in GROUPS:
        lines = index_lines.setdefault(
            (g.corpus, g.index), [";", f"; {Path(g.index).name}: miniature WSJ index", ";"]
        )
        for s, speaker in enumerate(g.speakers):
            voice_of[speaker] = (VOICES[len(voice_of) % len(VOICES)], 150 + 15 * (s % 3))
            dot_lines = []
            count = test_per_speaker if g.test else train_per_speaker
            for k in range(count):
                uid = utt_id(speaker, g.session, k)
                words = sentence(rng).split()
                vp = g.verbal_punctuation and s == 0  # half the WSJ0 sessions, as on the discs
                text = dot_text(words, rng, vp, g.test)
                spoken = _words(normalize_transcript(text, "keep"))
                if g.test:
                    held_out.add(" ".join(words))
                else:
                    lm_train.append(_words(normalize_transcript(text, "drop")).lower())
                voice, speed = voice_of[speaker]
                audio = speak(spoken.lower(), voice, speed + rng.randrange(-10, 11))
                wav_dir = (
                    disc_dir(roots[g.corpus], g.audio_disc, layout) / g.corpus / g.folder / speaker
                )
                wav_dir.mkdir(parents=True, exist_ok=True)
                fields = {"database_id": "CSR-WSJ", "utterance_id": uid, "speaker_id": speaker}
                write_sphere(
                    wav_dir / f"{uid}.wv1", audio, SAMPLE_RATE, "shorten", g.byte_format, fields
                )
                on_disc = f"{g.corpus}/{g.folder}/{speaker}/{uid}"
                lines.append(f"{g.audio_disc}:{on_disc}" + ("" if "si_et" in g.folder else ".wv1"))
                dot_lines.append(f"{text} ({uid if k % 2 else uid.upper()})")
            dot_dir = disc_dir(roots[g.corpus], g.dot_disc, layout) / g.dot_folder / speaker
            dot_dir.mkdir(parents=True, exist_ok=True)
            (dot_dir / f"{speaker}{g.session}00.dot").write_text("\n".join(dot_lines) + "\n")
    # Kaldi drops speaker 401 of WSJ0's training index: it is listed but not on the discs
    index_lines[("wsj0", GROUPS[0].index)].append("11_2_1:wsj0/si_tr_s/401/401c0201.wv1")
    for (corpus, path), lines in index_lines.items():
        f = disc_dir(roots[corpus], INDEX_DISC[corpus], layout) / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("\n".join(lines) + "\n")
    if with_problems:
        damage(roots, layout)
    lm_text = [sentence(rng) for _ in range(lm_sentences)]
    lm_text = [t for t in lm_text if t not in held_out] + lm_train
    _write_lm(disc_dir(roots["wsj1"], LM_DISC, layout) / LM_PATH, lm_text)
    return roots


def _words(normalised: str) -> str:
    """A normalised transcript without its noise tokens (``<NOISE>``, ``<SPOKEN_NOISE>``)."""
    return " ".join(w for w in normalised.split() if not w.startswith("<"))


def damage(roots: dict[str, Path], layout: str = "ldc") -> None:
    """Damage a corpus made here the ways real copies are damaged (the module docstring lists
    them); needs at least five utterances per WSJ1 training speaker."""
    g = GROUPS[1]  # WSJ1 training
    base = disc_dir(roots["wsj1"], g.audio_disc, layout) / "wsj1" / g.folder
    first, second = (utt_id(g.speakers[0], g.session, k) for k in (0, 1))
    truncated = base / g.speakers[0] / f"{first}.wv1"
    data = truncated.read_bytes()
    truncated.write_bytes(data[: 1024 + (len(data) - 1024) // 2])
    corrupt = base / g.speakers[0] / f"{second}.wv1"
    data = bytearray(corrupt.read_bytes())
    data[1024 + 4] = 99  # shorten version 99
    corrupt.write_bytes(bytes(data))
    index = disc_dir(roots["wsj1"], INDEX_DISC["wsj1"], layout) / g.index
    with open(index, "a") as f:
        f.write(f"{g.audio_disc}:wsj1/{g.folder}/{g.speakers[1]}/{g.speakers[1]}c0399.wv1\n")
        f.write("this line is not an index entry\n")
    # a transcribed, listed utterance whose audio is gone
    (base / g.speakers[1] / f"{utt_id(g.speakers[1], g.session, 4)}.wv1").unlink()
    # a listed utterance whose .dot has no line, and a null recording
    spk = g.speakers[1]
    lost, null = (utt_id(spk, g.session, k) for k in (2, 3))
    dot = (
        disc_dir(roots["wsj1"], g.dot_disc, layout) / g.dot_folder / spk / f"{spk}{g.session}00.dot"
    )
    kept = [ln for ln in dot.read_text().splitlines() if f"({lost})" not in ln.lower()]
    kept = [f"~~ ({null})" if f"({null})" in ln.lower() else ln for ln in kept]
    dot.write_text("\n".join(kept) + "\n")


def _write_lm(path: Path, lines: list[str]) -> None:
    """A trigram in the LDC's form: a free-text preamble, upper case, compressed (.z)."""
    import ncompress

    from asr.lm import NgramConfig, build_kn_lm

    lm = build_kn_lm(lines, NgramConfig(order=3))
    buf = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        lm.write_arpa(Path(tmp) / "lm.arpa")
        arpa = (Path(tmp) / "lm.arpa").read_text()
    buf.write("tcb20onp: miniature 20k open-vocabulary trigram, non-verbalized punctuation\n")
    buf.write("(free text before \\data\\, as in the LDC's files)\n\n")
    for line in arpa.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            parts[1] = " ".join(w if w in ("<s>", "</s>") else w.upper() for w in parts[1].split())
        buf.write("\t".join(parts) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ncompress.compress(buf.getvalue().encode("ascii")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--train-per-speaker", type=int, default=8)
    p.add_argument("--test-per-speaker", type=int, default=4)
    p.add_argument("--lm-sentences", type=int, default=3000)
    p.add_argument("--layout", choices=("ldc", "underscore", "merged"), default="ldc")
    p.add_argument("--with-problems", action="store_true", help="damage it as real copies are")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    roots = make_mini_corpus(
        args.out_dir,
        args.train_per_speaker,
        args.test_per_speaker,
        args.lm_sentences,
        args.layout,
        args.with_problems,
        args.seed,
    )
    print(f"miniature WSJ written: --wsj0 {roots['wsj0']} --wsj1 {roots['wsj1']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
