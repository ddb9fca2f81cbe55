"""Checkpoint averaging: the mean of N checkpoints' weights usually beats the best single one."""

from __future__ import annotations

from pathlib import Path

import torch


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Weights of a Lightning checkpoint (``state_dict``) or of a bare state dict, without pickle."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return ckpt["state_dict"] if isinstance(ckpt, dict) and "state_dict" in ckpt else ckpt


def average_state_dicts(state_dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating tensors (accumulated in float64); other tensors from the last."""
    if not state_dicts:
        raise ValueError("average_state_dicts needs at least one state dict")
    keys = list(state_dicts[0])
    for i, sd in enumerate(state_dicts[1:], start=1):
        if set(sd) != set(keys):
            diff = sorted(set(sd) ^ set(keys))[:5]
            raise ValueError(f"state dict {i} has different keys from the first (e.g. {diff})")
    out = {}
    for k in keys:
        ref = state_dicts[0][k]
        if ref.is_floating_point():
            acc = torch.zeros_like(ref, dtype=torch.float64)
            for sd in state_dicts:
                acc += sd[k].to(torch.float64)
            out[k] = (acc / len(state_dicts)).to(ref.dtype)
        else:
            out[k] = state_dicts[-1][k].clone()
    return out


def average_checkpoints(paths: list[str | Path]) -> dict[str, torch.Tensor]:
    """Mean weights of the checkpoints at ``paths`` (Lightning ``.ckpt`` or plain state dicts)."""
    return average_state_dicts([load_state_dict(p) for p in paths])
