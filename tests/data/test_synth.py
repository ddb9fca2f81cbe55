"""Tests of the espeak-ng synthetic corpus: determinism, split hygiene, valid manifests, text."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from asr.data.synth import (
    RESAMPLING,
    SPLITS,
    EngineError,
    EspeakError,
    SpeechEngine,
    SynthConfig,
    add_noise,
    check_voices,
    find_espeak,
    main,
    plan_corpus,
    resample,
    synthesize_corpus,
)
from asr.data.text_sources import FORTUNE_DIR, SentenceFilter, fortune_sentences, vocabulary
from asr.text import normalize_text

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)
needs_fortunes = pytest.mark.skipif(
    not FORTUNE_DIR.is_dir(), reason=f"no fortune files in {FORTUNE_DIR} (apt-get install fortunes)"
)

SEED = int(os.environ.get("ASR_TEST_SEED", random.randrange(1, 10**6)))  # fresh corpus each run


@pytest.fixture(autouse=True)
def _print_seed() -> None:
    print(f"test_synth SEED={SEED}")


VOICES = ("en-us", "en+f2", "en-gb-x-rp+m3")


def tiny_config(seed: int = SEED, **kw) -> SynthConfig:
    """A corpus of a couple dozen short utterances: seconds to make."""
    base = dict(
        num_train=10, num_dev=3, num_test=3, num_test_unseen=3, seed=seed, voices=VOICES,
        unseen_voice="en-us+f4", max_words=8, jobs=1,
    )  # fmt: skip
    base.update(kw)
    return SynthConfig(**base)


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def corpus_bytes(out_dir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out_dir).as_posix(): p.read_bytes() for p in sorted(out_dir.rglob("*.flac"))
    }


@pytest.fixture(scope="module")
def sentences():
    return fortune_sentences()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_a")
    synthesize_corpus(tiny_config(), out, progress=False)
    return out


# ---------------------------------------------------------------- text source
@needs_fortunes
def test_text_source_is_large_and_clean(sentences):
    words = vocabulary(sentences)
    assert len(sentences) >= 3000, f"only {len(sentences)} sentences"
    assert len(words) >= 3000, f"only {len(words)} distinct words"
    texts = [s.text for s in sentences]
    assert len(set(texts)) == len(texts), "sentences are not deduplicated"
    for s in random.Random(SEED).sample(sentences, 500):
        assert normalize_text(s.text) == s.text == normalize_text(s.spoken)
        assert 3 <= len(s.text.split()) <= 20
        assert all(c.isalpha() or c in "' " for c in s.text), s.text


def test_text_source_missing_names_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install fortunes"):
        fortune_sentences(tmp_path / "nowhere")


# ---------------------------------------------------------------- signal processing
def test_resample_keeps_a_sine():
    freq = random.uniform(200.0, 3000.0)
    phase = random.uniform(0, 2 * math.pi)
    n_in = 22050
    x = np.sin(2 * np.pi * freq * np.arange(n_in) / 22050 + phase).astype(np.float32)
    y = resample(x, 22050, 16000)
    assert len(y) == 16000
    ref = np.sin(2 * np.pi * freq * np.arange(16000) / 16000 + phase)
    inner = slice(100, -100)  # the ends see the zero padding
    assert np.max(np.abs(y[inner] - ref[inner])) < 0.02


def test_resample_is_torchaudios():
    x = np.random.default_rng(SEED).standard_normal(random.randint(1000, 30000)).astype(np.float32)
    expected = torchaudio.functional.resample(torch.from_numpy(x), 22050, 16000, **RESAMPLING)
    assert np.array_equal(resample(x, 22050, 16000), expected.numpy())


def test_add_noise_hits_the_snr():
    rng = np.random.default_rng(SEED)
    speech = (0.3 * np.sin(np.arange(16000) * 0.05)).astype(np.float32)
    snr = float(rng.uniform(5, 30))
    for kind in ("white", "pink", "brown"):
        noisy = add_noise(speech, snr, kind, np.random.default_rng(SEED))
        noise = noisy - speech
        measured = 10 * np.log10(np.mean(speech**2) / np.mean(noise**2))
        assert abs(measured - snr) < 0.5, (kind, measured, snr)


# ---------------------------------------------------------------- planning (no audio)
@needs_fortunes
def test_plan_splits_are_disjoint_and_sized(sentences):
    cfg = tiny_config(num_train=300, num_dev=40, num_test=40, num_test_unseen=40)
    plans = plan_corpus(cfg, sentences)
    train_texts = {u.text for u in plans["train"]}
    for split in ("dev", "test", "test_unseen"):
        texts = [u.text for u in plans[split]]
        assert len(texts) == 40 and len(set(texts)) == 40
        assert not train_texts & set(texts), f"{split} sentence in train"
    assert {u.voice for u in plans["test_unseen"]} == {cfg.unseen_voice}
    for split in ("train", "dev", "test"):
        assert {u.voice for u in plans[split]} <= set(VOICES)


@needs_fortunes
def test_plan_noise_off_and_ranges(sentences):
    lo = random.randint(120, 170)
    cfg = tiny_config(num_train=50, noise_snr_db=None, rate_wpm=(lo, lo + 20))
    plans = plan_corpus(cfg, sentences)
    utts = [u for split in SPLITS for u in plans[split]]
    assert all(u.snr_db is None for u in utts)
    assert all(lo <= u.rate <= lo + 20 for u in utts)
    snr_range = tuple(sorted(random.uniform(0, 40) for _ in range(2)))
    noisy_cfg = tiny_config(num_train=50, noise_fraction=1.0, noise_snr_db=snr_range)
    snrs = [u.snr_db for u in plan_corpus(noisy_cfg, sentences)["train"]]
    assert all(s is not None and snr_range[0] <= s <= snr_range[1] for s in snrs)


@needs_fortunes
def test_plan_by_hours(sentences):
    hours = random.uniform(0.05, 0.1)
    cfg = tiny_config(train_hours=hours)
    plans = plan_corpus(cfg, sentences)
    est = sum(
        cfg.est_letter_s * len(u.text.replace(" ", "")) / u.rate + cfg.est_silence_s
        for u in plans["train"]
    )
    assert hours * 3600 <= est < hours * 3600 + 10


# ---------------------------------------------------------------- espeak-ng
def test_missing_espeak_says_how_to_install():
    with pytest.raises(EspeakError, match="apt-get install espeak-ng"):
        find_espeak("espeak-ng-not-installed-here")


@needs_espeak
def test_unknown_voice_is_rejected():
    with pytest.raises(EspeakError, match="variant"):
        check_voices(["en-us+nosuchvariant"], find_espeak())
    with pytest.raises(EspeakError, match="voice"):
        check_voices(["xx-nosuchlang"], find_espeak())


@needs_espeak
@needs_fortunes
def test_manifests_are_valid(corpus):
    for split in SPLITS:
        rows = read_rows(corpus / f"{split}.jsonl")
        assert len(rows) == (10 if split == "train" else 3)
        for row in rows:
            assert set(row) == {"id", "audio", "duration", "text", "speaker"}
            path = corpus / row["audio"]
            info = sf.info(str(path))
            assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
            assert abs(info.frames / info.samplerate - row["duration"]) < 1e-5
            assert row["duration"] > 0.5
            assert row["text"] == normalize_text(row["text"])
            assert row["id"] == path.stem


@needs_espeak
@needs_fortunes
def test_splits_are_disjoint(corpus):
    rows = {s: read_rows(corpus / f"{s}.jsonl") for s in SPLITS}
    train_texts = {r["text"] for r in rows["train"]}
    train_voices = {r["speaker"] for r in rows["train"]}
    lm_text = set((corpus / "lm_text.txt").read_text().splitlines())
    assert train_texts <= lm_text
    for split in ("dev", "test", "test_unseen"):
        assert not {r["text"] for r in rows[split]} & train_texts
        assert not {r["text"] for r in rows[split]} & lm_text
    unseen = {r["speaker"] for r in rows["test_unseen"]}
    assert unseen == {"en-us+f4"}
    for split in ("train", "dev", "test"):
        assert not unseen & {r["speaker"] for r in rows[split]}
    assert train_voices <= set(VOICES)


@needs_espeak
@needs_fortunes
def test_same_seed_same_corpus_any_jobs(corpus, tmp_path):
    # Second run through the CLI with 2 workers: output must not depend on either.
    out = tmp_path / "b"
    cfg = tiny_config()
    args = ["--out-dir", str(out), "--seed", str(SEED), "--jobs", "2", "--no-progress"]
    args += ["--num-train", "10", "--num-dev", "3", "--num-test", "3", "--num-test-unseen", "3"]
    conf = tmp_path / "conf.yaml"
    conf.write_text(
        f"voices: {list(VOICES)}\nunseen_voice: {cfg.unseen_voice}\nmax_words: {cfg.max_words}\n"
    )
    assert main([*args, "--config", str(conf)]) == 0
    for split in SPLITS:
        assert (out / f"{split}.jsonl").read_bytes() == (corpus / f"{split}.jsonl").read_bytes()
    assert corpus_bytes(out) == corpus_bytes(corpus)


@needs_espeak
@needs_fortunes
def test_different_seed_different_corpus(corpus, tmp_path):
    out = tmp_path / "c"
    synthesize_corpus(tiny_config(seed=SEED + 1), out, progress=False)
    texts = [r["text"] for r in read_rows(out / "train.jsonl")]
    assert texts != [r["text"] for r in read_rows(corpus / "train.jsonl")]
    assert corpus_bytes(out) != corpus_bytes(corpus)


@needs_espeak
@needs_fortunes
def test_existing_corpus_is_skipped_or_refused(tmp_path):
    cfg = tiny_config(num_train=2, num_dev=1, num_test=1, num_test_unseen=1)
    synthesize_corpus(cfg, tmp_path, progress=False)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    synthesize_corpus(cfg, tmp_path, progress=False)  # same config: nothing rewritten
    assert before == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    bigger = tiny_config(num_train=3, num_dev=1, num_test=1, num_test_unseen=1)
    with pytest.raises(FileExistsError, match="--overwrite"):
        synthesize_corpus(bigger, tmp_path, progress=False)
    synthesize_corpus(bigger, tmp_path, overwrite=True, progress=False)
    assert len(read_rows(tmp_path / "train.jsonl")) == 3
    assert len(list((tmp_path / "audio" / "train").iterdir())) == 3


class ToneEngine(SpeechEngine):
    """A stand-in engine: one tone per voice, as long as the text; at 8 kHz, so resampled."""

    sample_rate = 8000

    def check_voices(self, voices):
        if "bad" in voices:
            raise EngineError("no voice 'bad'")

    def synthesize(self, text, voice, rate_wpm, pitch):
        t = np.arange(len(text) * 400) / self.sample_rate
        return (0.5 * np.sin(2 * np.pi * (200 + 50 * VOICES.index(voice)) * t)).astype(np.float32)


@needs_fortunes
def test_another_engine_renders_the_same_plan(tmp_path):
    cfg = tiny_config(num_train=4, num_dev=1, num_test=1, num_test_unseen=0, noise_snr_db=None)
    synthesize_corpus(cfg, tmp_path, progress=False, engine=ToneEngine())
    rows = read_rows(tmp_path / "train.jsonl")
    sentences = fortune_sentences(cfg.text_dir, SentenceFilter(cfg.min_words, cfg.max_words))
    plan = plan_corpus(cfg, sentences)["train"]
    assert [r["id"] for r in rows] == [u.id for u in plan]
    for row, utt in zip(rows, plan, strict=True):
        audio, sr = sf.read(tmp_path / row["audio"])
        assert sr == 16000 and len(audio) == 2 * len(utt.spoken) * 400  # 8 -> 16 kHz
        assert row["duration"] == len(audio) / 16000
    with pytest.raises(EngineError, match="bad"):
        synthesize_corpus(
            tiny_config(voices=("bad",)), tmp_path / "b", progress=False, engine=ToneEngine()
        )


def test_config_rejects_unseen_voice_in_training():
    with pytest.raises(ValueError, match="unseen_voice"):
        SynthConfig(voices=("en-us", "en+f2"), unseen_voice="en+f2")
