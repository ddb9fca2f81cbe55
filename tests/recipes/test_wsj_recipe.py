"""recipes/wsj: the configs are the paper's setting and its baselines; RESULTS.md from run files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from asr.models import EncoderConfig

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "wsj"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def yaml_get():
    return _load("yaml_get", ROOT / "tools" / "yaml_get.py")


@pytest.fixture(scope="module")
def results():
    return _load("wsj_write_results", RECIPE / "local" / "write_results.py")


def _diff(a: dict, b: dict, prefix: str = "") -> set[str]:
    keys = set(a) | set(b)
    out = set()
    for k in keys:
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out |= _diff(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k):
            out.add(prefix + k)
    return out


def test_paper_config_is_the_papers_setting(yaml_get) -> None:
    cfg = yaml_get.load_config(RECIPE / "conf" / "paper.yaml")
    enc = EncoderConfig.from_dict(cfg["train"]["model"]["encoder"])
    layers = enc.transformer
    assert (layers.attention, layers.n_layers, layers.n_heads) == ("linear", 9, 6)
    assert enc.lstm is None
    assert cfg["tokenizer"]["kind"] == "phoneme"
    assert cfg["train"]["data"]["init_args"]["fbank"]["num_mel_bins"] == 40
    assert cfg["train"]["model"]["optimizer"]["name"] == "radam"
    assert cfg["train"]["model"]["optimizer"]["lr"] == pytest.approx(1e-4)
    sched = cfg["train"]["model"]["scheduler"]
    assert sched["kind"] == "plateau" and sched["plateau_factor"] == 0.5
    assert (cfg["data"]["train"], cfg["data"]["dev"], cfg["data"]["test"]) == (
        "train_si284",
        "test_dev93",
        "test_eval92",
    )


def test_baselines_change_only_the_encoder(yaml_get) -> None:
    paper = yaml_get.load_config(RECIPE / "conf" / "paper.yaml")
    softmax = yaml_get.load_config(RECIPE / "conf" / "paper_softmax.yaml")
    bilstm = yaml_get.load_config(RECIPE / "conf" / "paper_bilstm.yaml")
    assert _diff(paper, softmax) == {"train.model.encoder.transformer.attention"}
    assert _diff(paper, bilstm) == {
        "train.model.encoder.encoder_type",
        "train.model.encoder.transformer",
        "train.model.encoder.lstm",
        "train.model.optimizer.name",
        "train.model.optimizer.lr",
    }
    enc = EncoderConfig.from_dict(bilstm["train"]["model"]["encoder"])
    assert enc.transformer is None
    assert (enc.lstm.n_layers, enc.lstm.hidden_size) == (3, 320)
    # the front end stays the transformer's
    front = EncoderConfig.from_dict(paper["train"]["model"]["encoder"])
    for name in ("subsampling", "conv_channels", "d_model", "dropout"):
        assert getattr(enc, name) == getattr(front, name)
    assert bilstm["train"]["model"]["optimizer"] == {"name": "adam", "lr": 1e-3, "weight_decay": 0}


@pytest.mark.parametrize("name", ["cpu", "ci"])
def test_smaller_configs_keep_the_data_and_units(yaml_get, name) -> None:
    paper = yaml_get.load_config(RECIPE / "conf" / "paper.yaml")
    cfg = yaml_get.load_config(RECIPE / "conf" / f"{name}.yaml")
    assert cfg["tokenizer"] == paper["tokenizer"]
    assert cfg["train"]["data"]["init_args"]["fbank"] == {"num_mel_bins": 40}
    assert cfg["train"]["trainer"]["accelerator"] == "cpu"


def _package_with_bundle(path: Path, options: dict) -> None:
    """A tiny model package whose decoding bundle holds ``options`` (stage 4's output)."""
    from asr.bundle import write_bundle
    from asr.data.tokenizer import train_tokenizer
    from asr.features import FbankConfig
    from asr.models import CTCModel, TransformerConfig
    from asr.package import save_package

    tok = train_tokenizer("char", ["a b"])
    cfg = EncoderConfig(
        conv_channels=4, d_model=8, transformer=TransformerConfig(n_layers=1, n_heads=2, d_ff=16)
    )
    save_package(path, CTCModel(cfg, tok.vocab_size), cfg, tok, FbankConfig(), None, {})
    write_bundle(path, options=options)


def _fake_run(tmp: Path, config: str, per: float) -> tuple[Path, Path]:
    exp, data = tmp / "exp", tmp / "data"
    for split in ("test_dev93", "test_eval92"):
        for search, rate in (("greedy_phones", per), ("greedy", 0.3), ("beam_lm", 0.2)):
            d = exp / "score" / split / search
            d.mkdir(parents=True)
            summary = {"wer": rate, "cer": rate / 2, "utterances": 4, "words": {"n": 40}}
            (d / "summary.json").write_text(json.dumps(summary))
    data.mkdir()
    for split, seconds in (
        ("train_si284", 7200.0),
        ("test_dev93", 1800.0),
        ("test_eval92", 1800.0),
    ):
        row = {"id": "a", "audio": "a.wv1", "duration": seconds, "text": "x"}
        (data / f"{split}.jsonl").write_text(json.dumps(row) + "\n")
    (exp / "timing.tsv").write_text("0\tprep\t36\n3\ttrain\t6000\n4\tbundle\t5\n5\tdecode\t360\n")
    _package_with_bundle(exp / "model.safetensors", {"beam_size": 100, "lm_weight": 1.0})
    (exp / "csv").mkdir()  # Lightning's CSVLogger: train and validation rows interleaved
    (exp / "csv" / "metrics.csv").write_text(
        "epoch,step,train_loss,val_loss,val_per\n0,9,3.1,,\n0,19,,2.5,0.12\n1,39,,2.2,0.09\n"
    )
    return exp, data


def test_results_on_the_miniature_corpus_fill_no_paper_cell(results, tmp_path) -> None:
    exp, data = _fake_run(tmp_path, "conf/ci.yaml", 0.5)
    results.main(["--exp-dir", str(exp), "--data-dir", str(data), "--config",
                  str(RECIPE / "conf" / "ci.yaml"), "--corpus", "miniature",
                  "--splits", "test_dev93", "test_eval92",
                  "--searches", "greedy_phones", "greedy", "beam_lm"])  # fmt: skip
    text = (exp / "RESULTS.md").read_text()
    assert "Pipeline check on the miniature corpus" in text
    assert text.count(results.NOT_RUN) == 3 * 2 + 1  # three rows x (PER, s/epoch) + EESEN line
    assert "| test_dev93 | greedy_phones | PER | 50.00 |" in text
    assert "| LSH-4 (Reformer) | 9.33 | not implemented here | 2250 |" in text


def test_results_on_wsj_fill_the_row_of_the_config(results, tmp_path) -> None:
    exp, data = _fake_run(tmp_path, "conf/paper.yaml", 0.0812)
    results.main(["--exp-dir", str(exp), "--data-dir", str(data), "--config",
                  str(RECIPE / "conf" / "paper.yaml"), "--corpus", "wsj",
                  "--splits", "test_dev93", "test_eval92",
                  "--searches", "greedy_phones", "greedy", "beam_lm"])  # fmt: skip
    text = (exp / "RESULTS.md").read_text()
    assert "Pipeline check" not in text and results.NOT_RUN not in text
    assert "| linear transformer | 8.08 | 8.12 | 824 | 100 |" in text  # 6000 s / 60 epochs
    assert "| softmax transformer | 5.12 | see its own config" in text
    assert "eval92 WER 7.87%; ours (beam + LDC trigram, test_eval92): 20.00" in text
    assert "| 0 | prep | 36 | 12 s per hour prepared |" in text  # 36 s / 3 h
    assert "| 3 | train | 6000 | 50 s per training hour per epoch |" in text  # 6000 / (2 h x 60)
    assert "| 5 | decode | 360 | 360 s per hour decoded |" in text  # 360 s / (0.5 h + 0.5 h)
    assert "`asr-bundle show " in text and "beam_size 100, lm_weight 1.0;" in text
    assert "(test_dev93, greedy, `csv/metrics.csv`): val_per 0.0900." in text
