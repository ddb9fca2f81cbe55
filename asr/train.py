"""``asr-train``: train a CTC model from one YAML config, resuming automatically.

    asr-train --config conf/linear.yaml [--trainer.max_epochs 3 ...]

The YAML has ``model`` (:class:`asr.lightning.CTCLightningModule` arguments: encoder, optimizer,
scheduler), ``data`` (``class_path: asr.data.datamodule.ASRDataModule`` + ``init_args``),
``trainer`` (any Lightning Trainer argument: precision ``bf16-mixed``, strategy ``ddp``,
devices, num_nodes; SLURM and torchrun are handled by Lightning) and ``run`` (checkpointing and
packaging, :class:`RunOptions`). The data module defines the features and the vocabulary: its
``feature_dim``, ``tokenizer`` and ``frame_shift_s`` are linked into the model (so
``model.encoder.input_dim`` is not set in the YAML). Rerunning the same command continues from
``<default_root_dir>/checkpoints/last.ckpt``. Training ends by writing
``<default_root_dir>/model.safetensors`` (see :mod:`asr.package`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from asr.data.resume import ResumableDataModule
from asr.lightning import CTCLightningModule
from asr.machine import native_bf16
from asr.package import package_from_checkpoints

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """Checkpointing, resuming and packaging.

    :param save_top_k: keep the best N checkpoints by the validation error rate
        (:attr:`CTCLightningModule.validation_metric`, e.g. ``val_per``), plus ``last.ckpt``.
    :param every_n_train_steps: also save ``last.ckpt`` every this many steps (mid-epoch resume
        point); None = only at validation.
    :param resume: continue from ``checkpoints/last.ckpt`` when it exists.
    :param package_path: where to write the model package (default
        ``<default_root_dir>/model.safetensors``); empty string = do not package.
    :param package_average: average the best N checkpoints into the package (1 = best only).
    :param bf16_when_native: train in ``bf16-mixed`` (weights and loss stay float32) where the
        hardware computes bf16 natively (:func:`asr.machine.native_bf16`), whatever
        ``trainer.precision`` says; elsewhere ``trainer.precision`` stands, since emulated bf16
        is slower than float32.
    """

    save_top_k: int = 3
    every_n_train_steps: int | None = 500
    resume: bool = True
    package_path: str | None = None
    package_average: int = 1
    bf16_when_native: bool = False


def checkpoint_callbacks(
    root: Path, run: RunOptions, metric: str, label: str | None = None
) -> list[Callback]:
    """Best-``metric`` checkpoints named after it (``epoch3-step120-val_per0.1150.ckpt``; ``label``
    replaces the metric's name there), plus ``last.ckpt`` at validation and every
    ``run.every_n_train_steps`` steps. Both callbacks write the one ``last.ckpt`` (no version
    counter): with it, whichever saved second wrote ``last-v1.ckpt``, which resuming never read."""
    callbacks: list[Callback] = [
        ModelCheckpoint(
            dirpath=root / "checkpoints",
            filename=f"epoch{{epoch}}-step{{step}}-{label or metric}{{{metric}:.4f}}",
            auto_insert_metric_name=False,
            monitor=metric,
            mode="min",
            save_top_k=run.save_top_k,
            save_last=True,
            enable_version_counter=False,
        )
    ]
    if run.every_n_train_steps:
        callbacks.append(
            ModelCheckpoint(
                dirpath=root / "checkpoints",
                filename="last",
                save_top_k=0,
                save_last=True,
                every_n_train_steps=run.every_n_train_steps,
                monitor=None,
                enable_version_counter=False,
            )
        )
    return callbacks


def validation_metric(module: Any) -> str:
    """The metric a module's best checkpoints follow (``val_loss`` unless it says otherwise)."""
    return getattr(module, "validation_metric", "val_loss")


class TrainCLI(LightningCLI):
    """LightningCLI without subcommands: checkpoints, loggers and the package under one folder
    (``trainer.default_root_dir``), the ``run`` options, and resuming. Shared by ``asr-train``
    and ``asr-train-ar``."""

    #: the metric's name in best-checkpoint file names (None: the metric itself)
    checkpoint_label: str | None = None

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_class_arguments(RunOptions, "run")

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        trainer_config = self.config_init.get("trainer") or {}
        root = Path(trainer_config.get("default_root_dir") or ".")
        metric = validation_metric(self.model)
        user = trainer_config.get("callbacks") or []
        callbacks = [
            *(user if isinstance(user, list) else [user]),
            *checkpoint_callbacks(root, self.run_options(), metric, self.checkpoint_label),
        ]
        if self.run_options().bf16_when_native and native_bf16(trainer_config.get("accelerator")):
            print("training in bf16-mixed precision: this hardware computes bf16 natively")
            warnings.filterwarnings("ignore", "Precision bf16-mixed is not supported by the model")
            kwargs["precision"] = "bf16-mixed"
        if trainer_config.get("logger") in (None, True):
            kwargs["logger"] = [
                TensorBoardLogger(root, name="tensorboard", version=""),
                CSVLogger(root, name="csv", version=""),
            ]
        return super().instantiate_trainer(
            default_root_dir=str(root), callbacks=callbacks, **kwargs
        )

    def run_options(self) -> RunOptions:
        r = self.config_init.get("run")
        if isinstance(r, RunOptions):
            return r
        return RunOptions(**(dict(r) if r is not None else {}))

    def fit(self) -> Path:
        """Fit, continuing from ``checkpoints/last.ckpt`` when ``run.resume`` and it exists;
        returns the run's folder."""
        trainer = self.trainer
        if isinstance(self.datamodule, ResumableDataModule):  # Lightning cannot see it resumes
            warnings.filterwarnings("ignore", "You're resuming from a checkpoint that ended before")
        root = Path(trainer.default_root_dir)
        last = root / "checkpoints" / "last.ckpt"
        ckpt = str(last) if self.run_options().resume and last.is_file() else None
        if ckpt:
            log.info("resuming from %s", ckpt)
            print(f"resuming from {ckpt}")
        trainer.fit(self.model, datamodule=self.datamodule, ckpt_path=ckpt)
        return root

    def checkpoints_to_package(self) -> list[str]:
        """The best ``run.package_average`` checkpoints by the validation metric, best first;
        ``last.ckpt`` when none was ranked (no validation ran); empty when there is none."""
        trainer, root = self.trainer, Path(self.trainer.default_root_dir)
        metric = validation_metric(trainer.lightning_module)
        best = next((c for c in trainer.checkpoint_callbacks if c.monitor == metric), None)
        ranked: list[str] = []
        if best is not None and best.best_k_models:
            ranked = sorted(best.best_k_models, key=lambda p: float(best.best_k_models[p]))
        if not ranked:
            last = root / "checkpoints" / "last.ckpt"
            if not last.is_file():
                log.warning("no checkpoint to package under %s", root / "checkpoints")
                return []
            ranked = [str(last)]
        return ranked[: max(1, self.run_options().package_average)]

    def package_path(self) -> Path | None:
        """Where the package goes, or None when ``run.package_path`` is "" or this is not rank 0."""
        run = self.run_options()
        if run.package_path == "" or not self.trainer.is_global_zero:
            return None
        return Path(run.package_path or Path(self.trainer.default_root_dir) / "model.safetensors")


class ASRTrainCLI(TrainCLI):
    """``asr-train``: the data module defines features and vocabulary, linked into the model."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        super().add_arguments_to_parser(parser)
        # Defined once, by the data module; a data module without them leaves the model's own.
        for source, target in (
            ("data.feature_dim", "model.encoder.input_dim"),
            ("data.tokenizer", "model.tokenizer"),
            ("data.frame_shift_s", "model.feature_frame_shift_s"),
        ):
            parser.link_arguments(source, target, apply_on="instantiate")


def build_cli(
    args: list[str] | None = None,
    module: type[L.LightningModule] = CTCLightningModule,
    cli: type[TrainCLI] | None = None,
) -> TrainCLI:
    """The ``asr-train`` CLI (``module`` and ``cli`` give ``asr-train-ar`` its own)."""
    return (cli or ASRTrainCLI)(
        module,
        L.LightningDataModule,
        subclass_mode_data=True,
        run=False,
        args=args,
        seed_everything_default=1234,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={
            "use_distributed_sampler": False,  # our samplers shard by rank
            # Lightning refuses to merge model and data hparams sharing a key (vocab_size) with
            # different values; the config.yaml saved beside the logs records everything.
            "enable_autolog_hparams": False,
        },
        auto_configure_optimizers=False,
    )


def main(args: list[str] | None = None) -> None:
    cli = build_cli(args)
    cli.fit()
    out = cli.package_path()
    if out is not None:
        write_package(cli, out)


def write_package(cli: TrainCLI, out: Path) -> Path | None:
    """Package the best checkpoint (or the mean of the best ``run.package_average``) with the
    data module's features and CMVN."""
    chosen = cli.checkpoints_to_package()
    if not chosen:
        return None
    dm = cli.datamodule
    fbank = getattr(dm, "fbank", None) or getattr(dm, "fbank_config", None)
    if fbank is None:
        from asr.features import FbankConfig

        log.warning("data module exposes no fbank config: packaging FbankConfig() defaults")
        fbank = FbankConfig()
    path = package_from_checkpoints(
        out,
        chosen,
        fbank,
        getattr(dm, "cmvn", None),
        metadata={"averaged": len(chosen), "root": str(cli.trainer.default_root_dir)},
    )
    print(f"wrote model package {path} from {len(chosen)} checkpoint(s)")
    return path


if __name__ == "__main__":
    main()
