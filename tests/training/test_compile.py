"""torch.compile for training and decoding: the compiled model gives the eager model's results.

Slow: inductor compiles each new shape (tens of seconds on 2 cores)."""

from __future__ import annotations

import random

import pytest
import torch

from asr.inference import DecodeOptions, Transcriber
from asr.lightning import CTCLightningModule
from asr.models import EncoderConfig, TransformerConfig
from asr.package import load_package

pytestmark = pytest.mark.slow


def _module(compile: bool) -> CTCLightningModule:
    torch.manual_seed(0)
    layers = TransformerConfig(n_layers=1, n_heads=2, d_ff=32)
    cfg = EncoderConfig(input_dim=20, conv_channels=4, d_model=16, dropout=0.0, transformer=layers)
    return CTCLightningModule(cfg, vocab_size=7, compile=compile)


def test_compiled_training_steps_follow_eager():
    feats = torch.randn(2, 120, 20)
    batch = {
        "features": feats,
        "feature_lengths": torch.tensor([120, 93]),
        "targets": torch.randint(1, 7, (2, 5)),
        "target_lengths": torch.tensor([5, 4]),
    }
    losses = {}
    for compiled in (False, True):
        module = _module(compiled)
        assert (module.model.encoder.layers[0]._compiled_call_impl is not None) == compiled
        opt = torch.optim.Adam(module.parameters(), lr=1e-2)
        losses[compiled] = []
        for _ in range(3):
            loss, _, _ = module.ctc_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses[compiled].append(loss.item())
        names = list(module.state_dict())
        assert all("_orig_mod" not in n for n in names)  # checkpoints look the same
    for a, b in zip(losses[True], losses[False], strict=True):
        assert abs(a - b) <= 1e-4 * abs(b)


def test_compiled_decoding_gives_eager_log_probs(tmp_path):
    from tests.decoding.packages import tiny_package_with_lm

    path = tiny_package_with_lm(tmp_path, random.Random(0), ["cat", "dog", "bird"])
    waves = [0.1 * torch.randn(n) for n in (16000, 11000)]
    results = {}
    for compiled in (False, True):
        pkg = load_package(path)
        transcriber = Transcriber(pkg, DecodeOptions(compile=compiled))
        assert (pkg.model.encoder.layers[0]._compiled_call_impl is not None) == compiled
        results[compiled] = [transcriber.log_probs([pkg.featurize(w, 16000)]) for w in waves]
    for (a, na), (b, nb) in zip(results[True], results[False], strict=True):
        assert torch.equal(na, nb) and torch.allclose(a, b, atol=1e-5)
