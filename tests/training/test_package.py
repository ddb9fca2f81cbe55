"""Model packages round-trip exactly; checkpoint averaging is the element-wise mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from asr.averaging import average_checkpoints, average_state_dicts
from asr.data.tokenizer import train_tokenizer
from asr.features import FbankConfig, GlobalCMVN, fbank_features
from asr.models import CTCModel, EncoderConfig, LSTMConfig, TransformerConfig
from asr.package import load_package, package_from_checkpoints, save_package


def _tiny(kind: str) -> EncoderConfig:
    """A tiny encoder over 20-dim features: ``linear``/``softmax`` transformer or ``lstm``."""
    common = dict(input_dim=20, conv_channels=8, d_model=32, dropout=0.0)
    if kind == "lstm":
        return EncoderConfig(
            encoder_type="lstm", lstm=LSTMConfig(hidden_size=16, n_layers=1), **common
        )
    layers = TransformerConfig(n_layers=2, n_heads=2, d_ff=64, attention=kind)
    return EncoderConfig(transformer=layers, **common)


@pytest.mark.parametrize("kind", ["linear", "softmax", "lstm"])
def test_package_round_trip_gives_identical_outputs(tmp_path: Path, kind: str) -> None:
    torch.manual_seed(0)
    tok = train_tokenizer("char", ["hello world", "abc def"], None)
    cfg = _tiny(kind)
    model = CTCModel(cfg, tok.vocab_size).eval()
    fb = FbankConfig(num_mel_bins=20)
    cmvn = GlobalCMVN(torch.randn(20), torch.rand(20) + 0.5)
    path = save_package(tmp_path / "m.safetensors", model, cfg, tok, fb, cmvn, {"epoch": 3})

    with safe_open(str(path), framework="pt") as f:  # one file, JSON metadata, no pickle
        meta = f.metadata()
    assert json.loads(meta["model_config"])["encoder"] == cfg.to_dict()

    pkg = load_package(path)
    assert not pkg.model.training and pkg.metadata == {"epoch": 3}
    assert pkg.tokenizer.tokens == tok.tokens and pkg.fbank_config == fb
    torch.testing.assert_close(pkg.cmvn.mean, cmvn.mean)
    assert pkg.frame_shift_s == pytest.approx(0.01 * cfg.subsampling)
    x, n = torch.randn(2, 60, 20), torch.tensor([60, 41])
    with torch.no_grad():
        ref = model(x, n)
    got = pkg.log_probs(x, n)
    assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
    wav = 0.1 * torch.randn(8000)
    feats = pkg.featurize(wav, 16000)
    torch.testing.assert_close(feats, cmvn(fbank_features(wav, 16000, fb)))


@pytest.mark.parametrize("kind", ["linear", "lstm"])
def test_packages_with_the_pre_split_flat_config_still_load(tmp_path: Path, kind: str) -> None:
    """Packages written before the per-encoder sections hold a flat encoder dict."""
    torch.manual_seed(0)
    tok = train_tokenizer("char", ["hello world"], None)
    cfg = _tiny(kind)
    model = CTCModel(cfg, tok.vocab_size).eval()
    path = save_package(tmp_path / "m.safetensors", model, cfg, tok, FbankConfig(20), None)
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    meta["model_config"] = json.dumps({"encoder": _flat(cfg), "vocab_size": tok.vocab_size})
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata=meta)

    pkg = load_package(old)
    assert pkg.model.config == cfg
    x, n = torch.randn(2, 50, 20), torch.tensor([50, 33])
    with torch.no_grad():
        ref = model(x, n)
    assert torch.equal(pkg.log_probs(x, n)[0], ref[0])


def _flat(cfg: EncoderConfig) -> dict:
    """``cfg`` in the flat layout of checkpoints and packages written before the sections."""
    section = cfg.to_dict().pop(cfg.encoder_type)
    flat = {k: v for k, v in cfg.to_dict().items() if k != cfg.encoder_type}
    if cfg.encoder_type == "lstm":  # every old dict had both types' keys, the unused at defaults
        flat.update(lstm_hidden=section["hidden_size"], lstm_layers=section["n_layers"])
        flat.update(n_layers=6, n_heads=4, d_ff=1024, attention="linear", feature_map="elu")
        flat.update(positional="sinusoidal", conv_pos_kernel=31, attention_dropout=0.0)
    else:
        flat.update(section, lstm_hidden=320, lstm_layers=3)
    return flat


def test_checkpoints_with_the_pre_split_flat_config_still_load(tmp_path: Path) -> None:
    """A Lightning checkpoint written before the sections: packaged, and rebuilt as a module."""
    from asr.lightning import CTCLightningModule

    torch.manual_seed(0)
    tok = train_tokenizer("char", ["hello world"], None)
    cfg = _tiny("lstm")
    module = CTCLightningModule(encoder=cfg, tokenizer=tok)
    hparams = {**dict(module.hparams), "encoder": _flat(cfg)}
    state = {f"model.{k}": v for k, v in module.model.state_dict().items()}
    ckpt = {"state_dict": state, "hyper_parameters": hparams, "tokenizer": tok.to_dict()}
    torch.save({**ckpt, "global_step": 7, "epoch": 1}, tmp_path / "old.ckpt")

    pkg = load_package(
        package_from_checkpoints(tmp_path / "m.safetensors", [tmp_path / "old.ckpt"], None, None)
    )
    assert pkg.model.config == cfg and pkg.metadata["global_step"] == 7
    x, n = torch.randn(1, 40, 20), torch.tensor([40])
    with torch.no_grad():
        assert torch.equal(pkg.log_probs(x, n)[0], module.model.eval()(x, n)[0])
    rebuilt = CTCLightningModule(**{**hparams, "tokenizer": tok})
    assert rebuilt.encoder_config == cfg


def test_load_package_rejects_other_files(tmp_path: Path) -> None:
    save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ValueError, match="not a model package"):
        load_package(tmp_path / "x.safetensors")
    with pytest.raises(FileNotFoundError, match="nope"):
        load_package(tmp_path / "nope.safetensors")


def test_average_checkpoints_is_the_mean(tmp_path: Path) -> None:
    sds = []
    for i in range(3):
        sd = {"w": torch.randn(4, 3), "b": torch.randn(3).half(), "count": torch.tensor(i)}
        sds.append(sd)
        torch.save({"state_dict": sd, "epoch": i}, tmp_path / f"{i}.ckpt")
    avg = average_checkpoints([tmp_path / f"{i}.ckpt" for i in range(3)])
    torch.testing.assert_close(avg["w"], (sds[0]["w"] + sds[1]["w"] + sds[2]["w"]) / 3)
    assert avg["b"].dtype == torch.float16
    assert int(avg["count"]) == 2  # integer buffers come from the last checkpoint
    with pytest.raises(ValueError, match="different keys"):
        average_state_dicts([{"w": torch.zeros(1)}, {"v": torch.zeros(1)}])
