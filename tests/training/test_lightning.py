"""CTCLightningModule: overfitting, exact resume after a kill, schedules, non-finite losses."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from train_synth import CharTokenizer, SyntheticDataModule, tiny_encoder

from asr.lightning import (
    CTCLightningModule,
    OptimizerConfig,
    SchedulerConfig,
    WarmupScheduler,
)

warnings.filterwarnings("ignore", ".*does not have many workers.*")


def make_module(lr: float = 3e-3, warmup: int = 5) -> CTCLightningModule:
    return CTCLightningModule(
        encoder=tiny_encoder(),
        tokenizer=CharTokenizer(),
        optimizer=OptimizerConfig(name="adam", lr=lr, weight_decay=0.0),
        scheduler=SchedulerConfig(kind="noam", warmup_steps=warmup),
    )


def make_trainer(tmp: Path | None, callbacks: list, **kw: object) -> L.Trainer:
    args = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        default_root_dir=tmp,
        use_distributed_sampler=False,
    )
    args.update(kw)
    return L.Trainer(callbacks=callbacks, **args)


@pytest.mark.slow
def test_tiny_model_overfits_to_zero_wer() -> None:
    L.seed_everything(0, verbose=False)
    dm = SyntheticDataModule(n_train=8, batch_size=4)
    module = make_module(lr=1e-2, warmup=10)
    stop = EarlyStopping(monitor="val_wer", stopping_threshold=0.0, patience=1000)
    trainer = make_trainer(None, [stop], max_epochs=100, check_val_every_n_epoch=10)
    trainer.fit(module, datamodule=dm)
    assert trainer.callback_metrics["val_wer"].item() == 0.0
    assert trainer.callback_metrics["val_cer"].item() == 0.0


class _Kill(L.Callback):
    class Killed(Exception):
        pass

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if trainer.global_step >= self.at_step:
            raise self.Killed(f"killed at step {trainer.global_step}")


def _weights(m: CTCLightningModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("kill_at,every", [(6, 1), (5, 2)])
def test_resume_after_kill_matches_uninterrupted_run(
    tmp_path: Path, kill_at: int, every: int
) -> None:
    epochs = 3  # 4 batches per epoch: a kill at step 5 or 6 lands mid-epoch 2

    def ckpt() -> ModelCheckpoint:
        return ModelCheckpoint(
            dirpath=tmp_path / "ckpt",
            every_n_train_steps=every,
            save_last=True,
            save_top_k=0,
            monitor=None,
        )

    L.seed_everything(0, verbose=False)
    ref = make_module()
    make_trainer(tmp_path / "a", [], max_epochs=epochs, limit_val_batches=0).fit(
        ref, datamodule=SyntheticDataModule(n_train=16)
    )

    L.seed_everything(0, verbose=False)
    run = make_module()
    with pytest.raises(_Kill.Killed):
        make_trainer(
            tmp_path,
            [ckpt(), _Kill(kill_at)],
            max_epochs=epochs,
            limit_val_batches=0,
        ).fit(run, datamodule=SyntheticDataModule(n_train=16))
    last = tmp_path / "ckpt" / "last.ckpt"
    saved_step = torch.load(last, weights_only=True)["global_step"]
    assert 0 < saved_step < kill_at + 1

    L.seed_everything(123, verbose=False)  # different init: the weights must come from the file
    resumed = make_module()
    trainer = make_trainer(tmp_path, [ckpt()], max_epochs=epochs, limit_val_batches=0)
    trainer.fit(resumed, datamodule=SyntheticDataModule(n_train=16), ckpt_path=last)
    assert trainer.global_step == epochs * 4
    a, b = _weights(ref), _weights(resumed)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")
    # and the weights did move away from any init
    assert not torch.allclose(
        a["model.head.weight"], make_module().state_dict()["model.head.weight"]
    )


def test_schedules_shapes() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    lrs = {}
    for kind in ("noam", "cosine", "constant", "plateau"):
        opt = torch.optim.Adam([p], lr=1.0)
        s = WarmupScheduler(opt, SchedulerConfig(kind=kind, warmup_steps=10, min_lr_ratio=0.1), 100)
        seq = []
        for _ in range(100):
            seq.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
        lrs[kind] = seq
    for seq in lrs.values():  # warmup rises linearly to the peak
        assert seq[0] < seq[4] < seq[9] and seq[9] == pytest.approx(1.0)
    assert lrs["noam"][99] == pytest.approx(math.sqrt(10 / 100))
    assert lrs["cosine"][99] == pytest.approx(0.1, abs=1e-3)
    assert lrs["constant"][99] == 1.0
    opt = torch.optim.Adam([p], lr=1.0)
    s = WarmupScheduler(
        opt,
        SchedulerConfig(kind="plateau", warmup_steps=1, plateau_patience=2, plateau_factor=0.5),
        100,
    )
    for wer in (0.5, 0.4, 0.45, 0.41):  # two evaluations without improvement -> halve
        s.report_metric(wer)
    s.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    s2 = WarmupScheduler(torch.optim.Adam([p], lr=1.0), SchedulerConfig(kind="plateau"), 100)
    s2.load_state_dict(s.state_dict())
    assert s2.plateau_scale == 0.5


def test_non_finite_losses_are_skipped_then_stop(tmp_path: Path) -> None:
    L.seed_everything(0, verbose=False)
    module = make_module()
    module.max_bad_steps = 3
    before = _weights(module)

    def poisoned(batch: dict, utterances=None):  # noqa: ANN001, ANN202
        loss = CTCLightningModule.ctc_loss(module, batch, utterances)
        return (loss[0] * float("nan"), *loss[1:])

    module.ctc_loss = poisoned
    trainer = make_trainer(None, [], max_epochs=5, limit_val_batches=0)
    with (
        pytest.warns(UserWarning, match="non-finite CTC loss"),
        pytest.raises(RuntimeError, match="3 consecutive non-finite losses"),
    ):
        trainer.fit(module, datamodule=SyntheticDataModule(n_train=16))
    assert module.bad_total == 3
    after = _weights(module)
    assert all(torch.equal(before[k], after[k]) for k in before)  # no update was applied


def test_ctc_loss_is_float32_under_bf16_autocast() -> None:
    L.seed_everything(0, verbose=False)
    module = make_module()
    dm = SyntheticDataModule(n_train=4, batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, log_probs, _ = module.ctc_loss(batch)
    assert loss.dtype == torch.float32 and log_probs.dtype == torch.float32
    ref, _, _ = module.ctc_loss(batch)
    assert torch.isfinite(loss) and abs(loss.item() - ref.item()) < 0.05 * abs(ref.item())
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)
