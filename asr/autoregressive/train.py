"""``asr-train-ar``: train an autoregressive model from one YAML config, resuming automatically.

    asr-train-ar --config conf/cpu.yaml [--model.model.attention causal-softmax ...]

The YAML follows ``asr-train``: ``model`` (:class:`ARLightningModule` arguments), ``data``
(``class_path`` of a data module in :mod:`asr.autoregressive.data` + ``init_args``), ``trainer``
(any Lightning Trainer argument) and ``run`` (:class:`asr.train.RunOptions`: checkpointing,
resume, packaging). Rerunning the same command continues from
``<default_root_dir>/checkpoints/last.ckpt``; training ends by writing
``<default_root_dir>/model.safetensors`` from the checkpoint(s) with the lowest ``val_loss``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from asr.train import RunOptions

from .lightning import ARLightningModule
from .package import package_from_checkpoints

log = logging.getLogger(__name__)
MONITOR = "val_loss"


class ARTrainCLI(LightningCLI):
    """LightningCLI without subcommands; checkpoints, loggers and the package under one folder."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_class_arguments(RunOptions, "run")

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list) -> L.Trainer:
        root = Path(config.get("default_root_dir") or ".")
        config["default_root_dir"] = str(root)
        run = self.run_options()
        own = [
            ModelCheckpoint(
                dirpath=root / "checkpoints",
                filename="epoch{epoch}-step{step}-loss{val_loss:.4f}",
                auto_insert_metric_name=False,
                monitor=MONITOR,
                mode="min",
                save_top_k=run.save_top_k,
                save_last=True,
                enable_version_counter=False,  # both callbacks write the one last.ckpt
            ),
        ]
        if run.every_n_train_steps:
            own.append(
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
        if config.get("logger") in (None, True):
            config["logger"] = [
                TensorBoardLogger(root, name="tensorboard", version=""),
                CSVLogger(root, name="csv", version=""),
            ]
        config.setdefault("use_distributed_sampler", False)  # the samplers are our own
        config["enable_autolog_hparams"] = False
        return super()._instantiate_trainer(config, [*callbacks, *own])

    def run_options(self) -> RunOptions:
        r = self.config.get("run")
        if isinstance(r, RunOptions):
            return r
        return RunOptions(**(dict(r) if r is not None else {}))


def build_cli(args: list[str] | None = None) -> ARTrainCLI:
    return ARTrainCLI(
        ARLightningModule,
        L.LightningDataModule,
        subclass_mode_data=True,
        run=False,
        args=args,
        seed_everything_default=1234,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"use_distributed_sampler": False},
        auto_configure_optimizers=False,
    )


def main(args: list[str] | None = None) -> None:
    cli = build_cli(args)
    run = cli.run_options()
    trainer, model, dm = cli.trainer, cli.model, cli.datamodule
    root = Path(trainer.default_root_dir)
    last = root / "checkpoints" / "last.ckpt"
    ckpt = str(last) if run.resume and last.is_file() else None
    if ckpt:
        log.info("resuming from %s", ckpt)
        print(f"resuming from {ckpt}")
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
    if run.package_path == "" or not trainer.is_global_zero:
        return
    write_package(trainer, run, root)


def write_package(trainer: L.Trainer, run: RunOptions, root: Path) -> Path | None:
    """Package the best checkpoint (or the mean of the best ``run.package_average``)."""
    best = next((c for c in trainer.checkpoint_callbacks if c.monitor == MONITOR), None)
    ranked: list[str] = []
    if best is not None and best.best_k_models:
        ranked = sorted(best.best_k_models, key=lambda p: float(best.best_k_models[p]))
    if not ranked:
        last = root / "checkpoints" / "last.ckpt"
        if not last.is_file():
            log.warning("no checkpoint to package under %s", root / "checkpoints")
            return None
        ranked = [str(last)]
    chosen = ranked[: max(1, run.package_average)]
    out = Path(run.package_path) if run.package_path else root / "model.safetensors"
    path = package_from_checkpoints(out, chosen, {"averaged": len(chosen), "root": str(root)})
    print(f"wrote model package {path} from {len(chosen)} checkpoint(s)")
    return path


if __name__ == "__main__":
    main()
