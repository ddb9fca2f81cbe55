"""Incremental fbank: every frame bit-identical to the whole-waveform fbank, any chunking."""

import random

import pytest
import torch

from asr.features import FbankConfig, GlobalCMVN, fbank_features
from asr.stream import StreamingFbank


def _stream(fb: StreamingFbank, wav: torch.Tensor, sizes) -> torch.Tensor:
    out, at = [], 0
    while at < wav.numel():
        n = sizes()
        out.append(fb.accept(wav[at : at + n]))
        at += n
    return torch.cat(out)


@pytest.mark.parametrize(
    "chunking",
    ["1 sample", "10 ms", "160 ms", "random"],
)
def test_streamed_frames_equal_the_whole_waveform_fbank(chunking: str) -> None:
    seconds = 1.0 if chunking == "1 sample" else 4.0
    wav = 0.1 * torch.randn(int(16000 * seconds) + random.randint(0, 400))
    cfg = FbankConfig(num_mel_bins=random.choice([23, 80]))
    cmvn = GlobalCMVN(torch.randn(cfg.feature_dim), torch.rand(cfg.feature_dim) + 0.5)
    sizes = {
        "1 sample": lambda: 1,
        "10 ms": lambda: 160,
        "160 ms": lambda: 2560,
        "random": lambda: random.randint(1, 6000),
    }[chunking]
    got = _stream(StreamingFbank(cfg, cmvn), wav, sizes)
    ref = cmvn(fbank_features(wav, 16000, cfg))
    assert got.shape == ref.shape
    assert torch.equal(got, ref), f"max difference {(got - ref).abs().max():.3e}"


def test_reset_starts_a_new_stream() -> None:
    fb = StreamingFbank(FbankConfig(num_mel_bins=23))
    wav = 0.1 * torch.randn(8000)
    first = fb.accept(wav)
    fb.accept(0.1 * torch.randn(777))
    fb.reset()
    assert torch.equal(fb.accept(wav), first)


def test_deltas_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="deltas: false"):
        StreamingFbank(FbankConfig(deltas=True))


def test_utterance_mean_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="utterance_mean: false"):
        StreamingFbank(FbankConfig(utterance_mean=True))
