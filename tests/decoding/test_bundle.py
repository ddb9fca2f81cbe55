"""Decoding bundles: a package that carries its lexicon, LM and tuned weights decodes to words
by itself; every override still works; old packages and damaged bundles behave."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file

import asr.inference.cli
import asr.inference.transcriber
from asr.bundle import BundleError, read_bundle, write_bundle
from asr.bundle import main as bundle_main
from asr.inference import DecodeOptions, options_for_model, transcribe
from asr.inference.cli import main as decode_main
from asr.package import load_package

from .packages import tiny_package_with_lm

WORDS = ["hello", "world", "the", "cat", "sat", "on", "mat"]
TUNED = {"lm_weight": 3.5, "word_score": 1.25, "beam_size": 12}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASR_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def plain(tmp_path, rng):
    """A tiny char model package without a bundle, plus an LM and a lexicon for it."""
    return tiny_package_with_lm(tmp_path, rng, WORDS)


@pytest.fixture
def bundled(tmp_path, plain):
    out = tmp_path / "bundled.safetensors"
    assert write_bundle(plain, tmp_path / "lexicon.txt", tmp_path / "lm.arpa", TUNED, out=out)
    return out


def _wav(path, seconds=1.0):
    sf.write(path, (0.1 * np.random.randn(int(16000 * seconds))).astype(np.float32), 16000)
    return path


def test_round_trip_keeps_the_model_and_the_files(tmp_path, plain, bundled):
    a, b = load_package(plain), load_package(bundled)
    assert b.metadata == a.metadata and b.tokenizer.tokens == a.tokenizer.tokens
    for (ka, va), (kb, vb) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert ka == kb and torch.equal(va, vb)
    bundle = read_bundle(bundled)
    assert bundle is not None and read_bundle(plain) is None
    assert bundle.options == {**TUNED, "search": "beam"}
    for member, source in (("lexicon", "lexicon.txt"), ("lm", "lm.arpa")):
        extracted = bundle.member_path(member)
        assert extracted.read_bytes() == (tmp_path / source).read_bytes()
        assert extracted.is_relative_to(tmp_path / "cache") and extracted.name == source
    # compressed inside the package: smaller than the files it carries
    added = bundled.stat().st_size - plain.stat().st_size
    assert added < 0.6 * sum((tmp_path / f).stat().st_size for f in ("lexicon.txt", "lm.arpa"))


def test_rewriting_the_same_bundle_leaves_the_file_alone(tmp_path, bundled):
    before = bundled.stat().st_mtime_ns
    assert not write_bundle(bundled, tmp_path / "lexicon.txt", tmp_path / "lm.arpa", TUNED)
    assert bundled.stat().st_mtime_ns == before
    assert write_bundle(bundled, tmp_path / "lexicon.txt", tmp_path / "lm.arpa", {"lm_weight": 1})
    assert read_bundle(bundled).options == {"lm_weight": 1, "search": "beam"}


def test_default_search_comes_from_the_bundle(tmp_path, bundled):
    opts = options_for_model(bundled, {})
    assert opts.search == "beam"
    assert (opts.beam.lm_weight, opts.beam.word_score, opts.beam.beam_size) == (3.5, 1.25, 12)
    assert open(opts.lexicon, "rb").read() == (tmp_path / "lexicon.txt").read_bytes()
    assert open(opts.lm, "rb").read() == (tmp_path / "lm.arpa").read_bytes()
    # and it really decodes (flashlight reads the extracted files)
    wavs = [_wav(tmp_path / f"u{i}.wav", 0.5 + i) for i in range(2)]
    out = tmp_path / "hyp.jsonl"
    assert decode_main([str(bundled), *map(str, wavs), "-o", str(out), "--no-progress"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["u0", "u1"]
    assert all(w in WORDS for r in rows for w in r["text"].split())  # lexicon words only


@pytest.fixture
def captured(monkeypatch):
    """The options asr-decode and asr.transcribe end up decoding with."""
    seen: list[DecodeOptions] = []

    def fake_iter(model, paths, options, **kwargs):
        seen.append(options)
        return iter(())

    monkeypatch.setattr(asr.inference.cli, "iter_transcribe", fake_iter)
    monkeypatch.setattr(asr.inference.transcriber, "iter_transcribe", fake_iter)
    return seen


def _cli_options(captured, model, *flags) -> DecodeOptions:
    assert decode_main([str(model), "a.wav", "--no-progress", *flags]) == 0
    return captured[-1]


def test_each_override_wins_over_the_bundle(tmp_path, bundled, captured):
    base = _cli_options(captured, bundled)
    assert base.search == "beam" and base.beam.lm_weight == 3.5 and base.lexicon and base.lm

    greedy = _cli_options(captured, bundled, "--search", "greedy")
    assert greedy.search == "greedy" and greedy.lexicon == base.lexicon  # words by lookup

    no_lm = _cli_options(captured, bundled, "--lm", "none")
    assert no_lm.lm is None and no_lm.lexicon == base.lexicon and no_lm.search == "beam"

    other = tmp_path / "other.arpa"
    other.write_text((tmp_path / "lm.arpa").read_text())
    swapped = _cli_options(captured, bundled, "--lm", str(other), "--lexicon", "lex2.txt")
    assert swapped.lm == str(other) and swapped.lexicon == "lex2.txt"

    # a flag equal to the built-in default still counts as given
    weights = _cli_options(captured, bundled, "--lm-weight", "2.0", "--beam-size", "3")
    assert (weights.beam.lm_weight, weights.beam.beam_size) == (2.0, 3)
    assert weights.beam.word_score == 1.25  # the rest stays the bundle's

    conf = tmp_path / "d.yaml"
    conf.write_text("word_score: -0.5\n")
    from_file = _cli_options(captured, bundled, "--config", str(conf))
    assert from_file.beam.word_score == -0.5 and from_file.beam.lm_weight == 3.5

    units = _cli_options(captured, bundled, "--units")
    assert units.units and units.search == "greedy" and units.lexicon is None and units.lm is None
    assert units.beam.lm_weight == DecodeOptions().beam.lm_weight


def test_transcribe_layers_the_same_way(bundled, captured):
    transcribe(bundled, "a.wav")
    assert captured[-1].search == "beam" and captured[-1].beam.word_score == 1.25
    transcribe(bundled, "a.wav", lm_weight=0.5, search="greedy")
    assert captured[-1].beam.lm_weight == 0.5 and captured[-1].search == "greedy"
    transcribe(bundled, "a.wav", options=DecodeOptions(units=True))
    assert captured[-1].lexicon is None and captured[-1].search == "greedy"
    transcribe(load_package(bundled), "a.wav")  # a loaded package knows its file
    assert captured[-1].search == "beam"


def test_old_packages_decode_as_before(tmp_path, plain, capsys):
    assert options_for_model(plain, {}) == DecodeOptions()
    wav = _wav(tmp_path / "u.wav")
    out = tmp_path / "hyp.txt"
    assert decode_main([str(plain), str(wav), "-o", str(out)]) == 0
    assert "bundle" not in capsys.readouterr().err
    (result,) = transcribe(plain, wav)
    assert result.error is None
    greedy = transcribe(plain, wav, search="greedy")[0]
    assert result.text == greedy.text and out.read_text().startswith("u")


def _rewrite(path, drop=(), corrupt=(), meta_update=None):
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k).clone() for k in f.keys() if k not in drop}  # noqa: SIM118
    for key in corrupt:
        t = tensors[key]
        t[len(t) // 3 : len(t) // 3 + 64] ^= 0x5A
    meta.update(meta_update or {})
    save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ({"drop": ["decoding.lm"]}, "member 'lm' is damaged: the tensor 'decoding.lm' is missing"),
        ({"corrupt": ["decoding.lm"]}, "member 'lm' is damaged"),
        ({"corrupt": ["decoding.lexicon"]}, "member 'lexicon' is damaged"),
        ({"meta_update": {"decoding": "{not json"}}, "metadata is unreadable"),
    ],
)
def test_damaged_bundle_is_one_clear_line(tmp_path, bundled, capsys, damage, expected):
    _rewrite(bundled, **damage)
    wav = _wav(tmp_path / "u.wav")
    assert decode_main([str(bundled), str(wav), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bundled) in err[0] and expected in err[0], err
    with pytest.raises(BundleError, match="damaged|unreadable"):
        options_for_model(bundled, {})


def test_a_damaged_member_can_be_bypassed(tmp_path, bundled, capsys):
    _rewrite(bundled, corrupt=["decoding.lm"])
    wav = _wav(tmp_path / "u.wav")
    assert decode_main([str(bundled), str(wav), "--lm", "none", "--no-progress"]) == 0
    other = ["--lm", str(tmp_path / "lm.arpa"), "--no-progress"]
    assert decode_main([str(bundled), str(wav), *other]) == 0


def test_a_spoilt_cache_file_is_extracted_again(tmp_path, bundled):
    bundle = read_bundle(bundled)
    path = bundle.member_path("lexicon")
    path.write_text("garbage\n")
    assert bundle.member_path("lexicon").read_bytes() == (tmp_path / "lexicon.txt").read_bytes()


def test_unwritable_cache_names_the_variable(tmp_path, bundled, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("ASR_CACHE_DIR", str(blocker / "sub"))
    with pytest.raises(BundleError, match="ASR_CACHE_DIR"):
        read_bundle(bundled).member_path("lm")


def test_asr_bundle_cli(tmp_path, plain, capsys):
    opts = tmp_path / "decode.yaml"
    opts.write_text(yaml.safe_dump(TUNED))
    args = ["add", str(plain), "--lexicon", str(tmp_path / "lexicon.txt"), "--options", str(opts)]
    assert bundle_main([*args, "--lm", str(tmp_path / "lm.arpa")]) == 0
    assert "bundle written" in capsys.readouterr().out
    assert bundle_main([*args, "--lm", str(tmp_path / "lm.arpa")]) == 0
    assert "already up to date" in capsys.readouterr().out
    assert bundle_main(["show", str(plain)]) == 0
    shown = capsys.readouterr().out
    assert "lm_weight: 3.5" in shown and "lexicon.txt" in shown
    assert bundle_main(["extract", str(plain), str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "lm.arpa").read_bytes() == (tmp_path / "lm.arpa").read_bytes()
    assert yaml.safe_load((tmp_path / "x" / "decode.yaml").read_text())["lm_weight"] == 3.5
    capsys.readouterr()
    for bad, why in (
        (
            ["--options", str(_yaml(tmp_path / "a.yaml", {"device": "cuda"}))],
            "cannot set ['device']",
        ),
        (
            ["--options", str(_yaml(tmp_path / "b.yaml", {"lm_wieght": 1}))],
            "unknown decoding options",
        ),
        (["--lm", str(tmp_path / "missing.arpa")], "lm file not found"),
    ):
        assert bundle_main(["add", str(plain), *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and why in err[0], err


def _yaml(path, data) -> os.PathLike:
    path.write_text(yaml.safe_dump(data))
    return path
