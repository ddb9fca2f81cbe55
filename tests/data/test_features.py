"""Fbank, CMVN, SpecAugment, speed perturbation and the feature cache."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
import torchaudio.compliance.kaldi as kaldi

from asr.data.manifest import read_manifest
from asr.features import (
    VTLP,
    FbankConfig,
    FeatureCache,
    GlobalCMVN,
    SpecAugment,
    SpecAugmentConfig,
    compute_cmvn,
    fbank_features,
    speed_perturb,
)


def sine(freq: float, seconds: float, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    return 0.5 * torch.sin(2 * math.pi * freq * t)


def mel(f: float) -> float:
    return 1127.0 * math.log(1 + f / 700.0)


def test_fbank_shape_and_values_match_torchaudio() -> None:
    n = int(torch.randint(8000, 20000, ()).item())
    wav = torch.randn(n) * 0.1
    cfg = FbankConfig(num_mel_bins=40)
    feats = fbank_features(wav, 16000, cfg)
    assert feats.shape == (1 + (n - 400) // 160, 40)
    ref = kaldi.fbank(wav[None] * 32768, num_mel_bins=40, dither=0.0, energy_floor=0.0)
    torch.testing.assert_close(feats, ref)


def test_fbank_peak_is_in_the_mel_bin_of_the_tone() -> None:
    freq = float(torch.empty(()).uniform_(500, 5000))
    feats = fbank_features(sine(freq, 0.5), 16000, FbankConfig(num_mel_bins=80))
    peak = int(feats.mean(0).argmax())
    lo, hi = mel(20.0), mel(8000.0)
    centre = lo + (peak + 1) * (hi - lo) / 81
    assert abs(centre - mel(freq)) <= 1.01 * (hi - lo) / 81


def test_deltas_triple_the_dimension_and_config_round_trip() -> None:
    cfg = FbankConfig(num_mel_bins=23, deltas=True)
    feats = fbank_features(torch.randn(8000) * 0.1, 16000, cfg)
    assert feats.shape[1] == 69 == cfg.feature_dim
    assert FbankConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown FbankConfig"):
        FbankConfig.from_dict({"num_mel_bins": 80, "bogus": 1})


def test_utterance_mean_removes_a_fixed_colouring() -> None:
    wav = torch.randn(int(torch.randint(8000, 20000, ()).item())) * 0.1
    cfg = FbankConfig(num_mel_bins=40, utterance_mean=True)
    raw = fbank_features(wav, 16000, FbankConfig(num_mel_bins=40))
    feats = fbank_features(wav, 16000, cfg)
    torch.testing.assert_close(feats, raw - raw.mean(0))
    # a 2x louder copy is a constant log-mel offset: gone after the mean
    torch.testing.assert_close(fbank_features(2 * wav, 16000, cfg), feats, atol=1e-4, rtol=0)
    assert FbankConfig.from_dict(cfg.to_dict()) == cfg


def test_digest_of_settings_without_utterance_mean_is_unchanged() -> None:
    # digests of the commits before the switch existed: their feature caches stay valid
    assert FbankConfig().digest() == "c3276bbb60dc"
    assert FbankConfig(num_mel_bins=40, deltas=True).digest() == "2da38be1ffe5"
    assert FbankConfig(utterance_mean=True).digest() != FbankConfig().digest()


def test_fbank_rejects_wrong_rate_and_handles_short_input() -> None:
    with pytest.raises(ValueError, match="8000 Hz"):
        fbank_features(torch.randn(8000), 8000, FbankConfig())
    assert fbank_features(torch.randn(100), 16000, FbankConfig()).shape == (0, 80)


def test_cmvn_normalises_training_features_and_round_trips(corpus, tmp_path: Path) -> None:
    utts = read_manifest(corpus(6))
    cfg = FbankConfig(num_mel_bins=40)
    cmvn = compute_cmvn(utts, cfg)
    feats = torch.cat([cmvn(compute_feats(u, cfg)) for u in utts]).double()
    assert feats.mean(0).abs().max() < 1e-3
    assert (feats.std(0, unbiased=False) - 1).abs().max() < 1e-3
    threaded = compute_cmvn(utts, cfg, num_workers=2)
    torch.testing.assert_close(threaded.mean, cmvn.mean)
    cmvn.save(tmp_path / "cmvn.json")
    back = GlobalCMVN.load(tmp_path / "cmvn.json")
    assert torch.equal(back.mean, cmvn.mean) and torch.equal(back.std, cmvn.std)
    with pytest.raises(ValueError, match="dim"):
        cmvn(torch.zeros(3, 80))


def compute_feats(u, cfg: FbankConfig) -> torch.Tensor:
    from asr.audio import load_audio

    return fbank_features(load_audio(u.audio).waveform, 16000, cfg)


def test_cmvn_of_tensors_matches_direct_statistics() -> None:
    chunks = [torch.randn(int(torch.randint(5, 50, ())), 7) * 3 + 2 for _ in range(5)]
    cmvn = compute_cmvn(chunks, FbankConfig(num_mel_bins=7))
    allf = torch.cat(chunks).double()
    torch.testing.assert_close(cmvn.mean.double(), allf.mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(cmvn.std.double(), allf.std(0, unbiased=False), atol=1e-5, rtol=0)


def test_spec_augment_time_mask_bounded_by_fraction() -> None:
    t = int(torch.randint(100, 300, ()))
    aug = SpecAugment(
        SpecAugmentConfig(freq_masks=0, time_masks=1, time_width=1000, max_time_fraction=0.1)
    )
    for _ in range(20):
        out = aug(torch.ones(t, 20))
        masked_frames = int((out == 0).all(1).sum())
        assert masked_frames <= int(0.1 * t)
        assert out.shape == (t, 20)


def test_spec_augment_freq_masks_whole_bands() -> None:
    aug = SpecAugment({"freq_masks": 1, "freq_width": 10, "time_masks": 0})
    hits = 0
    for _ in range(20):
        out = aug(torch.ones(50, 40))
        zero_bins = (out == 0).all(0)
        assert int(zero_bins.sum()) < 10
        assert int((out == 0).sum()) == int(zero_bins.sum()) * 50  # bands, never partial
        hits += int(zero_bins.any())
    assert hits > 0


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturb_changes_length_and_pitch(factor: float) -> None:
    wav = sine(1000.0, 1.0)
    out = speed_perturb(wav, factor)
    assert abs(out.numel() - 16000 / factor) <= 2
    spec = torch.fft.rfft(out * torch.hann_window(out.numel())).abs()
    assert abs(float(spec.argmax()) * 16000 / out.numel() - 1000 * factor) < 5
    assert speed_perturb(wav, 1.0) is wav


def test_vtlp_warp_moves_a_tone_across_bins_and_keeps_the_frames() -> None:
    wav = sine(2000.0, 1.0)
    cfg = FbankConfig(num_mel_bins=40)
    plain = fbank_features(wav, 16000, cfg)
    torch.testing.assert_close(fbank_features(wav, 16000, cfg, vtln_warp=1.0), plain)
    peaks = {}
    for warp in (0.9, 1.1):
        feats = fbank_features(wav, 16000, cfg, vtln_warp=warp)
        assert feats.shape == plain.shape
        peaks[warp] = int(feats.mean(0).argmax())
    # a factor above 1 raises the formants (a shorter vocal tract), below 1 lowers them
    assert peaks[0.9] < int(plain.mean(0).argmax()) < peaks[1.1]


def test_vtlp_config_checks_its_range_and_draws_inside_it() -> None:
    assert VTLP.from_any(None) is None
    vtlp = VTLP.from_any([0.85, 1.15])
    assert vtlp == VTLP(0.85, 1.15)
    rng = random.Random(0)
    draws = [vtlp.draw(rng) for _ in range(200)]
    assert all(0.85 <= d <= 1.15 for d in draws) and max(draws) - min(draws) > 0.2
    for bad in ([1.1, 0.9], [0.3, 1.0], [1.0, 2.5]):
        with pytest.raises(ValueError, match="VTLP range"):
            VTLP.from_any(bad)


def test_feature_cache_round_trip_keyed_by_config(tmp_path: Path) -> None:
    feats = torch.randn(10, 80)
    a = FeatureCache(tmp_path, FbankConfig())
    b = FeatureCache(tmp_path, FbankConfig(num_mel_bins=40))
    assert a.get("u1") is None
    a.put("u1", feats)
    assert torch.equal(a.get("u1"), feats)
    assert b.get("u1") is None
    with pytest.raises(ValueError, match="dither"):
        FeatureCache(tmp_path, FbankConfig(dither=1.0))


def test_cli_cmvn_writes_statistics(corpus, tmp_path: Path) -> None:
    from asr.data.cli import main

    m = corpus(4)
    out = tmp_path / "stats" / "cmvn.json"
    assert main(["cmvn", "--manifest", str(m), "--out", str(out), "--num-mel-bins", "30"]) == 0
    cmvn = GlobalCMVN.load(out)
    direct = compute_cmvn(read_manifest(m), FbankConfig(num_mel_bins=30))
    torch.testing.assert_close(cmvn.mean, direct.mean)
