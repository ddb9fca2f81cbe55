"""ASRDataModule: padded batches with the documented keys, training-only augmentation, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from asr.audio import load_audio
from asr.data.datamodule import ASRDataModule
from asr.data.manifest import read_manifest
from asr.data.tokenizer import load_tokenizer
from asr.features import FbankConfig, GlobalCMVN, fbank_features
from asr.text import normalize_text


def make_dm(corpus, tmp_path: Path, **kw) -> ASRDataModule:
    train, val = corpus(10, "train"), corpus(4, "dev")
    args = dict(
        train_manifest=str(train),
        val_manifest=str(val),
        tokenizer_path=str(tmp_path / "tok.json"),
        cmvn_path=str(tmp_path / "cmvn.json"),
        fbank={"num_mel_bins": 40},
        max_batch_seconds=3.0,
        num_workers=0,
    )
    args.update(kw)
    dm = ASRDataModule(**args)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_val_batches_are_padded_and_match_direct_features(corpus, tmp_path: Path) -> None:
    dm = make_dm(corpus, tmp_path)
    assert (tmp_path / "tok.json").is_file() and (tmp_path / "cmvn.json").is_file()
    assert dm.tokenizer.tokens == load_tokenizer(tmp_path / "tok.json").tokens
    assert isinstance(dm.cmvn, GlobalCMVN)
    utts = {u.id: u for u in read_manifest(dm.val_manifest)}
    seen = []
    for batch in dm.val_dataloader():
        feats, flen = batch["features"], batch["feature_lengths"]
        tg, tlen = batch["targets"], batch["target_lengths"]
        b = len(batch["ids"])
        assert feats.shape[0] == b and feats.shape[2] == 40 and feats.dtype == torch.float32
        assert flen.dtype == torch.long and tg.dtype == torch.long
        assert feats.shape[1] == int(flen.max()) and tg.shape[1] == int(tlen.max())
        assert sum(utts[i].duration for i in batch["ids"]) <= 3.0 or b == 1
        for j, uid in enumerate(batch["ids"]):
            u = utts[uid]
            direct = dm.cmvn(
                fbank_features(load_audio(u.audio).waveform, 16000, FbankConfig(num_mel_bins=40))
            )
            torch.testing.assert_close(feats[j, : flen[j]], direct)
            assert (feats[j, flen[j] :] == 0).all() and (tg[j, tlen[j] :] == 0).all()
            assert batch["texts"][j] == normalize_text(u.text)
            assert dm.tokenizer.decode(tg[j, : tlen[j]].tolist()) == batch["texts"][j]
        seen += batch["ids"]
    assert sorted(seen) == sorted(utts)


def test_vtlp_warps_training_features_only(corpus, tmp_path: Path) -> None:
    dm = make_dm(corpus, tmp_path, vtlp=[0.8, 0.8])  # one factor: the result is exact
    cfg = FbankConfig(num_mel_bins=40)
    for loader, warp in ((dm.train_dataloader(), 0.8), (dm.val_dataloader(), 1.0)):
        utts = {u.id: u for u in loader.dataset.items.utterances}
        batch = next(iter(loader))
        uid, n = batch["ids"][0], int(batch["feature_lengths"][0])
        wav = load_audio(utts[uid].audio).waveform
        expected = dm.cmvn(fbank_features(wav, 16000, cfg, vtln_warp=warp))
        torch.testing.assert_close(batch["features"][0, :n], expected)


def test_train_loader_augments_but_keeps_shapes(corpus, tmp_path: Path) -> None:
    dm = make_dm(
        corpus,
        tmp_path,
        spec_augment={"freq_width": 8, "time_width": 10},
        speed_perturb=[0.9, 1.1],
        num_workers=1,
    )
    ids = []
    for batch in dm.train_dataloader():
        assert batch["features"].shape[:2] == (
            len(batch["ids"]),
            int(batch["feature_lengths"].max()),
        )
        ids += batch["ids"]
    assert len(ids) == len(set(ids)) == 10


def test_feature_cache_gives_same_batches(corpus, tmp_path: Path) -> None:
    dm = make_dm(corpus, tmp_path, feature_cache_dir=str(tmp_path / "cache"))
    first = list(dm.val_dataloader())
    assert any((tmp_path / "cache").rglob("*.pt"))
    second = list(dm.val_dataloader())
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a["features"], b["features"]) and a["ids"] == b["ids"]


def test_state_dict_resumes_training_loader(corpus, tmp_path: Path) -> None:
    dm = make_dm(corpus, tmp_path, max_batch_seconds=2.0)
    full = [b["ids"] for b in dm.train_dataloader()]
    assert len(full) >= 3
    run = ASRDataModule(**_args(dm))  # same files, a fresh process's view
    run.setup("fit")
    it = iter(run.train_dataloader())
    done = [next(it)["ids"], next(it)["ids"]]
    state = run.state_dict()
    assert state["train_sampler"]["position"] == 2
    resumed = ASRDataModule(**_args(dm))
    resumed.load_state_dict(state)
    resumed.setup("fit")
    rest = [b["ids"] for b in resumed.train_dataloader()]
    assert done + rest == full


def _args(dm: ASRDataModule) -> dict:
    return dict(
        train_manifest=dm.train_manifest,
        val_manifest=dm.val_manifest,
        tokenizer_path=dm.tokenizer_path,
        cmvn_path=dm.cmvn_path,
        fbank=dm.fbank.to_dict(),
        max_batch_seconds=dm.max_batch_seconds,
        num_workers=0,
    )


def test_stage_one_cmvn_is_the_cmvn_of_the_training_features(corpus, tmp_path: Path) -> None:
    """run.sh stage 1 passes the recipe's train.data.init_args.fbank section to asr-data cmvn."""
    from asr.data.cli import main

    fbank = {"num_mel_bins": 24, "frame_shift_ms": 12.0, "deltas": True}
    dm = make_dm(corpus, tmp_path, fbank=fbank)
    (tmp_path / "fbank.yaml").write_text(yaml.safe_dump(fbank))
    out = tmp_path / "stage1_cmvn.json"
    argv = ["cmvn", "--manifest", dm.train_manifest, "--out", str(out)]
    assert main([*argv, "--fbank-config", str(tmp_path / "fbank.yaml"), "--num-workers", "1"]) == 0
    stage1 = GlobalCMVN.load(out)
    assert dm.feature_dim == 72 == stage1.mean.numel()
    torch.testing.assert_close(stage1.mean, dm.cmvn.mean)
    torch.testing.assert_close(stage1.std, dm.cmvn.std)
    assert main([*argv, "--fbank-config", str(tmp_path / "fbank.yaml"), "--no-deltas"]) == 0
    assert GlobalCMVN.load(out).mean.numel() == 24  # a flag overrides the file


def test_tokenizer_and_feature_dim_are_known_before_setup(corpus, tmp_path: Path) -> None:
    """asr-train links them into the model right after building the data module."""
    dm = ASRDataModule(
        train_manifest=str(corpus(6)),
        tokenizer_path=str(tmp_path / "tok.json"),
        fbank={"num_mel_bins": 30},
    )
    assert dm.feature_dim == 30 and dm.frame_shift_s == 0.01
    tok = dm.tokenizer  # trained from the transcripts: the file does not exist yet
    assert not (tmp_path / "tok.json").exists()
    dm.prepare_data()
    assert load_tokenizer(tmp_path / "tok.json").tokens == tok.tokens
    assert ASRDataModule(tokenizer_path=str(tmp_path / "tok.json")).tokenizer.tokens == tok.tokens


def test_missing_manifest_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="train_manifest"):
        ASRDataModule().train_dataloader()


def test_loader_shards_by_trainer_rank(corpus, tmp_path: Path) -> None:
    from types import SimpleNamespace

    dm = make_dm(corpus, tmp_path, max_batch_seconds=2.0)
    shards = []
    for rank in range(2):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        shards.append([b["ids"] for b in dm.train_dataloader()])
    assert len(shards[0]) == len(shards[1])
    ids = [i for sh in shards for b in sh for i in b]
    assert sorted(ids) == sorted(u.id for u in read_manifest(dm.train_manifest))


def test_stage_one_fills_the_cache_training_reads(corpus, tmp_path: Path, monkeypatch) -> None:
    """`asr-data cmvn --cache-dir` writes every training utterance's features where the first
    epoch looks for them, so that epoch computes no fbank."""
    import asr.features
    from asr.data.cli import main

    dm = make_dm(corpus, tmp_path)
    cache = tmp_path / "cache"
    (tmp_path / "fbank.yaml").write_text(yaml.safe_dump(dm.fbank.to_dict()))
    argv = ["cmvn", "--manifest", dm.train_manifest, "--out", str(tmp_path / "stage1.json")]
    assert (
        main([*argv, "--fbank-config", str(tmp_path / "fbank.yaml"), "--cache-dir", str(cache)])
        == 0
    )
    assert len(list(cache.rglob("*.pt"))) == len(read_manifest(dm.train_manifest))

    def features(loader) -> dict[str, torch.Tensor]:
        return {
            i: f[:n]
            for b in loader
            for i, f, n in zip(b["ids"], b["features"], b["feature_lengths"], strict=True)
        }

    uncached = features(dm.train_dataloader())

    def no_fbank(*args, **kwargs):
        raise AssertionError("training computed fbank the cache holds")

    monkeypatch.setattr(asr.features, "fbank_features", no_fbank)
    cached = ASRDataModule(**_args(dm), feature_cache_dir=str(cache))
    cached.setup("fit")
    read_back = features(cached.train_dataloader())
    assert read_back.keys() == uncached.keys()
    for i, f in read_back.items():
        torch.testing.assert_close(f, uncached[i])
    # stage 1 rerun (fbank still refused) reads the cache it filled, to the same statistics
    argv[-1] = str(tmp_path / "stage1_again.json")
    assert (
        main([*argv, "--fbank-config", str(tmp_path / "fbank.yaml"), "--cache-dir", str(cache)])
        == 0
    )
    first, again = (GlobalCMVN.load(tmp_path / f) for f in ("stage1.json", "stage1_again.json"))
    torch.testing.assert_close(again.mean, first.mean)
    torch.testing.assert_close(again.std, first.std)
