"""Tests of the training-audio augmentations: SNR reached, babble, room responses that decay
as asked, the telephone band, gain and clipping, shares and determinism of the draws."""

from __future__ import annotations

import dataclasses
import os
import random

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.data.augment import (
    BABBLE,
    Augmentation,
    AugmentConfig,
    add_noise,
    apply_augmentation,
    apply_gain,
    augment_manifest,
    babble,
    draw_augmentation,
    mix_at_snr,
    reverberate,
    simulate_rir,
    telephone,
)
from asr.data.manifest import read_manifest

SEED = int(os.environ.get("ASR_TEST_SEED", random.randrange(1, 10**6)))
SR = 16000


@pytest.fixture(autouse=True)
def _print_seed() -> None:
    print(f"test_augment SEED={SEED}")


def speech_like(rng: np.random.Generator, seconds: float = 1.0) -> np.ndarray:
    """Harmonics of a gliding f0 with syllable-rate amplitude bursts and silent gaps."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None)
    return (0.3 * x * envelope).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    active = np.abs(clean) > 0.01 * np.abs(clean).max()
    return 10 * np.log10(np.mean(clean[active] ** 2) / np.mean((noisy - clean) ** 2))


def test_coloured_noise_reaches_the_snr():
    rng = np.random.default_rng(SEED)
    x = speech_like(rng)
    for kind in ("white", "pink", "brown"):
        snr = float(rng.uniform(0, 30))
        assert snr_db(x, add_noise(x, snr, kind, rng)) == pytest.approx(snr, abs=0.2), kind


def test_babble_reaches_the_snr_and_is_other_speech():
    rng = np.random.default_rng(SEED)
    x = speech_like(rng, 1.0)
    talkers = [speech_like(rng, rng.uniform(0.3, 2.0)) for _ in range(4)]
    b = babble(len(x), talkers, np.random.default_rng(SEED))
    assert len(b) == len(x) and np.mean(b**2) == pytest.approx(1.0, rel=1e-3)
    assert np.array_equal(b, babble(len(x), talkers, np.random.default_rng(SEED)))
    snr = float(rng.uniform(0, 20))
    assert snr_db(x, mix_at_snr(x, b, snr)) == pytest.approx(snr, abs=0.2)
    # a babble of one talker is that talker, from a random start, looped, at unit power
    talker = talkers[0]
    start = int(np.random.default_rng(SEED).integers(len(talker)))
    expected = np.resize(np.roll(talker, -start), len(x))
    expected = expected / np.sqrt(np.mean(expected.astype(np.float64) ** 2))
    one = babble(len(x), [talker], np.random.default_rng(SEED))
    assert np.allclose(one, expected, atol=1e-4 * np.abs(expected).max())


def schroeder_rt60(rir: np.ndarray) -> float:
    """RT60 from the -5..-25 dB slope of the backward-integrated energy (T20 x 3)."""
    energy = np.cumsum(rir[::-1].astype(np.float64) ** 2)[::-1]
    db = 10 * np.log10(energy / energy[0] + 1e-30)
    start, end = np.argmax(db <= -5), np.argmax(db <= -25)
    return 3 * (end - start) / SR


def test_room_responses_decay_as_asked():
    cfg = AugmentConfig(reverb=1.0, rt60_s=(0.2, 0.2), room_m=(4.0, 6.0))
    long_cfg = dataclasses.replace(cfg, rt60_s=(0.6, 0.6))
    measured = {}
    for c, asked in ((cfg, 0.2), (long_cfg, 0.6)):
        rooms = [simulate_rir(np.random.default_rng([SEED, k]), c, SR) for k in range(4)]
        for rir, rt60 in rooms:
            assert rt60 == asked
            assert rir[0] == 1.0 and np.abs(rir).max() == 1.0  # direct path first, unit gain
        # one room's decay depends on where source and microphone stand: average four
        measured[asked] = float(np.mean([schroeder_rt60(rir) for rir, _ in rooms]))
        # image-source rooms decay somewhat slower than Sabine's formula predicts
        assert 0.6 * asked < measured[asked] < 1.6 * asked, (asked, measured)
    assert measured[0.6] > 2 * measured[0.2]
    same, _ = simulate_rir(np.random.default_rng([SEED, 0]), cfg, SR)
    assert np.array_equal(same, simulate_rir(np.random.default_rng([SEED, 0]), cfg, SR)[0])


def test_reverberation_keeps_length_and_power_and_smears():
    rng = np.random.default_rng(SEED)
    x = speech_like(rng)
    rir, _ = simulate_rir(rng, AugmentConfig(rt60_s=(0.5, 0.5)), SR)
    y = reverberate(x, rir)
    assert len(y) == len(x)
    assert np.mean(y**2) == pytest.approx(np.mean(x**2), rel=1e-4)
    gaps = np.abs(x) < 1e-6  # the silences between bursts fill with reverberation
    assert np.mean(np.abs(y[gaps])) > 0.05 * np.mean(np.abs(y))


def test_telephone_is_band_limited():
    rng = np.random.default_rng(SEED)
    x = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    y = telephone(x, SR)
    assert len(y) == len(x)
    spec = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    total = spec.sum()
    assert spec[freqs > 4000].sum() < 1e-3 * total
    band = spec[(freqs > 500) & (freqs < 3000)].mean()
    assert spec[(freqs > 20) & (freqs < 150)].mean() < 0.1 * band  # high-pass at 300 Hz


def test_gain_scales_and_clips():
    x = np.array([0.0, 0.1, -0.2, 0.5], dtype=np.float32)
    assert np.allclose(apply_gain(x, -6.0), x * 10 ** (-6 / 20))
    assert np.array_equal(apply_gain(x, 12.0), np.clip(x * 10**0.6, -1, 1))
    assert apply_gain(x, 12.0).max() == 1.0


def test_draws_follow_the_shares_and_the_seed():
    cfg = AugmentConfig(reverb=0.3, noise=0.6, telephone=0.1, gain=0.5, rir_pool=5)
    draws = [draw_augmentation(cfg, np.random.default_rng([SEED, i]), 50, i) for i in range(3000)]
    share = lambda pred: np.mean([pred(d) for d in draws])  # noqa: E731
    assert share(lambda d: d.rir is not None) == pytest.approx(0.3, abs=0.035)
    assert share(lambda d: d.noise_kind is not None) == pytest.approx(0.6, abs=0.035)
    assert share(lambda d: d.telephone) == pytest.approx(0.1, abs=0.02)
    assert share(lambda d: d.gain_db is not None) == pytest.approx(0.5, abs=0.035)
    assert {d.noise_kind for d in draws} == {None, "white", "pink", "brown", BABBLE}
    for i, d in enumerate(draws[:200]):
        assert d.rir is None or 0 <= d.rir < 5
        assert i not in d.babble_sources and len(set(d.babble_sources)) == len(d.babble_sources)
        if d.noise_kind == BABBLE:
            assert cfg.babble_talkers[0] <= len(d.babble_sources) <= cfg.babble_talkers[1]
    again = draw_augmentation(cfg, np.random.default_rng([SEED, 7]), 50, 7)
    assert again == draws[7]
    off = AugmentConfig()
    assert not off.enabled
    assert draw_augmentation(off, np.random.default_rng(SEED), 50, 0).describe() == "none"


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="share"):
        AugmentConfig(noise=1.5)
    with pytest.raises(ValueError, match="noise_kinds"):
        AugmentConfig(noise_kinds=("pink", "traffic"))
    with pytest.raises(ValueError, match="unknown fields"):
        AugmentConfig.from_any({"reverb": 0.5, "reverberation": 1})
    with pytest.raises(ValueError, match="min, max"):
        AugmentConfig(gain_db=(6, -6))


def test_apply_in_order_and_babble_needs_sources():
    rng = np.random.default_rng(SEED)
    x = speech_like(rng)
    assert np.array_equal(apply_augmentation(x, SR, Augmentation(), rng), x)
    with pytest.raises(ValueError, match="load_source"):
        apply_augmentation(x, SR, Augmentation(noise_kind=BABBLE, babble_sources=(1,)), rng)
    aug = Augmentation(noise_kind="white", snr_db=10.0, telephone=True, gain_db=-10.0)
    y = apply_augmentation(x, SR, aug, np.random.default_rng(SEED))
    spec = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    assert spec[freqs > 4000].sum() < 1e-3 * spec.sum()  # the noise went through the phone too
    assert np.abs(y).max() < np.abs(x).max()


def test_augment_manifest_writes_aligned_copies(corpus, tmp_path):
    manifest = corpus(n=6)
    cfg = AugmentConfig(
        reverb=1.0, noise=1.0, noise_kinds=(BABBLE,), rir_pool=2, babble_talkers=(1, 2)
    )
    out = augment_manifest(
        manifest, tmp_path / "aug" / "train.jsonl", cfg, seed=(SEED,), progress=False
    )
    src, dst = read_manifest(manifest), read_manifest(out)
    assert [u.id for u in dst] == [u.id for u in src]
    for a, b in zip(src, dst, strict=True):
        x, _ = sf.read(a.audio, dtype="float32")
        y, sr = sf.read(b.audio, dtype="float32")
        assert (
            sr == 16000 and len(x) == len(y) and b.duration == pytest.approx(a.duration, abs=1e-4)
        )
        assert b.audio.startswith(str(tmp_path / "aug" / "audio" / "train"))
        assert not np.allclose(x, y, atol=1e-3)
    again = augment_manifest(
        manifest, tmp_path / "again" / "train.jsonl", cfg, seed=(SEED,), progress=False
    )
    for a, b in zip(read_manifest(again), dst, strict=True):
        assert open(a.audio, "rb").read() == open(b.audio, "rb").read()


def test_data_loader_augments_training_audio_only(corpus, tmp_path):
    from asr.data.datamodule import ASRDataModule

    manifest = corpus(n=6)
    cfg = {"noise": 1.0, "noise_snr_db": [0, 5], "telephone": 1.0, "gain": 1.0}
    dm = ASRDataModule(
        train_manifest=str(manifest), val_manifest=str(manifest), tokenizer_kind="char",
        cmvn_path=str(tmp_path / "cmvn.json"), num_workers=0, max_batch_seconds=100.0,
        feature_cache_dir=str(tmp_path / "cache"), augment=cfg,
    )  # fmt: skip
    dm.setup("fit")

    def features(loader):
        return {i: f for b in loader for i, f in zip(b["ids"], b["features"], strict=True)}

    random.seed(SEED)
    train = features(dm.train_dataloader())
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    val = features(dm.val_dataloader())
    assert cached == []  # augmented features are never cached
    assert any(p.is_file() for p in (tmp_path / "cache").rglob("*"))  # clean ones are
    for uid in val:
        assert not torch.allclose(train[uid], val[uid], atol=1e-3)
    assert torch.equal(features(dm.val_dataloader())[uid], val[uid])
    random.seed(SEED)
    again = features(dm.train_dataloader())
    assert all(torch.equal(again[uid], train[uid]) for uid in train)
