"""Recipe configs: ``extends:`` overlays merge key by key, and every shipped config builds."""

import importlib.util
import sys
from pathlib import Path

import lightning as L
import pytest
import yaml

from asr.data.datamodule import ASRDataModule
from asr.data.synth import SynthConfig
from asr.data.wsj import SPLITS
from asr.features import as_fbank_config
from asr.inference.transcriber import DecodeOptions
from asr.lightning import CTCLightningModule
from asr.models import EncoderConfig
from asr.train import ASRTrainCLI

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def yaml_get():
    spec = importlib.util.spec_from_file_location("yaml_get", ROOT / "tools" / "yaml_get.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["yaml_get"] = module
    spec.loader.exec_module(module)
    return module


def test_extends_merges_nested_keys_and_replaces_the_rest(yaml_get, tmp_path):
    (tmp_path / "base.yaml").write_text(
        "train:\n  model:\n    encoder: {attention: linear, d_model: 192}\n  epochs: 3\n"
        "decode: {beam_size: 50, lists: [1, 2]}\n"
    )
    (tmp_path / "child.yaml").write_text(
        "extends: base.yaml\ntrain:\n  model:\n    encoder: {attention: softmax}\n"
        "decode: {lists: [3]}\n"
    )
    cfg = yaml_get.load_config(tmp_path / "child.yaml")
    assert cfg["train"]["model"]["encoder"] == {"attention": "softmax", "d_model": 192}
    assert cfg["train"]["epochs"] == 3
    assert cfg["decode"] == {"beam_size": 50, "lists": [3]}
    assert "extends" not in cfg


def test_extends_cycle_is_an_error(yaml_get, tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nx: 1\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\ny: 2\n")
    with pytest.raises(ValueError, match="cycle"):
        yaml_get.load_config(tmp_path / "a.yaml")


def test_cli_reads_values_and_sections_through_extends(yaml_get, tmp_path, capsys):
    (tmp_path / "base.yaml").write_text("train: {a: 1, b: 2}\nlm: {order: 3}\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\ntrain: {b: 5}\n")
    assert yaml_get.main([str(tmp_path / "child.yaml"), "lm.order"]) == 0
    assert capsys.readouterr().out.strip() == "3"
    out = tmp_path / "train.yaml"
    assert yaml_get.main([str(tmp_path / "child.yaml"), "--section", "train", str(out)]) == 0
    assert out.read_text() == "a: 1\nb: 5\n"


class _ParseOnly(ASRTrainCLI):
    """asr-train's parser and checks, without building the data module, model or trainer."""

    def instantiate_classes(self) -> None:
        pass


# The autoregressive recipes train with asr-train-ar, not asr-train: their configs are checked
# by tests/autoregressive/test_recipe_configs.py.
AUTOREGRESSIVE_RECIPES = {"copy", "mnist", "cifar10"}
SHIPPED = sorted(
    p
    for p in (ROOT / "recipes").glob("*/conf/*.yaml")
    if p.parent.parent.name not in AUTOREGRESSIVE_RECIPES
)


def test_every_recipe_ships_configs():
    recipes = {p.parent.parent.name for p in SHIPPED}
    assert {"synth", "wsj"} <= recipes


def _check_corpus_section(recipe: str, cfg: dict) -> None:
    """What stage 0 reads: recipes/synth's SynthConfig, recipes/wsj's splits and options."""
    if recipe == "synth":
        SynthConfig(**cfg["corpus"])
    elif recipe == "wsj":
        data = cfg["data"]
        assert {data["train"], data["dev"], data["test"]} <= set(SPLITS)
        assert data["verbalized_punctuation"] in ("keep", "drop")
        assert int(data["jobs"]) >= 1
        assert cfg["lm"]["vocabulary"] in ("closed", "open") and cfg["lm"]["name"]
    else:
        pytest.fail(f"recipes/{recipe}: no check of what its stage 0 reads; add one here")


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_shipped_configs_load(yaml_get, config, tmp_path):
    """Every section a recipe stage reads builds: the corpus (stage 0), the training config as
    asr-train parses it with the paths the training stage adds (data module, encoder,
    optimiser, trainer, run options), the features stage 1 computes CMVN for, and the
    decoding options and the grid the decoding-bundle stage tunes them on."""
    cfg = yaml_get.load_config(config)
    _check_corpus_section(config.parent.parent.name, cfg)
    DecodeOptions.from_flat(**(cfg.get("decode") or {}))
    tune = cfg.get("tune") or {}
    assert set(tune) <= {"enabled", "lm_weights", "word_scores"}, f"{config}: tune: {tune}"
    if tune.get("enabled"):
        assert all(isinstance(v, (int, float)) for v in tune["lm_weights"] + tune["word_scores"])

    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg["train"]))
    stage4 = ["--trainer.default_root_dir", str(tmp_path / "exp")]
    for key in ("train_manifest", "val_manifest", "tokenizer_path", "cmvn_path"):
        stage4 += [f"--data.{key}", str(tmp_path / key)]
    cli = _ParseOnly(
        CTCLightningModule,
        L.LightningDataModule,
        subclass_mode_data=True,
        run=False,
        args=["--config", str(tmp_path / "train.yaml"), *stage4],
    )
    data = cli.config["data"]
    assert data["class_path"] == "asr.data.datamodule.ASRDataModule"
    dm = ASRDataModule(**data["init_args"].as_dict())
    assert dm.fbank == as_fbank_config(yaml_get.lookup(cfg, "train.data.init_args.fbank"))

    encoder = {**cfg["train"]["model"]["encoder"], "input_dim": dm.feature_dim}
    enc = EncoderConfig.from_dict(encoder)
    assert enc.section is not None and enc.to_dict()[enc.encoder_type] is not None
    assert cli.config["run"]["package_average"] <= cli.config["run"]["save_top_k"]
