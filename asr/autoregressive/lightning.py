"""ARLightningModule: trains a :class:`CausalTransformer` by maximum likelihood.

The loss is the mean negative log-likelihood in nats per scored token (the copy half of a copy
sequence, every sub-pixel of an image); validation reports it as ``val_loss`` and, in bits,
as ``val_bpd`` (bits per dimension for images), plus the copy accuracy for categorical models.
The paper's schedule (RAdam, learning rate divided by 10 after 3,000 updates) is
``lr_milestones: [3000]``, ``lr_gamma: 0.1``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from asr.lightning import OPTIMIZERS, OptimizerConfig

from .distributions import token_log_prob
from .model import ARConfig, CausalTransformer, parameter_count


class ARLightningModule(L.LightningModule):
    """Maximum-likelihood training of a causal transformer on token sequences.

    :param model: the :class:`ARConfig` (or its dict).
    :param optimizer: :class:`asr.lightning.OptimizerConfig` (the paper uses ``radam``).
    :param lr_milestones: updates after which the learning rate is multiplied by ``lr_gamma``.
    :param max_bad_steps: stop after this many consecutive non-finite losses.
    """

    def __init__(
        self,
        model: ARConfig | None = None,
        optimizer: OptimizerConfig | None = None,
        lr_milestones: list[int] | None = None,
        lr_gamma: float = 0.1,
        max_bad_steps: int = 20,
    ) -> None:
        super().__init__()
        model = ARConfig.from_dict(model) if isinstance(model, dict) else model
        optimizer = OptimizerConfig(**optimizer) if isinstance(optimizer, dict) else optimizer
        self.config = model or ARConfig()
        self.optimizer_config = optimizer or OptimizerConfig(name="radam", weight_decay=0.0)
        if self.optimizer_config.name not in OPTIMIZERS:
            raise ValueError(
                f"optimizer.name must be one of {sorted(OPTIMIZERS)}, got {self.optimizer_config.name!r}"
            )
        self.lr_milestones = sorted(lr_milestones or [])
        self.lr_gamma = lr_gamma
        self.max_bad_steps = max_bad_steps
        # Plain dicts only: checkpoints then load with torch.load(weights_only=True).
        self.save_hyperparameters(
            {
                "model": self.config.to_dict(),
                "optimizer": asdict(self.optimizer_config),
                "lr_milestones": self.lr_milestones,
                "lr_gamma": lr_gamma,
                "max_bad_steps": max_bad_steps,
            }
        )
        self.model = CausalTransformer(self.config)
        self.data_info: dict = {}
        self.bad_streak = 0
        self._t0: float | None = None
        self._val = torch.zeros(4, dtype=torch.float64)  # nll, tokens, correct, exact sequences
        self._val_sequences = 0

    # ---- loss --------------------------------------------------------------------------------
    def nll(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-token negative log-likelihood, its mask, and the model outputs."""
        tokens = batch["tokens"]
        outputs = self.model(tokens)
        nll = -token_log_prob(outputs, tokens, self.config.output, self.config.vocab_size)
        mask = batch.get("loss_mask")
        if mask is None:
            mask = torch.ones_like(tokens, dtype=torch.bool)
        return nll, mask, outputs

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        nll, mask, _ = self.nll(batch)
        loss = nll.masked_fill(~mask, 0.0).sum() / mask.sum().clamp(min=1)
        if not torch.isfinite(loss):
            self.bad_streak += 1
            if self.bad_streak >= self.max_bad_steps:
                raise RuntimeError(
                    f"{self.bad_streak} consecutive non-finite losses at step {self.global_step}: "
                    "stopping. Lower optimizer.lr or use fp32 instead of half precision."
                )
            return None
        self.bad_streak = 0
        bsz = batch["tokens"].size(0)
        self.log("train_loss", loss, prog_bar=True, batch_size=bsz)
        if self.config.output == "logistic_mixture":
            self.log("train_bpd", loss / math.log(2.0), batch_size=bsz)
        return loss

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: dict, batch_idx: int) -> None:
        if self._t0 is None:
            return
        dt = max(time.perf_counter() - self._t0, 1e-9)
        self.log("train/tokens_per_s", batch["tokens"].numel() / dt, rank_zero_only=True)
        self.log("lr", self.optimizers().param_groups[0]["lr"], rank_zero_only=True)

    def on_fit_start(self) -> None:
        dm = self.trainer.datamodule
        if dm is not None and hasattr(dm, "vocab_size"):
            cfg = self.config
            if dm.vocab_size != cfg.vocab_size or dm.max_len > cfg.max_len:
                raise ValueError(
                    f"model.model has vocab_size={cfg.vocab_size}, max_len={cfg.max_len} but the "
                    f"data needs vocab_size={dm.vocab_size}, max_len >= {dm.max_len}: set them "
                    "in the config's model section"
                )
            self.data_info = dm.describe()
        rank_zero_info(f"parameters: {parameter_count(self.model) / 1e6:.3f}M ({self.config})")

    # ---- validation --------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val.zero_()
        self._val_sequences = 0

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        nll, mask, outputs = self.nll(batch)
        stats = [float(nll[mask].double().sum()), float(mask.sum()), 0.0, 0.0]
        if self.config.output == "categorical":
            right = (outputs.argmax(-1) == batch["tokens"]) | ~mask
            stats[2] = float((right & mask).sum())
            stats[3] = float(right.all(dim=-1).sum())
        self._val += torch.tensor(stats, dtype=torch.float64)
        self._val_sequences += batch["tokens"].size(0)

    def on_validation_epoch_end(self) -> None:
        stats = torch.cat(
            [self._val, torch.tensor([float(self._val_sequences)], dtype=torch.float64)]
        )
        stats = stats.to(self.device)
        if self.trainer.world_size > 1:
            stats = self.trainer.strategy.reduce(stats, reduce_op="sum")
        nll, tokens, correct, exact, sequences = stats.tolist()
        val_loss = nll / max(tokens, 1.0)
        self.log("val_loss", val_loss, prog_bar=True)
        self.log("val_bpd", val_loss / math.log(2.0))
        if self.config.output == "categorical":
            self.log("val_accuracy", correct / max(tokens, 1.0), prog_bar=True)
            self.log("val_sequence_accuracy", exact / max(sequences, 1.0))

    # ---- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self) -> dict:
        c = self.optimizer_config
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (no_decay if p.dim() < 2 or "norm" in name or "embedding" in name else decay).append(p)
        groups = [
            {"params": decay, "weight_decay": c.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        opt = OPTIMIZERS[c.name](groups, lr=c.lr, betas=tuple(c.betas), eps=c.eps)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, self.lr_milestones, gamma=self.lr_gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ---- checkpoints -------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["data_info"] = self.data_info
        checkpoint["bad_streak"] = self.bad_streak

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.data_info = checkpoint.get("data_info", {})
        self.bad_streak = checkpoint.get("bad_streak", 0)
