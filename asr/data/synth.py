"""Built-in synthetic speech corpus: espeak-ng reads real English sentences in several voices.

This is the first stage of the demo recipe and of the CI smoke test: it gives the toolkit a
corpus with no download. Sentences come from :mod:`asr.data.text_sources`; each utterance gets a
voice, speaking rate, pitch and optional additive noise, is resampled to 16 kHz and written as
FLAC under ``out_dir/audio/<split>/``, and listed in ``out_dir/<split>.jsonl`` manifests
(the :mod:`asr.data.manifest` format: ``id``, ``audio`` relative to the manifest folder,
``duration``, ``text``, ``speaker``).

Splits: ``train``; ``dev`` and ``test`` (training voices, sentences never in training);
``test_unseen`` (a voice held out of every other split, sentences never in training).

Everything random is drawn while planning, in one process, from RNGs seeded by
``(seed, split, utterance index)``; workers only execute the plan, so the corpus is identical
for any ``--jobs``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml
from numpy.lib.stride_tricks import sliding_window_view
from tqdm import tqdm

from asr.data.text_sources import FORTUNE_DIR, Sentence, SentenceFilter, fortune_sentences

SPLITS: tuple[str, ...] = ("train", "dev", "test", "test_unseen")
ESPEAK_INSTALL_HINT = "apt-get install espeak-ng"
ESPEAK_SAMPLE_RATE = 22050  # espeak-ng's only output rate
WAV_HEADER_BYTES = 44  # espeak-ng --stdout writes a plain 44-byte PCM header (streamed sizes)
NOISE_KINDS: tuple[str, ...] = ("white", "pink", "brown")
# 1/f^exponent power spectrum of each noise colour.
_NOISE_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}


@dataclass
class SynthConfig:
    """What corpus to synthesise.

    Sizes are numbers of utterances; a ``*_hours`` value, when set, replaces the count and
    plans utterances until their estimated duration reaches it.

    :param voices: espeak-ng voices (``language[+variant]``) for train, dev and test.
    :param unseen_voice: the voice of ``test_unseen`` only; must not be in ``voices``.
    :param rate_wpm: speaking-rate range (words per minute), sampled per utterance.
    :param pitch: espeak-ng pitch range (0-99), sampled per utterance.
    :param noise_snr_db: additive-noise SNR range in dB, or ``None`` for clean audio.
    :param noise_fraction: share of utterances that get noise (the rest stay clean).
    :param max_eval_sentence_fraction: dev+test+test_unseen may use at most this share of the
        sentences, so training keeps most of the text.
    :param text_dir: folder of fortune files (``apt-get install fortunes``).
    :param jobs: worker processes (does not change the output).
    """

    num_train: int = 2000
    num_dev: int = 200
    num_test: int = 200
    num_test_unseen: int = 200
    train_hours: float | None = None
    dev_hours: float | None = None
    test_hours: float | None = None
    test_unseen_hours: float | None = None
    seed: int = 0
    voices: tuple[str, ...] = (
        "en-us",
        "en-us+f3",
        "en-gb-x-rp+m3",
        "en+f2",
        "en-gb-scotland+m2",
        "en-029+f4",
        "en-us-nyc+m4",
        "en-gb-x-gbclan+f1",
        "en-gb-x-gbcwmd+m5",
    )
    unseen_voice: str = "en-gb-x-rp+f5"
    rate_wpm: tuple[int, int] = (140, 200)
    pitch: tuple[int, int] = (30, 70)
    noise_snr_db: tuple[float, float] | None = (15.0, 40.0)
    noise_fraction: float = 0.8
    sample_rate: int = 16000
    min_words: int = 3
    max_words: int = 20
    max_eval_sentence_fraction: float = 0.5
    text_dir: str = str(FORTUNE_DIR)
    espeak_bin: str = "espeak-ng"
    jobs: int = 2
    # Duration estimate, used only to turn *_hours into utterance counts:
    # est_letter_s * letters / rate_wpm + est_silence_s (least-squares fit on 586 espeak-ng
    # utterances of the default voices: total within 1%, single utterances within ~10%).
    est_letter_s: float = 11.1
    est_silence_s: float = 0.45

    def __post_init__(self) -> None:
        self.voices = tuple(self.voices)
        self.rate_wpm = tuple(self.rate_wpm)  # type: ignore[assignment]
        self.pitch = tuple(self.pitch)  # type: ignore[assignment]
        # YAML reads a bare `off` as False.
        if self.noise_snr_db is False or self.noise_snr_db in ("off", "none"):
            self.noise_snr_db = None
        if self.noise_snr_db is not None:
            self.noise_snr_db = tuple(self.noise_snr_db)  # type: ignore[assignment]
        self.validate()

    def validate(self) -> None:
        """Reject impossible settings early, naming the field and the fix."""
        if not self.voices:
            raise ValueError("SynthConfig.voices is empty; give at least one espeak-ng voice")
        if self.unseen_voice in self.voices:
            raise ValueError(
                f"SynthConfig.unseen_voice {self.unseen_voice!r} is also in voices; "
                "the test_unseen voice must never be heard in training"
            )
        for name in ("num_train", "num_dev", "num_test", "num_test_unseen", "seed", "jobs"):
            if getattr(self, name) < (1 if name == "jobs" else 0):
                raise ValueError(f"SynthConfig.{name} must be non-negative (jobs >= 1)")
        for name in ("rate_wpm", "pitch", "noise_snr_db"):
            rng = getattr(self, name)
            if rng is not None and (len(rng) != 2 or rng[0] > rng[1]):
                raise ValueError(f"SynthConfig.{name} must be a (min, max) pair, got {rng}")
        if not 0.0 <= self.noise_fraction <= 1.0:
            raise ValueError("SynthConfig.noise_fraction must be in [0, 1]")

    def fingerprint(self) -> dict:
        """Fields that change the output (``jobs`` does not)."""
        d = dataclasses.asdict(self)
        d.pop("jobs")
        return json.loads(json.dumps(d))  # tuples -> lists, as stored on disk

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> SynthConfig:
        """Read a YAML mapping of SynthConfig fields; ``overrides`` (not None) win."""
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of SynthConfig fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"{path}: unknown SynthConfig fields {unknown}; known: {sorted(known)}"
            )
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)


@dataclass(frozen=True)
class UttSpec:
    """Everything needed to render one utterance (planned up front, executed by a worker)."""

    id: str
    split: str
    index: int
    spoken: str
    text: str
    voice: str
    rate: int
    pitch: int
    snr_db: float | None
    noise_kind: str
    noise_seed: tuple[int, ...]


class EspeakError(RuntimeError):
    """espeak-ng is missing, a voice does not exist, or synthesis failed."""


# --------------------------------------------------------------------------------------------
# espeak-ng
# --------------------------------------------------------------------------------------------
def find_espeak(espeak_bin: str = "espeak-ng") -> str:
    """Path of the espeak-ng executable, or a clear error saying how to install it."""
    path = shutil.which(espeak_bin)
    if path is None:
        raise EspeakError(
            f"'{espeak_bin}' was not found on PATH; the synthetic corpus needs it: "
            f"run '{ESPEAK_INSTALL_HINT}' (as root) or 'make system-deps'"
        )
    return path


def _variants(espeak: str) -> set[str]:
    """Variant names espeak-ng knows (it silently ignores an unknown ``+variant``)."""
    out = subprocess.run(
        [espeak, "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    return {r[4].removeprefix("!v/") for r in rows if len(r) > 4}


def check_voices(voices: Sequence[str], espeak: str) -> None:
    """Fail early on a misspelt voice instead of silently getting espeak-ng's default."""
    variants = _variants(espeak)
    for voice in voices:
        lang, _, variant = voice.partition("+")
        # -q: synthesise nothing; espeak-ng exits non-zero for an unknown language.
        probe = subprocess.run([espeak, "-q", "-v", lang, "a"], capture_output=True, check=False)
        if probe.returncode != 0:
            raise EspeakError(
                f"espeak-ng has no voice {lang!r} (in {voice!r}); see 'espeak-ng --voices=en'"
            )
        if variant and variant not in variants:
            raise EspeakError(
                f"espeak-ng has no variant {variant!r} (in {voice!r}); "
                "see 'espeak-ng --voices=variant'"
            )


def espeak_waveform(text: str, voice: str, rate: int, pitch: int, espeak: str) -> np.ndarray:
    """Speak ``text``; float32 samples at 22.05 kHz."""
    proc = subprocess.run(
        [espeak, "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", text],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0 or len(proc.stdout) <= WAV_HEADER_BYTES:
        err = proc.stderr.decode(errors="replace").strip()
        raise EspeakError(f"espeak-ng failed for voice {voice!r} on {text!r}: {err or 'no audio'}")
    pcm = np.frombuffer(proc.stdout[WAV_HEADER_BYTES:], dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


# --------------------------------------------------------------------------------------------
# signal processing
# --------------------------------------------------------------------------------------------
def resample(x: np.ndarray, orig_sr: int, new_sr: int, half_width: int = 16) -> np.ndarray:
    """Band-limited (Kaiser-windowed sinc) resampling; numpy only, so workers stay light.

    The ratio is rational (22050 -> 16000 is 320/441), so output samples ``n0, n0 + up, ...``
    share one filter phase and read input windows ``down`` samples apart: one strided
    matrix-vector product per phase.
    """
    if orig_sr == new_sr:
        return x.astype(np.float32)
    g = math.gcd(orig_sr, new_sr)
    up, down = new_sr // g, orig_sr // g
    cutoff = 0.95 * min(1.0, new_sr / orig_sr)  # fraction of the input Nyquist
    n_out = int(math.ceil(len(x) * up / down))
    taps = np.arange(-half_width + 1, half_width + 1)  # input indices relative to floor(t)
    offsets = taps[None, :] - (np.arange(up)[:, None] / up)  # (phase, tap): k - t
    window = np.interp(
        offsets, np.arange(-half_width, half_width + 1), np.kaiser(2 * half_width + 1, 8.6)
    )
    table = (cutoff * np.sinc(cutoff * offsets) * window).astype(np.float32)
    padded = np.pad(x.astype(np.float32), (half_width, half_width + down))
    windows = sliding_window_view(padded, 2 * half_width)  # windows[i] = padded[i : i + 2hw]
    out = np.empty(n_out, np.float32)
    for n0 in range(min(up, n_out)):
        base, phase = divmod(n0 * down, up)
        rows = windows[base + 1 :: down][: len(range(n0, n_out, up))]
        out[n0::up] = rows @ table[phase]
    return out


def coloured_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power Gaussian noise with a 1/f^a power spectrum (white, pink or brown)."""
    exponent = _NOISE_EXPONENT[kind]
    if not exponent:
        white = rng.standard_normal(n)
    else:
        # Shape the spectrum at a power-of-two length (FFTs of prime lengths are slow), then trim.
        size = 1 << max(1, (n - 1).bit_length())
        spec = np.fft.rfft(rng.standard_normal(size))
        freqs = np.fft.rfftfreq(size)
        freqs[0] = freqs[1]
        white = np.fft.irfft(spec / freqs ** (exponent / 2), size)[:n]
    return (white / (np.sqrt(np.mean(white**2)) + 1e-12)).astype(np.float32)


def add_noise(speech: np.ndarray, snr_db: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Mix noise at ``snr_db`` relative to the speech power over non-silent samples."""
    active = speech[np.abs(speech) > 0.01 * (np.abs(speech).max() + 1e-12)]
    power = float(np.mean(active**2)) if active.size else 0.0
    noise = coloured_noise(len(speech), kind, rng) * math.sqrt(power / 10 ** (snr_db / 10))
    return speech + noise


# --------------------------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------------------------
# Purposes of the RNG streams; every stream is seeded by [seed, split, purpose, index], all of
# the same length, so no two streams share a seed.
_UTTERANCE, _SENTENCE_ORDER, _NOISE = 0, 1, 2
_CORPUS_SPLIT = len(SPLITS)  # pseudo-split index of the sentence-to-split assignment


def _rng_seed(seed: int, split: str, purpose: int, index: int = 0) -> tuple[int, int, int, int]:
    return (seed, SPLITS.index(split), purpose, index)


def _split_rng(seed: int, split: str, purpose: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(_rng_seed(seed, split, purpose, index))


def _estimate_seconds(sentence: Sentence, rate: int, cfg: SynthConfig) -> float:
    letters = len(sentence.text.replace(" ", ""))
    return cfg.est_letter_s * letters / rate + cfg.est_silence_s


def _target(cfg: SynthConfig, split: str) -> tuple[int | None, float | None]:
    hours = getattr(cfg, f"{split}_hours")
    return (None, hours) if hours is not None else (getattr(cfg, f"num_{split}"), None)


def _utt_spec(cfg: SynthConfig, split: str, i: int, sentence: Sentence) -> UttSpec:
    """Voice, rate, pitch and noise of utterance ``i`` come only from (seed, split, i)."""
    rng = _split_rng(cfg.seed, split, _UTTERANCE, i)
    voices = (cfg.unseen_voice,) if split == "test_unseen" else cfg.voices
    voice = voices[int(rng.integers(len(voices)))]
    rate = int(rng.integers(cfg.rate_wpm[0], cfg.rate_wpm[1] + 1))
    pitch = int(rng.integers(cfg.pitch[0], cfg.pitch[1] + 1))
    noisy = cfg.noise_snr_db is not None and rng.random() < cfg.noise_fraction
    snr = float(rng.uniform(*cfg.noise_snr_db)) if noisy else None
    kind = NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))]
    speaker = voice.replace("+", "-")
    return UttSpec(
        id=f"{speaker}_{split}_{i:06d}",
        split=split,
        index=i,
        spoken=sentence.spoken,
        text=sentence.text,
        voice=voice,
        rate=rate,
        pitch=pitch,
        snr_db=snr,
        noise_kind=kind,
        noise_seed=_rng_seed(cfg.seed, split, _NOISE, i),
    )


def _sentence_stream(
    sentences: Sequence[Sentence], cycle: bool, rng: np.random.Generator, split: str
) -> Iterator[Sentence]:
    """Eval splits read their pool once, in order; train reshuffles it on every pass."""
    if not sentences:
        raise ValueError(f"no sentences left for split {split!r}; lower the dev/test sizes")
    while True:
        order = rng.permutation(len(sentences)) if cycle else range(len(sentences))
        yield from (sentences[i] for i in order)
        if not cycle:
            raise ValueError(
                f"split {split!r} needs more than its {len(sentences)} sentences; "
                "lower its size or raise max_eval_sentence_fraction"
            )


def _take(
    cfg: SynthConfig, split: str, sentences: Sequence[Sentence], cycle: bool
) -> list[UttSpec]:
    """Plan one split's utterances from its sentence pool until the count or hours is met."""
    count, hours = _target(cfg, split)
    if count == 0 or hours == 0:
        return []
    stream = _sentence_stream(sentences, cycle, _split_rng(cfg.seed, split, _SENTENCE_ORDER), split)
    specs: list[UttSpec] = []
    seconds = 0.0
    while (count is None or len(specs) < count) and (hours is None or seconds < hours * 3600):
        sentence = next(stream)
        spec = _utt_spec(cfg, split, len(specs), sentence)
        seconds += _estimate_seconds(sentence, spec.rate, cfg)
        specs.append(spec)
    return specs


def plan_corpus(cfg: SynthConfig, sentences: Sequence[Sentence]) -> dict[str, list[UttSpec]]:
    """Assign sentences to splits (eval sentences never reach train) and plan every utterance."""
    order = np.random.default_rng([cfg.seed, _CORPUS_SPLIT, 0, 0]).permutation(len(sentences))
    shuffled = [sentences[i] for i in order]
    max_eval = int(cfg.max_eval_sentence_fraction * len(shuffled))
    plans: dict[str, list[UttSpec]] = {}
    start = 0
    for split in ("dev", "test", "test_unseen"):
        # Each eval utterance gets its own sentence: take from a window of the remaining pool.
        pool = shuffled[start:max_eval]
        plans[split] = _take(cfg, split, pool, cycle=False)
        start += len(plans[split])
    plans["train"] = _take(cfg, "train", shuffled[start:], cycle=True)
    return {s: plans[s] for s in SPLITS}


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _RenderContext:
    out_dir: str
    espeak: str
    sample_rate: int


def render_utterance(spec: UttSpec, ctx: _RenderContext) -> tuple[str, int]:
    """Synthesise, resample, add noise and write one FLAC; returns (relative path, frames)."""
    wav = espeak_waveform(spec.spoken, spec.voice, spec.rate, spec.pitch, ctx.espeak)
    wav = resample(wav, ESPEAK_SAMPLE_RATE, ctx.sample_rate)
    if spec.snr_db is not None:
        wav = add_noise(wav, spec.snr_db, spec.noise_kind, np.random.default_rng(spec.noise_seed))
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak > 0.99:  # keep the PCM_16 FLAC from clipping
        wav = wav * (0.99 / peak)
    rel = Path("audio") / spec.split / f"{spec.id}.flac"
    sf.write(Path(ctx.out_dir) / rel, wav, ctx.sample_rate, format="FLAC", subtype="PCM_16")
    return rel.as_posix(), len(wav)


def _render_star(args: tuple[UttSpec, _RenderContext]) -> tuple[str, int]:
    return render_utterance(*args)


def _write_manifest(path: Path, rows: list[dict]) -> None:
    """Write JSONL atomically so an interrupted run never leaves a manifest that looks done."""
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def manifest_paths(out_dir: str | Path) -> dict[str, Path]:
    """Where :func:`synthesize_corpus` writes each split's manifest."""
    return {s: Path(out_dir) / f"{s}.jsonl" for s in SPLITS}


CONFIG_FILE = "synth_config.json"
SUMMARY_FILE = "synth_summary.json"
# Text for language models: every source sentence except those spoken in dev/test/test_unseen,
# like WSJ's LM text, which is far larger than its acoustic transcripts.
LM_TEXT_FILE = "lm_text.txt"


def synthesize_corpus(
    cfg: SynthConfig, out_dir: str | Path, *, overwrite: bool = False, progress: bool = True
) -> dict[str, Path]:
    """Synthesise the corpus into ``out_dir``; returns ``{split: manifest path}``.

    Skips the work when all manifests exist for the same config (so recipe stages can be
    re-run); a different config there is an error unless ``overwrite``.
    """
    out = Path(out_dir)
    paths = manifest_paths(out)
    cfg_path = out / CONFIG_FILE
    if not overwrite and all(p.exists() for p in paths.values()):
        stored = json.loads(cfg_path.read_text()) if cfg_path.exists() else None
        if stored is not None and stored != cfg.fingerprint():
            raise FileExistsError(
                f"{out} holds a corpus made with a different config ({cfg_path}); "
                "pass --overwrite (overwrite=True) or choose another --out-dir"
            )
        print(f"synth: manifests already in {out}; skipping (use --overwrite to redo)")
        return paths

    espeak = find_espeak(cfg.espeak_bin)
    check_voices((*cfg.voices, cfg.unseen_voice), espeak)
    sentences = fortune_sentences(cfg.text_dir, SentenceFilter(cfg.min_words, cfg.max_words))
    plans = plan_corpus(cfg, sentences)
    for split in SPLITS:
        split_dir = out / "audio" / split
        if split_dir.exists():
            shutil.rmtree(split_dir)  # stale files of an earlier, larger run
        split_dir.mkdir(parents=True)
    for p in paths.values():
        p.unlink(missing_ok=True)

    ctx = _RenderContext(str(out), espeak, cfg.sample_rate)
    jobs_list = [(spec, ctx) for split in SPLITS for spec in plans[split]]
    start = time.perf_counter()
    bar = tqdm(total=len(jobs_list), desc="synth", unit="utt", disable=not progress)
    results: list[tuple[str, int]] = []
    if cfg.jobs == 1:
        for job in jobs_list:
            results.append(_render_star(job))
            bar.update()
    else:
        with multiprocessing.get_context("spawn").Pool(cfg.jobs) as pool:
            for res in pool.imap(_render_star, jobs_list, chunksize=8):
                results.append(res)
                bar.update()
    bar.close()
    elapsed = time.perf_counter() - start

    it = iter(results)
    summary: dict[str, dict] = {}
    for split in SPLITS:
        rows = []
        for spec in plans[split]:
            rel, frames = next(it)
            duration = round(frames / cfg.sample_rate, 6)
            rows.append(
                {
                    "id": spec.id,
                    "audio": rel,
                    "duration": duration,
                    "text": spec.text,
                    "speaker": spec.voice,
                }
            )
        _write_manifest(paths[split], rows)
        summary[split] = {
            "utterances": len(rows),
            "hours": sum(r["duration"] for r in rows) / 3600,
            "voices": sorted({r["speaker"] for r in rows}),
            "vocabulary": len({w for r in rows for w in r["text"].split()}),
        }
    total_hours = sum(s["hours"] for s in summary.values())
    summary["_total"] = {
        "sentences_available": len(sentences),
        "hours": total_hours,
        "seconds_elapsed": elapsed,
        "x_real_time": total_hours * 3600 / max(elapsed, 1e-9),
        "jobs": cfg.jobs,
    }
    held_out = {spec.text for split in SPLITS if split != "train" for spec in plans[split]}
    lm_text = [s.text for s in sentences if s.text not in held_out]
    (out / LM_TEXT_FILE).write_text("\n".join(lm_text) + "\n")
    summary["_total"]["lm_text_sentences"] = len(lm_text)
    cfg_path.write_text(json.dumps(cfg.fingerprint(), indent=2) + "\n")
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    print(format_summary(summary, out))
    return paths


def format_summary(summary: dict, out_dir: Path) -> str:
    """Human-readable table of what was written."""
    lines = [
        f"synthetic corpus in {out_dir}:",
        f"  {'split':<12}{'utts':>7}{'hours':>8}{'vocab':>7}  voices",
    ]
    for split in SPLITS:
        s = summary[split]
        lines.append(
            f"  {split:<12}{s['utterances']:>7}{s['hours']:>8.3f}{s['vocabulary']:>7}  {len(s['voices'])}: {', '.join(s['voices'])}"
        )
    t = summary["_total"]
    lines.append(
        f"  total {t['hours']:.3f} h in {t['seconds_elapsed']:.1f} s "
        f"({t['x_real_time']:.0f}x real time, {t['jobs']} jobs); "
        f"{t['sentences_available']} sentences available"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def _parse_snr(values: list[str] | None) -> tuple[float, float] | None | str:
    """``--noise-snr-db 10 30`` or ``--noise-snr-db off``; ``"unset"`` when not given."""
    if values is None:
        return "unset"
    if len(values) == 1 and values[0].lower() in {"off", "none"}:
        return None
    if len(values) != 2:
        raise argparse.ArgumentTypeError("--noise-snr-db takes MIN MAX (dB) or 'off'")
    return float(values[0]), float(values[1])


def build_parser() -> argparse.ArgumentParser:
    """The ``asr-synth-corpus`` command line."""
    p = argparse.ArgumentParser(
        prog="asr-synth-corpus",
        description="Synthesise an English speech corpus with espeak-ng (train/dev/test/test_unseen).",
    )
    p.add_argument("--out-dir", required=True, help="folder for audio/ and <split>.jsonl manifests")
    p.add_argument("--config", help="YAML mapping of SynthConfig fields; flags override it")
    for split in SPLITS:
        flag = split.replace("_", "-")
        p.add_argument(f"--num-{flag}", type=int, help=f"utterances in {split}")
        p.add_argument(
            f"--{flag}-hours", type=float, help=f"hours in {split} (replaces --num-{flag})"
        )
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--jobs", type=int, help="worker processes (default 2; output does not depend on it)"
    )
    p.add_argument(
        "--noise-snr-db", nargs="+", metavar="DB", help="MIN MAX, or 'off' for clean audio"
    )
    p.add_argument("--overwrite", action="store_true", help="redo even if manifests exist")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> SynthConfig:
    """SynthConfig from ``--config`` (if any) with the given flags on top."""
    overrides = {f"num_{s}": getattr(args, f"num_{s}") for s in SPLITS}
    overrides.update({f"{s}_hours": getattr(args, f"{s}_hours") for s in SPLITS})
    overrides.update(seed=args.seed, jobs=args.jobs)
    cfg = SynthConfig.from_yaml(args.config, **overrides) if args.config else None
    if cfg is None:
        cfg = SynthConfig(**{k: v for k, v in overrides.items() if v is not None})
    snr = _parse_snr(args.noise_snr_db)
    if snr != "unset":
        cfg = dataclasses.replace(cfg, noise_snr_db=snr)
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asr-synth-corpus``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args)
        synthesize_corpus(
            cfg, args.out_dir, overwrite=args.overwrite, progress=not args.no_progress
        )
    except (
        EspeakError,
        FileNotFoundError,
        FileExistsError,
        ValueError,
        argparse.ArgumentTypeError,
    ) as e:
        print(f"asr-synth-corpus: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
