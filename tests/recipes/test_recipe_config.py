"""Recipe configs: ``extends:`` overlays merge key by key, and every shipped config loads."""

import importlib.util
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    "config", sorted((ROOT / "recipes").glob("*/conf/*.yaml")), ids=lambda p: p.name
)
def test_shipped_configs_load(yaml_get, config):
    cfg = yaml_get.load_config(config)
    assert cfg, f"{config} is empty"
