"""Tests of festival's voices of other languages speaking English: the phone maps, the
segment arithmetic, the engine path, and the corpus's train-only voices."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from asr.data.synth import FestivalEngine, SynthConfig, SynthRequest, plan_corpus
from asr.data.synth.festival import FOREIGN_VOICES, FRONT_END_VOICE, festival_voices
from asr.data.synth.phonemap import (
    PHONE_MAPS,
    PHONE_SETS,
    RADIO_PHONES,
    Segment,
    map_segments,
    segments_scheme,
)
from asr.data.synth.plan import estimate_seconds
from asr.data.text_sources import Sentence


def _installed() -> set[str]:
    if shutil.which("festival") is None:
        return set()
    return festival_voices(shutil.which("festival"))


INSTALLED = _installed()
FOREIGN_INSTALLED = sorted(v for v in FOREIGN_VOICES if v in INSTALLED)
needs_foreign_voice = pytest.mark.skipif(
    FRONT_END_VOICE not in INSTALLED or not FOREIGN_INSTALLED,
    reason="festival, its kal voice or none of its foreign voices is installed (make foreign-voices)",
)


@pytest.mark.parametrize("name", sorted(PHONE_MAPS))
def test_every_english_phone_maps_into_the_target_set(name):
    phone_map = PHONE_MAPS[name]
    assert set(phone_map) == RADIO_PHONES
    for english, phones in phone_map.items():
        assert len(phones) <= 2, english
        assert set(phones) <= PHONE_SETS[name], (english, phones)
    vowels = ("aa", "ae", "ah", "ao", "ax", "eh", "ih", "iy", "uh", "uw")
    assert all(phone_map[v] for v in vowels)  # no vowel is dropped


def test_every_foreign_voice_has_a_map():
    assert {v.phone_set for v in FOREIGN_VOICES.values()} <= set(PHONE_MAPS)


def test_map_segments_splits_a_diphthong_and_scales_time_and_pitch():
    f0_factor, rate = random.uniform(0.7, 2.0), random.uniform(0.8, 1.2)
    segments = [
        Segment("pau", 0.2),
        Segment("hh", 0.05, ((0.0, 100.0),)),
        Segment("ay", 0.3, ((0.05, 110.0), (0.25, 90.0))),
    ]
    out = map_segments(segments, PHONE_MAPS["italian"], f0_factor, rate)
    assert [s.phone for s in out] == ["#", "a1", "i"]  # Italian has no h: dropped
    assert out[1].duration == pytest.approx(0.18 / rate)
    assert out[2].duration == pytest.approx(0.12 / rate)
    # each target stays in the phone it fell in, at its time within that phone
    assert np.allclose(out[1].targets, [(0.05 / rate, 110.0 * f0_factor)])
    assert np.allclose(out[2].targets, [((0.25 - 0.18) / rate, 90.0 * f0_factor)])
    assert sum(s.duration for s in out) == pytest.approx(0.5 / rate)


def test_segments_scheme():
    scheme = segments_scheme([Segment("#", 0.2), Segment("a:", 0.1, ((0.05, 120.0),))])
    assert scheme == "((# 0.2000) (a: 0.1000 (0.0500 120.0)))"


@needs_foreign_voice
def test_installed_phone_sets_are_those_the_maps_use():
    festival = shutil.which("festival")
    for voice in FOREIGN_INSTALLED:
        script = (
            f"(voice_{voice})\n"
            "(print (mapcar car (car (cdr (car (PhoneSet.description '(phones)))))))\n"
        )
        out = subprocess.run(
            [festival, "--pipe"], input=script, capture_output=True, text=True, check=True
        ).stdout
        phones = set(out.strip().strip("()").split())
        assert phones == PHONE_SETS[FOREIGN_VOICES[voice].phone_set], voice


@needs_foreign_voice
def test_a_foreign_voice_speaks_english_at_rate_and_pitch():
    festival = FestivalEngine.find()
    voice = random.choice(FOREIGN_INSTALLED)
    text = "the quick brown fox jumps over the lazy dog"
    factor = random.uniform(1.15, 1.35)
    (base, sr), (fast, _), broken = festival.synthesize_many(
        [
            SynthRequest(text, voice),
            SynthRequest(text, voice, rate=factor),
            SynthRequest(".", voice),  # kills festival's front end: fails alone
        ]
    )
    assert sr >= 16000 and base.dtype == np.float32 and len(base) / sr > 2.0, voice
    assert 0.05 < np.abs(base).max() <= 1
    assert len(fast) / len(base) == pytest.approx(1 / factor, rel=0.1), voice
    assert isinstance(broken, Exception)
    phones = festival.front_end([text, "   ", text])
    assert phones[1] is None and phones[0] == phones[2] and len(phones[0]) > 20


@pytest.mark.skipif(shutil.which("festival") is None, reason="festival is not installed")
def test_a_foreign_voice_without_the_front_end_names_both_packages(monkeypatch):
    monkeypatch.setattr("asr.data.synth.festival.festival_voices", lambda _: {"lp_diphone"})
    missing = FestivalEngine.find().missing_voices(["lp_diphone", "czech_dita"])
    assert missing == {
        "lp_diphone": "apt-get install festvox-kallpc16k",
        "czech_dita": "apt-get install festvox-czech-dita festvox-kallpc16k",
    }


def _config(**kw) -> SynthConfig:
    return SynthConfig(
        num_train=60, num_dev=5, num_test=5, num_test_unseen=5, num_test_unseen_engine=5,
        voices=("en-us", "en+f2", "flite:kal"), held_out_engine="flite",
        unseen_voice="en-us+f4", **kw,
    )  # fmt: skip


def test_train_only_voices_are_heard_in_training_only():
    sentences = [Sentence(f"sentence number {i}", f"sentence number {i}") for i in range(200)]
    extra = ("festival:lp_diphone", "festival:czech_ph")
    plain, with_extra = _config(), _config(train_only_voices=extra)
    a, b = plan_corpus(plain, sentences), plan_corpus(with_extra, sentences)
    for split in ("dev", "test", "test_unseen", "test_unseen_engine"):
        assert a[split] == b[split]  # the same evaluation utterances, voices and all
    assert [u.text for u in a["train"]] == [u.text for u in b["train"]]
    assert {str(u.voice) for u in b["train"]} & set(extra)
    assert "train_only_voices" not in plain.fingerprint()  # corpora made before it stay valid
    assert with_extra.fingerprint()["train_only_voices"] == list(extra)


def test_train_only_hours_come_on_top_of_the_training_voices():
    sentences = [Sentence(f"sentence number {i}", f"sentence number {i}") for i in range(200)]
    extra = ("festival:lp_diphone", "festival:czech_ph")
    cfg = _config(train_only_voices=extra, train_only_hours=0.05)
    plain, on_top = plan_corpus(_config(), sentences), plan_corpus(cfg, sentences)
    n = len(plain["train"])
    assert on_top["train"][:n] == plain["train"]  # the training voices' utterances unchanged
    added = on_top["train"][n:]
    assert {str(u.voice) for u in added} == set(extra)
    assert sum(estimate_seconds(Sentence(u.spoken, u.text), u.rate, cfg) for u in added) >= 180
    assert len({u.id for u in on_top["train"]}) == len(on_top["train"])
    assert [u.index for u in added] == list(range(n, n + len(added)))
    for split in ("dev", "test", "test_unseen", "test_unseen_engine"):
        assert on_top[split] == plain[split]
    assert cfg.fingerprint()["train_only_hours"] == 0.05


@pytest.mark.parametrize(
    "voices, match",
    [(("flite:slt",), "held_out_engine"), (("en-us",), "also in voices"),
     (("en-us+f4",), "unseen_voice")],
)  # fmt: skip
def test_train_only_voices_are_checked(voices, match):
    with pytest.raises(ValueError, match=match):
        _config(train_only_voices=voices)


@pytest.mark.parametrize("kw", [{"train_only_hours": 1.0}, {"train_only_hours": -1.0,
                                "train_only_voices": ("festival:czech_ph",)}])  # fmt: skip
def test_train_only_hours_are_checked(kw):
    with pytest.raises(ValueError, match="train_only_hours"):
        _config(**kw)


def test_recipe_config_names_installable_voices():
    cfg = Path(__file__).parents[2] / "recipes/synth/conf/demo_holdout_flite_foreign.yaml"
    text = cfg.read_text()
    for voice in FOREIGN_VOICES:
        assert f"festival:{voice}" in text
