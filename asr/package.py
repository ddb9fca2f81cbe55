"""Model packages: one self-contained safetensors file per trained model.

Tensors hold the weights (``model.*``) and the global CMVN (``cmvn.mean``/``cmvn.std``); the
string metadata holds JSON for the model config, the tokenizer, the feature config and training
metadata. Nothing is pickled, so a package is safe to load from anywhere and needs no training
code beyond :mod:`asr`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from asr.averaging import average_checkpoints
from asr.models import CTCModel, EncoderConfig

FORMAT = "linear-asr-package/1"
MODEL_PREFIX = "model."


def _to_dict(obj: Any) -> dict | None:
    if obj is None or isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"{type(obj).__name__} has no to_dict(); cannot store it in a model package")


def save_package(
    path: str | Path,
    model: CTCModel,
    model_config: EncoderConfig | dict,
    tokenizer: Any,
    fbank_config: Any,
    cmvn: Any | None,
    metadata: dict | None = None,
) -> Path:
    """Write ``model`` and everything needed to run it to ``path`` (one ``.safetensors`` file).

    :param tokenizer: object with ``to_dict()`` (or its dict).
    :param fbank_config: ``FbankConfig`` (or its dict).
    :param cmvn: ``GlobalCMVN`` with ``mean``/``std`` tensors, or None if features are raw.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not isinstance(model_config, EncoderConfig):
        model_config = EncoderConfig.from_dict(model_config)  # also a pre-split flat dict
    enc = model_config.to_dict()
    tensors = {
        MODEL_PREFIX + k: v.detach().cpu().contiguous().clone()
        for k, v in model.state_dict().items()
    }
    if cmvn is not None:
        tensors["cmvn.mean"] = torch.as_tensor(cmvn.mean, dtype=torch.float32).contiguous()
        tensors["cmvn.std"] = torch.as_tensor(cmvn.std, dtype=torch.float32).contiguous()
    meta = {
        "format": FORMAT,
        "model_config": json.dumps({"encoder": enc, "vocab_size": model.vocab_size}),
        "tokenizer": json.dumps(_to_dict(tokenizer)),
        "fbank_config": json.dumps(_to_dict(fbank_config)),
        "training": json.dumps(metadata or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)  # never leave a half-written package behind
    return path


@dataclass
class ModelPackage:
    """A loaded package: model in eval mode plus what turns audio into its input and its output
    into text."""

    model: CTCModel
    tokenizer: Any
    fbank_config: Any
    cmvn: Any | None
    metadata: dict = field(default_factory=dict)
    #: the file it was read from: asr.bundle reads a decoding bundle's members from it
    path: Path | None = None

    @property
    def frame_shift_s(self) -> float:
        """Seconds per output frame (feature shift x encoder subsampling)."""
        shift_ms = _get(self.fbank_config, "frame_shift_ms", 10.0)
        return shift_ms / 1000.0 * self.model.subsampling

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> ModelPackage:
        self.model.to(device)
        return self

    def featurize(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Waveform ``(T,)`` -> ``(frames, F)`` filterbanks, CMVN applied, as in training."""
        from asr.features import fbank_features

        feats = fbank_features(torch.as_tensor(waveform), sample_rate, self.fbank_config)
        return self.cmvn(feats) if self.cmvn is not None else feats

    @torch.inference_mode()
    def log_probs(
        self, features: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, F)`` (or ``(T, F)``) -> ``(B, T', V)`` float32 log-probs and lengths."""
        if features.dim() == 2:
            features = features[None]
        if lengths is None:
            lengths = torch.full((features.size(0),), features.size(1), dtype=torch.long)
        dev = self.device
        return self.model(features.to(dev, torch.float32), lengths.to(dev))


def _get(obj: Any, name: str, default: Any) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def load_package(path: str | Path, device: str | torch.device = "cpu") -> ModelPackage:
    """Read a package written by :func:`save_package`; the model comes back in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model package not found: {path}")
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(
                f"{path} is not a model package (format {meta.get('format')!r}, expected {FORMAT!r})"
            )
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
    model_cfg = json.loads(meta["model_config"])
    model = CTCModel(EncoderConfig.from_dict(model_cfg["encoder"]), model_cfg["vocab_size"])
    weights = {k[len(MODEL_PREFIX) :]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    model.load_state_dict(weights)
    model.eval().to(device)
    tok_dict = json.loads(meta["tokenizer"])
    fb_dict = json.loads(meta["fbank_config"])
    return ModelPackage(
        model=model,
        tokenizer=_tokenizer(tok_dict),
        fbank_config=_fbank_config(fb_dict),
        cmvn=_cmvn(tensors),
        metadata=json.loads(meta.get("training", "{}")),
        path=path,
    )


def _tokenizer(d: dict | None) -> Any:
    if d is None:
        return None
    from asr.data.tokenizer import tokenizer_from_dict

    return tokenizer_from_dict(d)


def _fbank_config(d: dict | None) -> Any:
    if d is None:
        return None
    try:
        from asr.features import FbankConfig
    except ImportError:  # features module absent: keep the dict (frame_shift_s still works)
        return d
    return FbankConfig.from_dict(d)


def _cmvn(tensors: dict[str, torch.Tensor]) -> Any | None:
    if "cmvn.mean" not in tensors:
        return None
    from asr.features import GlobalCMVN

    return GlobalCMVN(tensors["cmvn.mean"], tensors["cmvn.std"])


def package_from_checkpoints(
    out_path: str | Path,
    checkpoint_paths: list[str | Path],
    fbank_config: Any,
    cmvn: Any | None,
    metadata: dict | None = None,
) -> Path:
    """Average ``checkpoint_paths`` (one path = no averaging) into a package at ``out_path``.

    The model config and tokenizer come from the (first) Lightning checkpoint itself.
    """
    if not checkpoint_paths:
        raise ValueError("package_from_checkpoints needs at least one checkpoint")
    ckpt = torch.load(checkpoint_paths[0], map_location="cpu", weights_only=True)
    hp = ckpt.get("hyper_parameters", {})
    if "encoder" not in hp or "vocab_size" not in hp:
        raise ValueError(f"{checkpoint_paths[0]} has no encoder/vocab_size hyperparameters")
    if "tokenizer" not in ckpt:
        raise ValueError(f"{checkpoint_paths[0]} holds no tokenizer; train with a tokenizer")
    model = CTCModel(EncoderConfig.from_dict(hp["encoder"]), hp["vocab_size"])
    state = average_checkpoints(checkpoint_paths)
    prefix = "model."
    model.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    meta = {
        "checkpoints": [str(p) for p in checkpoint_paths],
        "global_step": ckpt.get("global_step"),
        "epoch": ckpt.get("epoch"),
        **(metadata or {}),
    }
    return save_package(out_path, model, model.config, ckpt["tokenizer"], fbank_config, cmvn, meta)
