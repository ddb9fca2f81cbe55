"""Tests of the synthetic corpus: engines and voices, a missing engine, determinism, split
hygiene (held-out voice and engine), valid manifests, text."""

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

from asr.data.augment import add_noise
from asr.data.synth import (
    RESAMPLING,
    SPLITS,
    EngineError,
    EspeakError,
    FestivalEngine,
    FliteEngine,
    SpeechEngine,
    SynthConfig,
    SynthRequest,
    Voice,
    check_voices,
    find_engines,
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
needs_flite = pytest.mark.skipif(
    shutil.which("flite") is None, reason="flite is not installed (apt-get install flite)"
)
needs_festival = pytest.mark.skipif(
    shutil.which("festival") is None
    or not Path("/usr/share/festival/voices/english/kal_diphone").is_dir(),
    reason="festival or its kal voice is not installed "
    "(apt-get install festival festvox-kallpc16k)",
)
needs_fortunes = pytest.mark.skipif(
    not FORTUNE_DIR.is_dir(), reason=f"no fortune files in {FORTUNE_DIR} (apt-get install fortunes)"
)

SEED = int(os.environ.get("ASR_TEST_SEED", random.randrange(1, 10**6)))  # fresh corpus each run


@pytest.fixture(autouse=True)
def _print_seed() -> None:
    print(f"test_synth SEED={SEED}")


ESPEAK_VOICES = ("en-us", "en+f2", "en-gb-x-rp+m3")
# The tiny corpus trains on espeak-ng and flite and holds out festival, when they are here.
FLITE_VOICES = ("flite:kal", "flite:slt") if shutil.which("flite") else ()
FESTIVAL_VOICES = ("festival:kal_diphone",) if shutil.which("festival") else ()
VOICES = tuple(str(Voice.parse(v)) for v in ESPEAK_VOICES + FLITE_VOICES)
UNSEEN = "espeak-ng:en-us+f4"
# Train audio gets every effect (small room pool: simulating rooms is the slow part).
AUGMENT = dict(reverb=0.5, noise=0.5, telephone=0.3, gain=0.5, rir_pool=2, rt60_s=(0.2, 0.4))


def tiny_config(seed: int = SEED, **kw) -> SynthConfig:
    """A corpus of a couple dozen short utterances: seconds to make."""
    base = dict(
        num_train=10, num_dev=3, num_test=3, num_test_unseen=3,
        num_test_unseen_engine=3 if FESTIVAL_VOICES else 0, seed=seed,
        voices=VOICES + FESTIVAL_VOICES, held_out_engine="festival" if FESTIVAL_VOICES else None,
        unseen_voice=UNSEEN, max_words=8, jobs=1, augment=AUGMENT,
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


# ---------------------------------------------------------------- voices and config
def test_voice_specs():
    assert Voice.parse("en-gb-x-rp+m3") == Voice("espeak-ng", "en-gb-x-rp+m3")
    assert Voice.parse("flite:slt") == Voice("flite", "slt")
    assert str(Voice.parse("festival:kal_diphone")) == "festival:kal_diphone"
    assert Voice.parse("espeak-ng:en-us+f3").slug == "espeak-ng-en-us-f3"
    with pytest.raises(ValueError, match="engine:name"):
        Voice.parse("flite:")


def test_config_rejects_unseen_voice_in_training():
    with pytest.raises(ValueError, match="unseen_voice"):
        SynthConfig(voices=("en-us", "en+f2"), unseen_voice="en+f2", held_out_engine=None)
    with pytest.raises(ValueError, match="unseen_voice"):
        SynthConfig(
            voices=("en-us", "flite:slt"), unseen_voice="flite:kal", held_out_engine="flite"
        )


def test_config_held_out_engine_needs_voices():
    with pytest.raises(ValueError, match="held_out_engine"):
        SynthConfig(voices=("en-us", "flite:slt"), held_out_engine="festival")
    with pytest.raises(ValueError, match="training voice"):
        SynthConfig(voices=("flite:slt",), unseen_voice="en-us", held_out_engine="flite")
    cfg = SynthConfig(voices=("en-us", "flite:slt", "flite:kal"), held_out_engine="flite")
    assert cfg.training_voices() == ("espeak-ng:en-us",)
    assert cfg.held_out_voices() == ("flite:slt", "flite:kal")


def test_unknown_engine_is_an_error():
    with pytest.raises(EngineError, match="unknown engine"):
        find_engines([Voice("say", "alex")])


def test_missing_engine_is_reported_once_and_left_out(tmp_path, monkeypatch):
    # PATH with espeak-ng only: flite and festival are each reported once, with the fix.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    espeak = shutil.which("espeak-ng")
    if espeak:
        (bin_dir / "espeak-ng").symlink_to(espeak)
    monkeypatch.setenv("PATH", str(bin_dir))
    lines: list[str] = []
    voices = [Voice.parse(v) for v in ("en-us", "flite:kal", "flite:slt", "festival:kal_diphone")]
    engines, usable = find_engines(voices, report=lines.append)
    assert len(lines) == (2 if espeak else 3), lines
    assert any("flite" in line and "apt-get install flite" in line for line in lines)
    assert any("festival" in line and "apt-get install festival" in line for line in lines)
    assert sum("flite" in line for line in lines) == 1
    assert usable == ([Voice("espeak-ng", "en-us")] if espeak else [])
    assert set(engines) == ({"espeak-ng"} if espeak else set())


@needs_espeak
@needs_fortunes
def test_corpus_without_an_engine_is_made_from_the_rest(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "espeak-ng").symlink_to(shutil.which("espeak-ng"))
    monkeypatch.setenv("PATH", str(bin_dir))
    cfg = tiny_config(
        num_train=4, num_dev=1, num_test=2, num_test_unseen=1, num_test_unseen_engine=2,
        voices=(*ESPEAK_VOICES, "flite:kal", "festival:kal_diphone"), held_out_engine="festival",
        augment=None,
    )  # fmt: skip
    synthesize_corpus(cfg, tmp_path / "c", progress=False)
    out = capsys.readouterr().out
    assert out.count("apt-get install flite") == 1 and out.count("apt-get install festival") == 1
    for split in ("train", "dev", "test"):
        speakers = {r["speaker"] for r in read_rows(tmp_path / "c" / f"{split}.jsonl")}
        assert speakers and all(sp.startswith("espeak-ng:") for sp in speakers)
    assert read_rows(tmp_path / "c" / "test_unseen_engine.jsonl") == []
    stored = json.loads((tmp_path / "c" / "synth_config.json").read_text())
    assert not any(v.startswith(("flite", "festival")) for v in stored["voices_spoken"])


# ---------------------------------------------------------------- planning (no audio)
@needs_fortunes
def test_plan_splits_are_disjoint_and_sized(sentences):
    cfg = tiny_config(
        num_train=300, num_dev=40, num_test=40, num_test_unseen=40, num_test_unseen_engine=40,
        voices=(*VOICES, "festival:kal_diphone", "festival:ked_diphone"),
        held_out_engine="festival",
    )  # fmt: skip
    plans = plan_corpus(cfg, sentences)
    train_texts = {u.text for u in plans["train"]}
    eval_texts: set[str] = set()
    for split in ("dev", "test", "test_unseen", "test_unseen_engine"):
        texts = [u.text for u in plans[split]]
        assert len(texts) == 40 and len(set(texts)) == 40
        assert not train_texts & set(texts), f"{split} sentence in train"
        assert not eval_texts & set(texts), f"{split} sentence in another eval split"
        eval_texts |= set(texts)
    assert {str(u.voice) for u in plans["test_unseen"]} == {cfg.unseen_voice}
    assert {u.voice.engine for u in plans["test_unseen_engine"]} == {"festival"}
    assert len({u.voice for u in plans["test_unseen_engine"]}) == 2
    for split in ("train", "dev", "test"):
        assert {str(u.voice) for u in plans[split]} <= set(VOICES)
    assert {str(u.voice) for u in plans["train"]} == set(VOICES)


@needs_fortunes
def test_plan_skips_voices_that_cannot_be_spoken(sentences):
    cfg = tiny_config(
        num_train=50, num_test_unseen_engine=5, voices=("en-us", "flite:kal", "festival:kal_diphone"),
        held_out_engine="festival",
    )  # fmt: skip
    plans = plan_corpus(cfg, sentences, available=[Voice.parse("en-us"), Voice.parse(UNSEEN)])
    assert {str(u.voice) for u in plans["train"]} == {"espeak-ng:en-us"}
    assert plans["test_unseen_engine"] == []


@needs_fortunes
def test_plan_noise_off_and_ranges(sentences):
    lo = random.uniform(0.7, 1.1)
    cfg = tiny_config(num_train=50, noise_snr_db=None, rate=(lo, lo + 0.1), pitch=(-2, 1))
    plans = plan_corpus(cfg, sentences)
    utts = [u for split in SPLITS for u in plans[split]]
    assert all(u.snr_db is None for u in utts)
    assert all(lo - 1e-3 <= u.rate <= lo + 0.1 + 1e-3 for u in utts)
    assert all(-2 <= u.pitch <= 1 for u in utts)
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


# ---------------------------------------------------------------- engines
def test_missing_espeak_says_how_to_install():
    with pytest.raises(EspeakError, match="apt-get install espeak-ng"):
        find_espeak("espeak-ng-not-installed-here")


@needs_espeak
def test_unknown_voice_is_rejected():
    with pytest.raises(EspeakError, match="variant"):
        check_voices(["en-us+nosuchvariant"], find_espeak())
    with pytest.raises(EspeakError, match="voice"):
        check_voices(["xx-nosuchlang"], find_espeak())


def median_f0(samples: np.ndarray, rate: int) -> float:
    f0 = torchaudio.functional.detect_pitch_frequency(
        torch.from_numpy(samples), rate, freq_low=60, freq_high=400
    )
    return float(f0.median())


TEXT = "The quick brown fox jumps over the lazy dog while the farmer watches."


@needs_flite
def test_flite_voices_rate_and_pitch():
    flite = FliteEngine.find()
    with pytest.raises(EngineError, match="no voice"):
        flite.missing_voices(["nosuchvoice"])
    assert flite.missing_voices(["kal", "slt", "/nowhere/x.flitevox"]) == {
        "/nowhere/x.flitevox": "no such .flitevox file"
    }
    base, rate = flite.synthesize(SynthRequest(TEXT, "kal16"))
    assert rate == 16000 and base.dtype == np.float32 and 0.05 < np.abs(base).max() <= 1
    assert flite.synthesize(SynthRequest(TEXT, "kal"))[1] == 8000
    factor = random.uniform(1.15, 1.35)
    fast, _ = flite.synthesize(SynthRequest(TEXT, "kal16", rate=factor))
    assert len(fast) / len(base) == pytest.approx(1 / factor, rel=0.1)
    semitones = random.uniform(3, 5)
    high, _ = flite.synthesize(SynthRequest(TEXT, "kal16", pitch=semitones))
    ratio = median_f0(high, rate) / median_f0(base, rate)
    assert ratio == pytest.approx(2 ** (semitones / 12), rel=0.08), (semitones, ratio)


@needs_festival
def test_festival_batch_rate_pitch_and_quotes():
    festival = FestivalEngine.find()
    with pytest.raises(EngineError, match="no voice"):
        festival.missing_voices(["nosuchvoice"])
    semitones = random.uniform(3, 5)
    requests = [
        SynthRequest(TEXT, "kal_diphone"),
        SynthRequest('He said "no", and left.', "kal_diphone"),
        SynthRequest(TEXT, "kal_diphone", rate=1.25),
        SynthRequest(TEXT, "kal_diphone", pitch=semitones),
    ]
    (base, sr), quoted, (fast, _), (high, _) = festival.synthesize_many(requests)
    assert sr == 16000 and len(base) / sr > 2.5  # the whole sentence, not a word
    assert len(quoted[0]) / quoted[1] > 1.2
    assert len(fast) / len(base) == pytest.approx(1 / 1.25, rel=0.1)
    # the diphone voices move their intonation target; the median f0 follows part of the way, a
    # share that varies from one request to the next (at least a third of it from 3 to 5 semitones)
    moved = 12 * np.log2(median_f0(high, sr) / median_f0(base, sr))
    assert 0.25 * semitones < moved < 1.2 * semitones, (semitones, moved)
    # one process for many sentences says each exactly as a process of its own would
    alone, _ = festival.synthesize(requests[2])
    assert np.array_equal(alone, fast)


@needs_festival
def test_festival_missing_voice_package_is_named(monkeypatch):
    monkeypatch.setattr("asr.data.synth.festival.festival_voices", lambda _: {"kal_diphone"})
    missing = FestivalEngine.find().missing_voices(["kal_diphone", "ked_diphone"])
    assert missing == {"ked_diphone": "apt-get install festvox-kdlpc16k"}


# ---------------------------------------------------------------- whole corpus
@needs_espeak
@needs_fortunes
def test_manifests_are_valid(corpus):
    for split in SPLITS:
        rows = read_rows(corpus / f"{split}.jsonl")
        expected = {"train": 10, "test_unseen_engine": 3 if FESTIVAL_VOICES else 0}
        assert len(rows) == expected.get(split, 3)
        for row in rows:
            assert set(row) == {"id", "audio", "duration", "text", "speaker"}
            path = corpus / row["audio"]
            info = sf.info(str(path))
            assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
            assert abs(info.frames / info.samplerate - row["duration"]) < 1e-5
            assert row["duration"] > 0.5
            assert row["text"] == normalize_text(row["text"])
            assert row["id"] == path.stem
            assert row["id"].startswith(Voice.parse(row["speaker"]).slug + "_")


@needs_espeak
@needs_fortunes
def test_training_audio_is_augmented_and_the_clean_copy_kept(corpus):
    train = read_rows(corpus / "train.jsonl")
    clean = read_rows(corpus / "train_clean.jsonl")
    assert [r["id"] for r in train] == [r["id"] for r in clean]
    assert [r["text"] for r in train] == [r["text"] for r in clean]
    changed = 0
    for a, b in zip(train, clean, strict=True):
        x, _ = sf.read(corpus / a["audio"], dtype="float32")
        y, _ = sf.read(corpus / b["audio"], dtype="float32")
        assert len(x) == len(y)
        changed += not np.array_equal(x, y)
    assert changed >= 5  # 1 - P(no effect) = 1 - 0.5*0.5*0.7*0.5 per utterance


@needs_espeak
@needs_fortunes
def test_splits_are_disjoint(corpus):
    rows = {s: read_rows(corpus / f"{s}.jsonl") for s in SPLITS}
    train_texts = {r["text"] for r in rows["train"]}
    train_voices = {r["speaker"] for r in rows["train"]}
    lm_text = set((corpus / "lm_text.txt").read_text().splitlines())
    assert train_texts <= lm_text
    for split in ("dev", "test", "test_unseen", "test_unseen_engine"):
        assert not {r["text"] for r in rows[split]} & train_texts
        assert not {r["text"] for r in rows[split]} & lm_text
    unseen = {r["speaker"] for r in rows["test_unseen"]}
    assert unseen == {UNSEEN}
    for split in ("train", "dev", "test"):
        assert not unseen & {r["speaker"] for r in rows[split]}
        assert not any(r["speaker"].startswith("festival:") for r in rows[split])
    assert train_voices <= set(VOICES)
    assert {r["speaker"] for r in rows["test_unseen_engine"]} == set(FESTIVAL_VOICES)


@needs_espeak
@needs_fortunes
def test_same_seed_same_corpus_any_jobs(corpus, tmp_path):
    # Second run through the CLI with 2 workers: output must not depend on either.
    out = tmp_path / "b"
    cfg = tiny_config()
    args = ["--out-dir", str(out), "--seed", str(SEED), "--jobs", "2", "--no-progress"]
    args += ["--num-train", "10", "--num-dev", "3", "--num-test", "3", "--num-test-unseen", "3"]
    args += ["--num-test-unseen-engine", str(cfg.num_test_unseen_engine)]
    args += ["--held-out-engine", cfg.held_out_engine or "none"]
    conf = tmp_path / "conf.yaml"
    conf.write_text(
        f"voices: {list(cfg.voices)}\nunseen_voice: {cfg.unseen_voice}\n"
        f"max_words: {cfg.max_words}\naugment: {json.dumps(AUGMENT)}\n"
    )
    assert main([*args, "--config", str(conf)]) == 0
    for split in SPLITS:
        assert (out / f"{split}.jsonl").read_bytes() == (corpus / f"{split}.jsonl").read_bytes()
    assert corpus_bytes(out) == corpus_bytes(corpus)


@needs_espeak
@needs_fortunes
def test_different_seed_different_corpus(corpus, tmp_path):
    out = tmp_path / "c"
    synthesize_corpus(tiny_config(seed=SEED + 1, augment=None), out, progress=False)
    texts = [r["text"] for r in read_rows(out / "train.jsonl")]
    assert texts != [r["text"] for r in read_rows(corpus / "train.jsonl")]
    assert corpus_bytes(out) != corpus_bytes(corpus)


@needs_espeak
@needs_fortunes
def test_existing_corpus_is_skipped_or_refused(tmp_path):
    small = dict(num_dev=1, num_test=1, num_test_unseen=1, num_test_unseen_engine=0, augment=None)
    cfg = tiny_config(num_train=2, voices=ESPEAK_VOICES, held_out_engine=None, **small)
    synthesize_corpus(cfg, tmp_path, progress=False)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    synthesize_corpus(cfg, tmp_path, progress=False)  # same config: nothing rewritten
    assert before == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    bigger = tiny_config(num_train=3, voices=ESPEAK_VOICES, held_out_engine=None, **small)
    with pytest.raises(FileExistsError, match="--overwrite"):
        synthesize_corpus(bigger, tmp_path, progress=False)
    synthesize_corpus(bigger, tmp_path, overwrite=True, progress=False)
    assert len(read_rows(tmp_path / "train.jsonl")) == 3
    assert len(list((tmp_path / "audio" / "train").iterdir())) == 3


class ToneEngine(SpeechEngine):
    """A stand-in engine: one tone per voice, as long as the text; at 8 kHz, so resampled.
    It cannot say sentences containing `refuse` (a bad item, to be left out)."""

    name = "espeak-ng"
    install_hint = "none"
    refuse = "q"

    @classmethod
    def find(cls):
        return cls()

    def missing_voices(self, voices):
        if "bad" in voices:
            raise EngineError("no voice 'bad'")
        return {}

    def synthesize(self, request):
        if self.refuse in request.text:
            raise EngineError(f"cannot say {request.text!r}")
        t = np.arange(len(request.text) * 400) / 8000
        f = 200 + 50 * ESPEAK_VOICES.index(request.voice)
        return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32), 8000


@needs_fortunes
def test_another_engine_renders_the_same_plan(tmp_path, capsys):
    cfg = tiny_config(
        num_train=40, num_dev=1, num_test=1, num_test_unseen=0, num_test_unseen_engine=0,
        noise_snr_db=None, voices=ESPEAK_VOICES, held_out_engine=None, augment=None,
    )  # fmt: skip
    sentences = fortune_sentences(cfg.text_dir, SentenceFilter(cfg.min_words, cfg.max_words))
    plan = plan_corpus(cfg, sentences)["train"]
    engine = ToneEngine()
    # A rare letter that some planned sentences have and some lack: those are the bad items.
    engine.refuse = next(c for c in "qzxjkv" if 0 < sum(c in u.spoken for u in plan) < len(plan))
    synthesize_corpus(cfg, tmp_path, progress=False, engines={"espeak-ng": engine})
    rows = read_rows(tmp_path / "train.jsonl")
    said = [u for u in plan if engine.refuse not in u.spoken]
    assert [r["id"] for r in rows] == [u.id for u in said]  # the bad ones cost themselves
    assert capsys.readouterr().out.count("left out") >= len(plan) - len(said)
    for row, utt in zip(rows, said, strict=True):
        audio, sr = sf.read(tmp_path / row["audio"])
        assert sr == 16000 and len(audio) == 2 * len(utt.spoken) * 400  # 8 -> 16 kHz
        assert row["duration"] == len(audio) / 16000
    with pytest.raises(EngineError, match="bad"):
        synthesize_corpus(
            tiny_config(voices=("bad",), held_out_engine=None, num_test_unseen_engine=0),
            tmp_path / "b", progress=False, engines={"espeak-ng": ToneEngine()},
        )  # fmt: skip


SYNTH_CONFIGS = sorted((Path(__file__).resolve().parents[2] / "recipes/synth/conf").glob("*.yaml"))


@pytest.mark.parametrize("config", SYNTH_CONFIGS, ids=lambda p: p.name)
def test_recipe_corpus_sections_are_valid(config, tmp_path):
    import importlib.util

    tool = Path(__file__).resolve().parents[2] / "tools" / "yaml_get.py"
    spec = importlib.util.spec_from_file_location("yaml_get_for_synth", tool)
    yaml_get = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(yaml_get)
    section = yaml_get.load_config(config)["corpus"]
    (tmp_path / "corpus.yaml").write_text(json.dumps(section))  # JSON is YAML
    cfg = SynthConfig.from_yaml(tmp_path / "corpus.yaml")
    assert cfg.training_voices() and (cfg.num_test_unseen_engine == 0 or cfg.held_out_voices())
