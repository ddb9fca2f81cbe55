"""A Lightning run killed mid-epoch resumes at the next batch, with no callback: the data module's
state_dict holds the sampler position (asr.data.resume)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from asr.data.datamodule import ASRDataModule


class Recorder(pl.LightningModule):
    """Tiny model that records the utterance ids of each training batch."""

    def __init__(self, kill_after: int | None = None, ckpt: Path | None = None) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(40, 1)
        self.seen: list[tuple[int, list[str]]] = []
        self.kill_after, self.ckpt = kill_after, ckpt

    def training_step(self, batch, batch_idx):
        self.seen.append((self.current_epoch, batch["ids"]))
        return self.lin(batch["features"]).mean()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.kill_after is not None and len(self.seen) == self.kill_after:
            self.trainer.save_checkpoint(self.ckpt)
            raise RuntimeError("killed")  # stands in for a killed job

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def trainer(tmp_path: Path) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )


def test_killed_run_resumes_at_next_batch(corpus, tmp_path: Path) -> None:
    args = dict(
        train_manifest=str(corpus(12)),
        tokenizer_path=str(tmp_path / "tok.json"),
        cmvn_path=str(tmp_path / "cmvn.json"),
        fbank={"num_mel_bins": 40},
        max_batch_seconds=2.0,
        num_workers=1,
        seed=3,
    )
    full = Recorder()
    trainer(tmp_path).fit(full, datamodule=ASRDataModule(**args))
    epoch0 = [ids for e, ids in full.seen if e == 0]
    epoch1 = [ids for e, ids in full.seen if e == 1]
    assert len(epoch0) >= 4
    assert epoch1 != epoch0  # Lightning's set_epoch reached the sampler: a new order
    k = len(epoch0) // 2
    ckpt = tmp_path / "mid.ckpt"
    killed = Recorder(kill_after=k, ckpt=ckpt)
    with pytest.raises(RuntimeError, match="killed"):
        trainer(tmp_path).fit(killed, datamodule=ASRDataModule(**args))
    assert [ids for _, ids in killed.seen] == epoch0[:k]
    resumed = Recorder()
    trainer(tmp_path).fit(resumed, datamodule=ASRDataModule(**args), ckpt_path=ckpt)
    assert resumed.seen == full.seen[k:]
