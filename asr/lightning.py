"""CTCLightningModule: trains a :class:`asr.models.CTCModel` with Lightning.

Owns what the training loop needs beyond the model: the CTC loss (float32, blank 0,
``zero_infinity``, averaged over every utterance of the step on all devices), optimisers with
warmup schedules, skipping of non-finite losses, greedy validation error rates
(:mod:`asr.metrics`), throughput logging, and keeping the tokenizer inside checkpoints so a
model package can be written from any checkpoint. Exact mid-epoch resume is the data module's
job (:mod:`asr.data.resume`).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from asr.metrics import edit_counts, error_metric_name, validation_references
from asr.models import CTCModel, EncoderConfig, compile_layers

# Not None: LightningCLI then exposes the nested fields (--model.encoder.transformer.n_layers).
DEFAULT_ENCODER = EncoderConfig()
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "radam": torch.optim.RAdam}
SCHEDULES = ("noam", "plateau", "cosine", "constant")


@dataclass
class OptimizerConfig:
    """:param name: ``adam``, ``adamw`` or ``radam`` (torch.optim)."""

    name: str = "adamw"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-9
    weight_decay: float = 0.01


@dataclass
class SchedulerConfig:
    """Linear warmup over ``warmup_steps`` then ``kind``.

    - ``noam``: ``lr * min(s/w, sqrt(w/s))`` (peak ``lr`` at the end of warmup).
    - ``cosine``: cosine decay to ``lr * min_lr_ratio`` at ``total_steps`` (None = the Trainer's
      estimate of all optimiser steps).
    - ``plateau``: constant after warmup; multiplied by ``plateau_factor`` when the validation
      metric (:attr:`CTCLightningModule.validation_metric`) has not improved for
      ``plateau_patience`` validations; floor ``lr * min_lr_ratio``.
    - ``constant``: constant after warmup.
    """

    kind: str = "noam"
    warmup_steps: int = 1000
    total_steps: int | None = None
    min_lr_ratio: float = 0.01
    plateau_factor: float = 0.5
    plateau_patience: int = 2


class WarmupScheduler(torch.optim.lr_scheduler.LRScheduler):
    """One stepwise LR multiplier for every schedule kind; its state (incl. plateau) is checkpointed."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, total_steps: int
    ) -> None:
        if cfg.kind not in SCHEDULES:
            raise ValueError(f"scheduler kind must be one of {SCHEDULES}, got {cfg.kind!r}")
        self.cfg_dict = asdict(cfg)
        self.total_steps = max(1, total_steps)
        self.plateau_scale = 1.0
        self.best_metric = math.inf
        self.bad_evals = 0
        super().__init__(optimizer)

    def factor(self, step: int) -> float:
        c = SchedulerConfig(**self.cfg_dict)
        s, w = step + 1, max(1, c.warmup_steps)
        if c.kind == "noam":
            return min(s / w, math.sqrt(w / s))
        warm = min(1.0, s / w)
        if c.kind == "cosine":
            progress = min(1.0, max(0.0, (s - w) / max(1, self.total_steps - w)))
            return warm * (
                c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
            )
        if c.kind == "plateau":
            return warm * max(c.min_lr_ratio, self.plateau_scale)
        return warm

    def get_lr(self) -> list[float]:
        f = self.factor(self.last_epoch)
        return [base * f for base in self.base_lrs]

    def report_metric(self, value: float) -> None:
        """Called after each validation; only the plateau schedule reacts."""
        if self.cfg_dict["kind"] != "plateau" or not math.isfinite(value):
            return
        if value < self.best_metric - 1e-12:
            self.best_metric, self.bad_evals = value, 0
            return
        self.bad_evals += 1
        if self.bad_evals >= self.cfg_dict["plateau_patience"]:
            self.plateau_scale *= self.cfg_dict["plateau_factor"]
            self.bad_evals = 0


def greedy_token_ids(
    log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0
) -> list[list[int]]:
    """Best path per utterance with repeats collapsed and blanks removed."""
    best = log_probs.argmax(dim=-1).cpu()
    out = []
    for row, n in zip(best, lengths.cpu().tolist(), strict=True):
        ids = torch.unique_consecutive(row[:n]).tolist()
        out.append([i for i in ids if i != blank])
    return out


class CTCLightningModule(L.LightningModule):
    """CTC training of a linear-attention (or softmax / Bi-LSTM) encoder.

    :param encoder: the :class:`EncoderConfig` (or its dict, e.g. from a checkpoint).
    :param vocab_size: output size incl. blank; taken from the tokenizer when omitted.
    :param tokenizer_path: a saved :mod:`asr.data` tokenizer (used for vocab size and
        validation error rates), when ``tokenizer`` is not given.
    :param max_bad_steps: stop after this many consecutive non-finite losses.
    :param feature_frame_shift_s: seconds per input feature frame (for audio-seconds/s logging).
    :param tokenizer: an in-memory tokenizer (``decode``, ``to_dict``), instead of the path.
    :param compile: run the encoder's transformer layers through ``torch.compile`` (inductor;
        :func:`asr.models.compile_layers`): the first batches compile (and the first new length
        once more, when shapes turn dynamic). Checkpoints and packages are the same either way.

    ``asr-train`` fills ``encoder.input_dim``, ``tokenizer`` and ``feature_frame_shift_s`` from
    the data module, so features and vocabulary are defined once, in the data config.
    """

    def __init__(
        self,
        encoder: EncoderConfig = DEFAULT_ENCODER,
        vocab_size: int | None = None,
        tokenizer_path: str | None = None,
        optimizer: OptimizerConfig | None = None,
        scheduler: SchedulerConfig | None = None,
        max_bad_steps: int = 20,
        feature_frame_shift_s: float = 0.01,
        tokenizer: Any = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        # a dict: hyperparameters of a checkpoint (also the pre-split flat layout)
        encoder = EncoderConfig.from_dict(encoder) if isinstance(encoder, dict) else encoder
        optimizer = OptimizerConfig(**optimizer) if isinstance(optimizer, dict) else optimizer
        scheduler = SchedulerConfig(**scheduler) if isinstance(scheduler, dict) else scheduler
        self.encoder_config = copy.deepcopy(encoder)  # the default instance is shared
        self.optimizer_config = optimizer or OptimizerConfig()
        self.scheduler_config = scheduler or SchedulerConfig()
        if self.optimizer_config.name not in OPTIMIZERS:
            raise ValueError(
                f"optimizer.name must be one of {sorted(OPTIMIZERS)}, got {self.optimizer_config.name!r}"
            )
        if tokenizer is None and tokenizer_path is not None:
            from asr.data.tokenizer import load_tokenizer

            tokenizer = load_tokenizer(tokenizer_path)
        self.tokenizer = tokenizer
        if vocab_size is None:
            if tokenizer is None:
                raise ValueError(
                    "give model.vocab_size or model.tokenizer_path (the tokenizer file)"
                )
            vocab_size = tokenizer.vocab_size
        elif tokenizer is not None and tokenizer.vocab_size != vocab_size:
            raise ValueError(
                f"vocab_size={vocab_size} disagrees with the tokenizer ({tokenizer.vocab_size} tokens)"
            )
        self.max_bad_steps = max_bad_steps
        self.feature_frame_shift_s = feature_frame_shift_s
        # Plain dicts only: checkpoints then load with torch.load(weights_only=True).
        self.save_hyperparameters(
            {
                "encoder": self.encoder_config.to_dict(),
                "vocab_size": vocab_size,
                "tokenizer_path": tokenizer_path,
                "optimizer": asdict(self.optimizer_config),
                "scheduler": asdict(self.scheduler_config),
                "max_bad_steps": max_bad_steps,
                "feature_frame_shift_s": feature_frame_shift_s,
            }
        )
        self.model = CTCModel(self.encoder_config, vocab_size)
        if compile and not compile_layers(self.model):
            warnings.warn(
                "compile: this encoder has no transformer layers to compile", stacklevel=2
            )
        self.ctc = nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
        self.error_metric = error_metric_name(tokenizer) if tokenizer is not None else None
        self.bad_streak = 0
        self.bad_total = 0
        self._batch_t0: float | None = None
        self._val_counts = torch.zeros(4, dtype=torch.float64)  # token err, tokens, char err, chars
        self._val_loss = torch.zeros(2, dtype=torch.float64)  # loss sum, utterances

    # ---- model -----------------------------------------------------------------------------
    def forward(
        self, features: torch.Tensor, feature_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(features, feature_lengths)

    @property
    def validation_metric(self) -> str:
        """What checkpoints and the plateau schedule follow: the validation error rate in the
        units the tokenizer decodes to (``val_per``, ``val_wer``), ``val_loss`` without one."""
        return self.error_metric or "val_loss"

    def ctc_loss(
        self, batch: dict, utterances: int | torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sum of per-utterance CTC losses / ``utterances`` (default: this batch's size), in
        float32 outside autocast."""
        log_probs, out_lengths = self.model(batch["features"], batch["feature_lengths"])
        with torch.autocast(device_type=log_probs.device.type, enabled=False):
            loss = self.ctc(
                log_probs.float().transpose(0, 1),
                batch["targets"],
                out_lengths,
                batch["target_lengths"],
            )
        return (
            loss / (log_probs.size(0) if utterances is None else utterances),
            log_probs,
            out_lengths,
        )

    def _utterances_per_device(self, batch: dict) -> int | torch.Tensor:
        """The loss divisor that makes DDP's gradient average the mean over all utterances.

        DDP averages gradients over devices, so dividing each device's loss sum by its own
        batch size would weigh the utterances of a smaller batch more. Dividing by the global
        utterance count over the number of devices (torchaudio's Lightning recipes do the same)
        makes the averaged gradient that of the mean loss over every utterance of the step.
        """
        local = batch["features"].size(0)
        if self.trainer.world_size == 1:
            return local
        sizes = self.all_gather(torch.tensor(local, device=self.device))
        return sizes.sum() / sizes.numel()

    # ---- training --------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        loss, _, _ = self.ctc_loss(batch, self._utterances_per_device(batch))
        bad = torch.tensor(0.0 if torch.isfinite(loss) else 1.0, device=loss.device)
        if self.trainer.world_size > 1:  # every rank must skip together or DDP hangs
            bad = self.trainer.strategy.reduce(bad, reduce_op="max")
        if bad.item() > 0:
            self.bad_streak += 1
            self.bad_total += 1
            warnings.warn(
                f"non-finite CTC loss at step {self.global_step} (batch ids {batch.get('ids', [])[:4]}"
                f"...): skipping the update ({self.bad_streak} in a row)",
                stacklevel=1,
            )
            self.log("train/skipped_steps", float(self.bad_total), rank_zero_only=True)
            if self.bad_streak >= self.max_bad_steps:
                raise RuntimeError(
                    f"{self.bad_streak} consecutive non-finite losses: stopping. Lower optimizer.lr, "
                    "raise scheduler.warmup_steps, check features for NaN/inf, or use fp32/bf16 "
                    "instead of fp16."
                )
            return None
        self.bad_streak = 0
        bsz = batch["features"].size(0)
        self.log("train_loss", loss, prog_bar=True, batch_size=bsz, sync_dist=False)
        self.log("train/skipped_steps", float(self.bad_total), rank_zero_only=True)
        return loss

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        self._batch_t0 = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: dict, batch_idx: int) -> None:
        if self._batch_t0 is None:
            return
        dt = max(time.perf_counter() - self._batch_t0, 1e-9)
        n_utt = batch["features"].size(0)
        audio_s = float(batch["feature_lengths"].sum()) * self.feature_frame_shift_s
        self.log("train/utt_per_s", n_utt / dt, rank_zero_only=True)
        self.log("train/audio_s_per_s", audio_s / dt, rank_zero_only=True)
        self.log("lr", self.optimizers().param_groups[0]["lr"], rank_zero_only=True)

    def on_fit_start(self) -> None:
        rank_zero_info(parameter_summary(self.model))

    def on_train_start(self) -> None:
        if self.scheduler_config.total_steps is None:
            est = self.trainer.estimated_stepping_batches
            for sched in self._schedulers():
                sched.total_steps = max(1, int(est)) if math.isfinite(est) else 100_000

    # ---- validation ------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_counts.zero_()
        self._val_loss.zero_()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, log_probs, out_lengths = self.ctc_loss(batch)
        bsz = log_probs.size(0)
        if torch.isfinite(loss):
            self._val_loss += torch.tensor([float(loss) * bsz, bsz], dtype=torch.float64)
        if self.tokenizer is None or "texts" not in batch:
            return
        hyps = [self.tokenizer.decode(ids) for ids in greedy_token_ids(log_probs, out_lengths)]
        refs = validation_references(self.tokenizer, batch["texts"])
        te, tn = edit_counts(refs, hyps, "word")  # words, or phones and word boundaries
        ce, cn = edit_counts(refs, hyps, "char") if self.error_metric == "val_wer" else (0, 0)
        self._val_counts += torch.tensor([te, tn, ce, cn], dtype=torch.float64)

    def on_validation_epoch_end(self) -> None:
        stats = torch.cat([self._val_counts, self._val_loss]).to(self.device)
        if self.trainer.world_size > 1:
            stats = self.trainer.strategy.reduce(stats, reduce_op="sum")
        te, tn, ce, cn, loss_sum, n = stats.tolist()
        metrics = {"val_loss": loss_sum / max(n, 1.0)}
        if self.error_metric is not None:
            metrics[self.error_metric] = te / tn if tn > 0 else math.inf
            if self.error_metric == "val_wer":
                metrics["val_cer"] = ce / cn if cn > 0 else math.inf
        # Already summed over ranks, so no sync_dist.
        for name, value in metrics.items():
            self.log(name, value, prog_bar=name in ("val_loss", self.error_metric))
        if not self.trainer.sanity_checking:
            for sched in self._schedulers():
                sched.report_metric(metrics[self.validation_metric])

    def _schedulers(self) -> list[WarmupScheduler]:
        scheds = self.lr_schedulers()
        scheds = scheds if isinstance(scheds, list) else [scheds]
        return [s for s in scheds if isinstance(s, WarmupScheduler)]

    # ---- optimisation ----------------------------------------------------------------------
    def configure_optimizers(self) -> dict:
        c = self.optimizer_config
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            # Norms and biases are not weight-decayed (standard transformer practice).
            (no_decay if p.dim() < 2 or "norm" in name else decay).append(p)
        groups = [
            {"params": decay, "weight_decay": c.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        opt = OPTIMIZERS[c.name](groups, lr=c.lr, betas=tuple(c.betas), eps=c.eps)
        # Not trainer.estimated_stepping_batches here: it builds the train loader before a
        # checkpoint's loop state is restored, which breaks exact mid-epoch resume. The real
        # total is filled in at on_train_start.
        total = self.scheduler_config.total_steps or 100_000
        sched = WarmupScheduler(opt, self.scheduler_config, total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ---- checkpoints -----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.tokenizer is not None and hasattr(self.tokenizer, "to_dict"):
            checkpoint["tokenizer"] = self.tokenizer.to_dict()
        checkpoint["bad_steps"] = {"streak": self.bad_streak, "total": self.bad_total}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.tokenizer is None and "tokenizer" in checkpoint:
            from asr.data.tokenizer import tokenizer_from_dict

            self.tokenizer = tokenizer_from_dict(checkpoint["tokenizer"])
            self.error_metric = error_metric_name(self.tokenizer)
        bad = checkpoint.get("bad_steps", {})
        self.bad_streak, self.bad_total = bad.get("streak", 0), bad.get("total", 0)


def parameter_summary(model: nn.Module) -> str:
    """Parameter counts per top-level block, for the training log."""
    lines = ["parameters:"]
    total = 0
    for name, mod in model.named_children():
        sub = [(n, m) for n, m in mod.named_children()] or [(name, mod)]
        for sname, smod in sub:
            n = sum(p.numel() for p in smod.parameters())
            if n:
                lines.append(
                    f"  {name}.{sname}: {n / 1e6:.3f}M"
                    if sname != name
                    else f"  {name}: {n / 1e6:.3f}M"
                )
            total += n
    lines.append(f"  total: {total / 1e6:.3f}M")
    return "\n".join(lines)


__all__ = [
    "CTCLightningModule",
    "OptimizerConfig",
    "SchedulerConfig",
    "WarmupScheduler",
    "greedy_token_ids",
    "parameter_summary",
]
