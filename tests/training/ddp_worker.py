"""Run by test_ddp.py as a script: 2-process CPU DDP (gloo) training of the tiny synthetic task.

Lightning's ``strategy="ddp"`` re-launches this same script for rank 1, as it would under
torchrun or SLURM. Each rank writes the utterance ids it trained on and whether the gradients
after all-reduce agreed across ranks; rank 0 also writes the final weights.

    python ddp_worker.py OUT_DIR [SHARES]   # SHARES: utterances per rank of each global batch of
                                            # 4, e.g. "3,1" (default "2,2")
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from train_synth import CharTokenizer, SyntheticDataModule, tiny_encoder  # noqa: E402

from asr.lightning import CTCLightningModule, OptimizerConfig, SchedulerConfig  # noqa: E402

warnings.filterwarnings("ignore")


def make_module() -> CTCLightningModule:
    return CTCLightningModule(
        encoder=tiny_encoder(),
        tokenizer=CharTokenizer(),
        optimizer=OptimizerConfig(name="adam", lr=3e-3, weight_decay=0.0),
        scheduler=SchedulerConfig(kind="noam", warmup_steps=3),
    )


class Record(L.Callback):
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.grads_agree: list[bool] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self.ids.extend(batch["ids"])

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:  # noqa: ANN001
        g = torch.cat([p.grad.flatten() for p in pl_module.parameters() if p.grad is not None])
        if dist.is_available() and dist.is_initialized():
            both = [torch.zeros_like(g) for _ in range(dist.get_world_size())]
            dist.all_gather(both, g)
            self.grads_agree.append(all(torch.allclose(both[0], x, atol=1e-7) for x in both))


def main(out: Path, shares: list[int]) -> None:
    L.seed_everything(0, verbose=False)
    rec = Record()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        use_distributed_sampler=False,
        callbacks=[rec],
    )
    module = make_module()
    trainer.fit(module, datamodule=SyntheticDataModule(n_train=16, shares=shares))
    rank = trainer.global_rank
    (out / f"rank{rank}.json").write_text(json.dumps({"ids": rec.ids, "agree": rec.grads_agree}))
    if rank == 0:
        torch.save(module.state_dict(), out / "weights.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [int(n) for n in (sys.argv[2:] or ["2,2"])[0].split(",")])
