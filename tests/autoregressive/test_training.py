"""Training: a tiny model learns to copy; asr-train-ar trains, resumes exactly and packages."""

import json

import pytest
import torch
import yaml

from asr.autoregressive import ARConfig, CausalTransformer, token_log_prob
from asr.autoregressive import train as train_cli
from asr.autoregressive.cli import main as ar_main
from asr.autoregressive.data import CopyTask, CopyTaskDataset, collate_copy
from asr.autoregressive.evaluate import copy_accuracy
from asr.autoregressive.package import load_package

from .test_images import write_mnist


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["causal-linear", "causal-softmax"])
def test_tiny_model_learns_to_copy(attention):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: a second thread only adds synchronisation
    try:
        _learn_to_copy(attention)
    finally:
        torch.set_num_threads(threads)


def _learn_to_copy(attention: str) -> None:
    torch.manual_seed(0)
    task = CopyTask(max_symbols=5, n_symbols=4)
    cfg = ARConfig(
        vocab_size=task.vocab_size,
        max_len=task.max_len,
        d_model=32,
        n_layers=2,
        n_heads=4,
        d_ff=64,
        attention=attention,
        output="categorical",
    )
    model = CausalTransformer(cfg)
    before = copy_accuracy(model.eval(), task, 128, seed=1)["symbol_accuracy"]
    opt = torch.optim.RAdam(model.train().parameters(), lr=3e-3)
    data = CopyTaskDataset(task, 100_000, seed=0)
    for step in range(350):
        batch = collate_copy(task, [data[step * 32 + i] for i in range(32)])
        nll = -token_log_prob(
            model(batch["tokens"]), batch["tokens"], "categorical", cfg.vocab_size
        )
        loss = nll[batch["loss_mask"]].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = copy_accuracy(model.eval(), task, 128, seed=1)
    assert before < 0.5
    assert after["symbol_accuracy"] > 0.9, after


def copy_config(tmp_path, steps, every):
    config = {
        "seed_everything": 3,
        "model": {
            "model": {
                "vocab_size": 8,
                "max_len": 13,
                "d_model": 16,
                "n_layers": 1,
                "n_heads": 2,
                "d_ff": 32,
                "attention": "causal-linear",
                "output": "categorical",
            },
            "optimizer": {
                "name": "radam",
                "lr": 1e-3,
                "betas": [0.9, 0.999],
                "eps": 1e-8,
                "weight_decay": 0.0,
            },
            "lr_milestones": [4],
        },
        "data": {
            "class_path": "asr.autoregressive.data.datamodule.CopyTaskDataModule",
            "init_args": {
                "max_symbols": 6,
                "n_symbols": 6,
                "batch_size": 8,
                "train_sequences": 400,
                "val_sequences": 16,
            },
        },
        "trainer": {
            "max_steps": steps,
            "val_check_interval": 3,
            "check_val_every_n_epoch": None,
            "accelerator": "cpu",
            "devices": 1,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
        },
        "run": {"save_top_k": 1, "every_n_train_steps": every},
    }
    path = tmp_path / f"copy{steps}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_train_cli_resumes_exactly(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_cli.main(
        ["--config", str(copy_config(tmp_path, 10, 5)), "--trainer.default_root_dir", str(straight)]
    )
    train_cli.main(
        ["--config", str(copy_config(tmp_path, 5, 5)), "--trainer.default_root_dir", str(resumed)]
    )
    train_cli.main(
        ["--config", str(copy_config(tmp_path, 10, 5)), "--trainer.default_root_dir", str(resumed)]
    )
    a = _weights(straight / "checkpoints" / "last.ckpt")
    b = _weights(resumed / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_train_cli_packages_and_copy_eval(tmp_path, capsys):
    root = tmp_path / "run"
    train_cli.main(
        ["--config", str(copy_config(tmp_path, 6, 3)), "--trainer.default_root_dir", str(root)]
    )
    package = load_package(root / "model.safetensors")
    assert package.data == {"task": "copy", "max_symbols": 6, "n_symbols": 6, "min_symbols": 1}
    assert package.config.attention == "causal-linear" and package.metadata["global_step"] == 6
    assert not package.model.training
    out = tmp_path / "eval.json"
    assert (
        ar_main(["copy-eval", str(root / "model.safetensors"), "--num", "8", "--json", str(out)])
        == 0
    )
    result = json.loads(out.read_text())
    assert 0.0 <= result["symbol_accuracy"] <= 1.0 and result["mode"] == "linear_recurrent"
    png, csv = tmp_path / "curves.png", tmp_path / "curves.csv"
    metrics = root / "csv" / "metrics.csv"
    assert (
        ar_main(
            [
                "curves",
                "--run",
                f"a={metrics}",
                "--run",
                f"b={metrics}",
                "--png",
                str(png),
                "--csv",
                str(csv),
            ]
        )
        == 0
    )
    assert png.stat().st_size > 0 and csv.read_text().splitlines()[0] == "update,a,b"


def test_image_training_bpd_and_samples(tmp_path):
    data = write_mnist(tmp_path / "mnist", n_train=14, n_test=3)
    config = {
        "seed_everything": 1,
        "model": {
            "model": {
                "vocab_size": 256,
                "max_len": 784,
                "d_model": 8,
                "n_layers": 1,
                "n_heads": 2,
                "d_ff": 16,
                "attention": "causal-softmax",
                "n_mixtures": 2,
            }
        },
        "data": {
            "class_path": "asr.autoregressive.data.datamodule.ImageDataModule",
            "init_args": {
                "dataset": "mnist",
                "data_dir": str(data),
                "batch_size": 4,
                "val_images": 4,
            },
        },
        "trainer": {
            "max_steps": 2,
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "log_every_n_steps": 1,
        },
        "run": {"save_top_k": 1, "every_n_train_steps": None},
    }
    conf = tmp_path / "img.yaml"
    conf.write_text(yaml.safe_dump(config))
    root = tmp_path / "run"
    train_cli.main(["--config", str(conf), "--trainer.default_root_dir", str(root)])
    model = root / "model.safetensors"
    assert load_package(model).data["image_shape"] == [28, 28, 1]
    bpd = tmp_path / "bpd.json"
    assert ar_main(["bpd", str(model), "--data-dir", str(data), "--json", str(bpd)]) == 0
    result = json.loads(bpd.read_text())
    assert (
        result["sequences"] == 3 and result["dims"] == 3 * 784 and 0 < result["bits_per_dim"] < 12
    )
    grid = tmp_path / "grid.png"
    assert (
        ar_main(["sample", str(model), "--out", str(grid), "--num", "2", "--batch-size", "2"]) == 0
    )
    assert grid.stat().st_size > 0
    summary = tmp_path / "data.json"
    assert ar_main(["data", "mnist", "--data-dir", str(data), "--json", str(summary)]) == 0
    assert json.loads(summary.read_text())["test"] == {"images": 3, "shape": [28, 28, 1]}
    assert ar_main(["data", "cifar10", "--data-dir", str(tmp_path / "none")]) == 1
