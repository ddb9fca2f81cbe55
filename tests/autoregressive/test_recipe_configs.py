"""Every autoregressive recipe config builds a model that fits its data (a dry run of each)."""

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

from asr.autoregressive import ARConfig
from asr.lightning import OptimizerConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    p
    for recipe in ("copy", "mnist", "cifar10")
    for p in (ROOT / "recipes" / recipe / "conf").glob("*.yaml")
)


@pytest.fixture(scope="module")
def yaml_get():
    spec = importlib.util.spec_from_file_location("yaml_get", ROOT / "tools" / "yaml_get.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["yaml_get"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_config_builds_a_model_that_fits_its_data(yaml_get, path):
    cfg = yaml_get.load_config(path)
    train = cfg["train"]
    model = ARConfig.from_dict(train["model"]["model"])
    OptimizerConfig(**train["model"].get("optimizer", {}))
    module_name, _, class_name = train["data"]["class_path"].rpartition(".")
    data_cls = getattr(importlib.import_module(module_name), class_name)
    init = dict(train["data"].get("init_args", {}))
    if class_name == "ImageDataModule":
        init["dataset"] = cfg["dataset"]
    data = data_cls(**init)
    assert model.vocab_size == data.vocab_size
    assert model.max_len >= data.max_len
    assert set(cfg["models"]) <= {"causal-linear", "causal-softmax"}
