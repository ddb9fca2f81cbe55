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

from asr import train as _train

from .lightning import ARLightningModule
from .package import package_from_checkpoints


class ARTrainCLI(_train.TrainCLI):
    """``asr-train`` plumbing; best checkpoints named ``epoch3-step120-loss2.4296.ckpt``."""

    checkpoint_label = "loss"


def build_cli(args: list[str] | None = None) -> _train.TrainCLI:
    return _train.build_cli(args, ARLightningModule, ARTrainCLI)


def main(args: list[str] | None = None) -> None:
    cli = build_cli(args)
    root = cli.fit()
    out = cli.package_path()
    chosen = cli.checkpoints_to_package() if out is not None else []
    if chosen:
        package_from_checkpoints(out, chosen, {"averaged": len(chosen), "root": str(root)})
        print(f"wrote model package {out} from {len(chosen)} checkpoint(s)")


if __name__ == "__main__":
    main()
