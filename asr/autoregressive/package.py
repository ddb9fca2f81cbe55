"""Autoregressive model packages: one safetensors file with the weights and, as JSON metadata,
the model config, what the data looks like (copy task, image shape) and training metadata.

The same idea as :mod:`asr.package` for the speech models (nothing pickled), with its own
format tag because the model and its companions differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from asr.averaging import average_checkpoints

from .model import ARConfig, CausalTransformer

FORMAT = "linear-asr-ar-package/1"
MODEL_PREFIX = "model."


@dataclass
class ARPackage:
    """A loaded package: the model in eval mode and what its sequences mean."""

    model: CausalTransformer
    data: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    @property
    def config(self) -> ARConfig:
        return self.model.config


def save_package(
    path: str | Path,
    model: CausalTransformer,
    data: dict | None = None,
    metadata: dict | None = None,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        MODEL_PREFIX + k: v.detach().cpu().contiguous().clone()
        for k, v in model.state_dict().items()
    }
    meta = {
        "format": FORMAT,
        "model_config": json.dumps(model.config.to_dict()),
        "data": json.dumps(data or {}),
        "training": json.dumps(metadata or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)  # never leave a half-written package behind
    return path


def load_package(path: str | Path, device: str | torch.device = "cpu") -> ARPackage:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model package not found: {path}")
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(
                f"{path} is not an autoregressive model package (format {meta.get('format')!r}, "
                f"expected {FORMAT!r})"
            )
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
    model = CausalTransformer(ARConfig.from_dict(json.loads(meta["model_config"])))
    model.load_state_dict(
        {k[len(MODEL_PREFIX) :]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    )
    model.eval().to(device)
    return ARPackage(
        model, json.loads(meta.get("data", "{}")), json.loads(meta.get("training", "{}"))
    )


def package_from_checkpoints(
    out_path: str | Path, checkpoint_paths: list[str | Path], metadata: dict | None = None
) -> Path:
    """Average ``checkpoint_paths`` (one path = no averaging) into a package at ``out_path``."""
    if not checkpoint_paths:
        raise ValueError("package_from_checkpoints needs at least one checkpoint")
    ckpt = torch.load(checkpoint_paths[0], map_location="cpu", weights_only=True)
    hp = ckpt.get("hyper_parameters", {})
    if "model" not in hp:
        raise ValueError(
            f"{checkpoint_paths[0]} has no model hyperparameters (not an AR checkpoint)"
        )
    model = CausalTransformer(ARConfig.from_dict(hp["model"]))
    state = average_checkpoints(checkpoint_paths)
    model.load_state_dict(
        {k[len(MODEL_PREFIX) :]: v for k, v in state.items() if k.startswith(MODEL_PREFIX)}
    )
    meta = {
        "checkpoints": [str(p) for p in checkpoint_paths],
        "global_step": ckpt.get("global_step"),
        "epoch": ckpt.get("epoch"),
        **(metadata or {}),
    }
    return save_package(out_path, model, ckpt.get("data_info", {}), meta)
