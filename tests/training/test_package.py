"""Model packages round-trip exactly; checkpoint averaging is the element-wise mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from asr.averaging import average_checkpoints, average_state_dicts
from asr.data.tokenizer import train_tokenizer
from asr.features import FbankConfig, GlobalCMVN, fbank_features
from asr.models import CTCModel, encoder_preset
from asr.package import load_package, save_package


@pytest.mark.parametrize("kind", ["linear", "softmax", "lstm"])
def test_package_round_trip_gives_identical_outputs(tmp_path: Path, kind: str) -> None:
    torch.manual_seed(0)
    tok = train_tokenizer("char", ["hello world", "abc def"], None)
    over = {"encoder_type": "lstm"} if kind == "lstm" else {"attention": kind}
    cfg = encoder_preset("tiny", input_dim=20, **over)
    model = CTCModel(cfg, tok.vocab_size).eval()
    fb = FbankConfig(num_mel_bins=20)
    cmvn = GlobalCMVN(torch.randn(20), torch.rand(20) + 0.5)
    path = save_package(tmp_path / "m.safetensors", model, cfg, tok, fb, cmvn, {"epoch": 3})

    with safe_open(str(path), framework="pt") as f:  # one file, JSON metadata, no pickle
        meta = f.metadata()
    assert json.loads(meta["model_config"])["encoder"]["attention"] == cfg.attention

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


def test_load_package_rejects_other_files(tmp_path: Path) -> None:
    from safetensors.torch import save_file

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
