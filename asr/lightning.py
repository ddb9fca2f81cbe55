"""CTCLightningModule: trains a :class:`asr.models.CTCModel` with Lightning.

Owns what the training loop needs beyond the model: the CTC loss (float32, blank 0,
``zero_infinity``), optimisers with warmup schedules, skipping of non-finite losses, greedy
WER/CER validation (jiwer), throughput logging, and keeping the tokenizer inside checkpoints so a
model package can be written from any checkpoint.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import jiwer
import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from asr.models import CTCModel, EncoderConfig

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
    - ``plateau``: constant after warmup; multiplied by ``plateau_factor`` when ``val_wer`` has not
      improved for ``plateau_patience`` validations; floor ``lr * min_lr_ratio``.
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


def edit_counts(refs: list[str], hyps: list[str], unit: str) -> tuple[int, int]:
    """(errors, reference length) in words or characters; empty references count insertions."""
    errors = total = 0
    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True)]
    nonempty = [(r, h) for r, h in pairs if r.strip()]
    for r, h in pairs:
        if not r.strip():
            errors += len(h.split()) if unit == "word" else len(h.replace(" ", ""))
    if nonempty:
        r, h = [p[0] for p in nonempty], [p[1] for p in nonempty]
        o = jiwer.process_words(r, h) if unit == "word" else jiwer.process_characters(r, h)
        errors += o.substitutions + o.deletions + o.insertions
        total += o.substitutions + o.deletions + o.hits
    return errors, total


def validation_references(tokenizer: Any, texts: list[str]) -> list[str]:
    """References in the units ``tokenizer.decode`` writes.

    Char and sentencepiece tokenizers decode to words, so the texts serve as they are. A
    phoneme model decodes to phones: its references become their phones, and val_wer is then
    a token (phone and word-boundary) error rate rather than a meaningless phones-vs-words one.
    """
    if getattr(tokenizer, "kind", "") == "phoneme":
        return [tokenizer.decode(tokenizer.encode(t)) for t in texts]
    return texts


class CTCLightningModule(L.LightningModule):
    """CTC training of a linear-attention (or softmax / Bi-LSTM) encoder.

    :param encoder: the :class:`EncoderConfig` (or its dict, e.g. from a checkpoint).
    :param vocab_size: output size incl. blank; taken from the tokenizer when omitted.
    :param tokenizer_path: a saved :mod:`asr.data` tokenizer (used for vocab size and WER).
    :param max_bad_steps: stop after this many consecutive non-finite losses.
    :param feature_frame_shift_s: seconds per input feature frame (for audio-seconds/s logging).
    :param tokenizer: an in-memory tokenizer (``decode``, ``to_dict``), instead of the path.
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
        self.ctc = nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)
        self.bad_streak = 0
        self.bad_total = 0
        self._batch_t0: float | None = None
        self._val_counts = torch.zeros(4, dtype=torch.float64)  # word err, words, char err, chars
        self._val_loss = torch.zeros(2, dtype=torch.float64)  # loss sum, utterances

    # ---- model -----------------------------------------------------------------------------
    def forward(
        self, features: torch.Tensor, feature_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(features, feature_lengths)

    def ctc_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sum of per-utterance CTC losses / batch size, in float32 outside autocast."""
        log_probs, out_lengths = self.model(batch["features"], batch["feature_lengths"])
        with torch.autocast(device_type=log_probs.device.type, enabled=False):
            loss = self.ctc(
                log_probs.float().transpose(0, 1),
                batch["targets"],
                out_lengths,
                batch["target_lengths"],
            )
        return loss / log_probs.size(0), log_probs, out_lengths

    # ---- training --------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        loss, _, _ = self.ctc_loss(batch)
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
        we, wn = edit_counts(refs, hyps, "word")
        ce, cn = edit_counts(refs, hyps, "char")
        self._val_counts += torch.tensor([we, wn, ce, cn], dtype=torch.float64)

    def on_validation_epoch_end(self) -> None:
        stats = torch.cat([self._val_counts, self._val_loss]).to(self.device)
        if self.trainer.world_size > 1:
            stats = self.trainer.strategy.reduce(stats, reduce_op="sum")
        we, wn, ce, cn, loss_sum, n = stats.tolist()
        val_loss = loss_sum / max(n, 1.0)
        wer = we / wn if wn > 0 else math.inf
        cer = ce / cn if cn > 0 else math.inf
        # Already summed over ranks, so no sync_dist.
        self.log("val_loss", val_loss, prog_bar=True)
        if self.tokenizer is not None:
            self.log("val_wer", wer, prog_bar=True)
            self.log("val_cer", cer)
            if not self.trainer.sanity_checking:
                for sched in self._schedulers():
                    sched.report_metric(wer)

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
    "edit_counts",
    "greedy_token_ids",
    "parameter_summary",
]


class _SkipFirstBatches:
    """Batch sampler wrapper that drops the first ``skip`` batches of its next iteration only.

    ``len`` stays the full epoch length because Lightning's progress counters continue from the
    restored batch index and stop the epoch at that length.
    """

    def __init__(self, inner: Any, skip: int) -> None:
        self.inner, self.skip = inner, skip

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self):  # noqa: ANN204
        skip, self.skip = self.skip, 0
        for i, batch in enumerate(self.inner):
            if i >= skip:
                yield batch

    def __getattr__(self, name: str) -> Any:  # set_epoch, state_dict, ... reach the sampler
        if name == "inner":  # not yet set (unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


def _train_batch_sampler(trainer: L.Trainer) -> Any:
    dl = trainer.train_dataloader
    if isinstance(dl, (list, tuple)):
        dl = dl[0] if dl else None
    if dl is None:
        return None
    bs = getattr(dl, "batch_sampler", None)
    return bs.inner if isinstance(bs, _SkipFirstBatches) else bs


class SamplerResumeCallback(L.Callback):
    """Makes mid-epoch resume exact: the resumed epoch replays the same batch order and skips
    the batches already trained on.

    A datamodule with its own ``state_dict`` (such as ``ASRDataModule``) restores its sampler
    itself; then this callback only calls ``set_epoch``. Otherwise it saves
    ``{"epoch", "batches_done", "sampler": sampler.state_dict()}``. On resume it wraps the
    datamodule's ``train_dataloader`` so that, before iteration starts, the batch sampler gets its
    state back, ``set_epoch(epoch)``, and then skips ``batches_done`` batches (through the
    sampler's own ``set_resume_position(k)`` when it has one, else a wrapper). Prefetching
    DataLoader workers run ahead of training, so the trained-batch count comes from Lightning's
    progress counters, not from the sampler.
    """

    KEY = "sampler_resume"

    def __init__(self) -> None:
        self.pending: dict | None = None
        self.datamodule_resumes = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        dm = trainer.datamodule
        if stage != "fit" or dm is None or getattr(dm, "_resume_wrapped", False):
            return
        if type(dm).state_dict is not L.LightningDataModule.state_dict:
            self.datamodule_resumes = True  # e.g. ASRDataModule keeps its sampler position itself
            return
        original = dm.train_dataloader

        def train_dataloader() -> Any:
            return self._apply(trainer, original())

        dm.train_dataloader = train_dataloader
        dm._resume_wrapped = True

    def _apply(self, trainer: L.Trainer, dl: Any) -> Any:
        # Lightning may build a throwaway loader first (estimated_stepping_batches), before the
        # loop state is restored, so keep the state until training actually starts.
        # trainer.current_epoch is not restored yet at this point (and Lightning moves on to the
        # next epoch only later when the checkpoint closed an epoch), so trust the saved state.
        state = self.pending
        if state is None:
            return dl
        bs = getattr(dl, "batch_sampler", None)
        if bs is None:
            raise RuntimeError("mid-epoch resume needs a DataLoader built with a batch_sampler")
        if state.get("sampler") is not None and hasattr(bs, "load_state_dict"):
            bs.load_state_dict(state["sampler"])
        if hasattr(bs, "set_epoch"):
            bs.set_epoch(state["epoch"])
        k = int(state["batches_done"])
        if k <= 0:
            return dl
        if hasattr(bs, "set_resume_position"):
            bs.set_resume_position(k)
        else:
            # DataLoader forbids re-assigning batch_sampler after __init__; this is the one place.
            object.__setattr__(dl, "batch_sampler", _SkipFirstBatches(bs, k))
        return dl

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.pending = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning only calls set_epoch on dataloader.sampler / batch_sampler.sampler, not on a
        # custom batch sampler, so without this every epoch would repeat epoch 0's order.
        bs = _train_batch_sampler(trainer)
        if bs is not None and hasattr(bs, "set_epoch"):
            bs.set_epoch(trainer.current_epoch)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        bs = _train_batch_sampler(trainer)
        # processed, not completed: checkpoints saved in on_train_batch_end have trained this
        # batch but not yet counted it as completed.
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        epoch = trainer.current_epoch
        if done >= trainer.num_training_batches:  # saved at the end of an epoch: Lightning
            epoch, done = epoch + 1, 0  # resumes with the next one
        checkpoint[self.KEY] = {
            "epoch": epoch,
            "batches_done": done,
            "sampler": bs.state_dict() if hasattr(bs, "state_dict") else None,
        }

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        if not self.datamodule_resumes:
            self.pending = checkpoint.get(self.KEY)
