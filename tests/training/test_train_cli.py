"""asr-train end to end on a tiny on-disk corpus: YAML config, auto-resume, model package."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from real_data import write_corpus

from asr.package import load_package
from asr.train import build_cli, main


def _config(tmp: Path, paths: dict[str, str]) -> Path:
    cfg = {
        "model": {
            "encoder": {  # input_dim comes from data.init_args.fbank
                "subsampling": 4,
                "conv_channels": 4,
                "d_model": 16,
                "dropout": 0.0,
                "transformer": {"n_layers": 1, "n_heads": 2, "d_ff": 32},
            },
            "optimizer": {"name": "adam", "lr": 1e-3},
            "scheduler": {"kind": "cosine", "warmup_steps": 2},
        },
        "data": {
            "class_path": "asr.data.datamodule.ASRDataModule",
            "init_args": {
                "train_manifest": paths["train"],
                "val_manifest": paths["val"],
                "tokenizer_path": paths["tokenizer"],
                "cmvn_path": paths["cmvn"],
                "fbank": {"num_mel_bins": 20},
                "max_batch_seconds": 2.0,
                "num_workers": 0,
                "cmvn_workers": 1,
            },
        },
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": 1,
            "default_root_dir": str(tmp / "exp"),
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
        },
        "run": {"save_top_k": 2, "every_n_train_steps": 1, "package_average": 2},
    }
    path = tmp / "conf.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_asr_train_resumes_and_packages(tmp_path: Path) -> None:
    paths = write_corpus(tmp_path / "data")
    conf = _config(tmp_path, paths)
    main(["--config", str(conf)])
    exp = tmp_path / "exp"
    last = exp / "checkpoints" / "last.ckpt"
    step1 = torch.load(last, weights_only=True)["global_step"]
    assert step1 > 0 and (exp / "model.safetensors").is_file()
    # the step and validation callbacks share one last.ckpt: no stale last-v1.ckpt beside it
    assert [p.name for p in (exp / "checkpoints").glob("last*")] == ["last.ckpt"]
    assert list((exp / "csv").glob("**/metrics.csv")) and list(
        (exp / "tensorboard").glob("**/events*")
    )

    # a char model's validation error is a word error rate, and its checkpoints say so
    best = [p.name for p in (exp / "checkpoints").glob("epoch*.ckpt")]
    assert best and all("-val_wer" in name for name in best), best

    pkg = load_package(exp / "model.safetensors")
    assert pkg.model.config.input_dim == 20 == pkg.fbank_config.num_mel_bins
    assert pkg.frame_shift_s == pytest.approx(0.04)
    assert pkg.tokenizer.vocab_size == pkg.model.vocab_size
    wav = 0.1 * torch.randn(8000)
    feats = pkg.featurize(wav, 16000)
    lp, n = pkg.log_probs(feats[None], torch.tensor([feats.size(0)]))
    assert lp.shape == (1, int(n[0]), pkg.model.vocab_size) and not pkg.model.training
    assert pkg.metadata["averaged"] >= 1


def test_features_and_vocabulary_are_defined_once(tmp_path: Path, capsys) -> None:
    """The model's input_dim and tokenizer come from the data module, not a second setting."""
    paths = write_corpus(tmp_path / "data")
    conf = _config(tmp_path, paths)
    cli = build_cli(["--config", str(conf)])
    assert cli.model.encoder_config.input_dim == 20 == cli.datamodule.feature_dim
    assert cli.model.tokenizer is cli.datamodule.tokenizer
    assert cli.model.model.vocab_size == cli.datamodule.tokenizer.vocab_size
    assert cli.model.validation_metric == "val_wer"  # char tokenizer: the output is words
    with pytest.raises(SystemExit):  # a second definition is refused
        build_cli(["--config", str(conf), "--model.encoder.input_dim", "20"])
    assert 'Linked "model.encoder.input_dim" must be given via' in capsys.readouterr().err


@pytest.mark.slow
def test_rerunning_the_same_command_continues(tmp_path: Path) -> None:
    paths = write_corpus(tmp_path / "data")
    conf = _config(tmp_path, paths)
    main(["--config", str(conf)])
    last = tmp_path / "exp" / "checkpoints" / "last.ckpt"
    step1 = torch.load(last, weights_only=True)["global_step"]
    main(["--config", str(conf), "--trainer.max_epochs", "2"])  # same command + one more epoch
    step2 = torch.load(last, weights_only=True)["global_step"]
    assert step2 == 2 * step1  # continued where it stopped, did not start over


@pytest.mark.parametrize("native", [True, False])
def test_bf16_only_where_the_hardware_has_it(tmp_path: Path, monkeypatch, native: bool) -> None:
    """run.bf16_when_native trains in bf16-mixed on hardware with bf16 arithmetic and leaves
    trainer.precision alone elsewhere, where emulated bf16 would be slower than float32."""
    import asr.train

    monkeypatch.setattr(asr.train, "native_bf16", lambda accelerator: native)
    paths = write_corpus(tmp_path / "data")
    conf = _config(tmp_path, paths)
    cli = build_cli(["--config", str(conf), "--run.bf16_when_native", "true"])
    assert cli.trainer.precision == ("bf16-mixed" if native else "32-true")
    assert build_cli(["--config", str(conf)]).trainer.precision == "32-true"  # off by default


def test_native_bf16_reads_the_cpu_flags(monkeypatch) -> None:
    import asr.machine

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for flags, expected in (
        ({"avx512f"}, False),
        ({"avx512f", "avx512_bf16"}, True),
        ({"amx_bf16", "amx_tile"}, True),
        (set(), False),
    ):
        monkeypatch.setattr(asr.machine, "cpu_flags", lambda f=flags: frozenset(f))
        assert asr.machine.native_bf16("cpu") is expected
        assert asr.machine.native_bf16("auto") is expected
    assert asr.machine.native_bf16("gpu") is False  # asked for a GPU that is not there
