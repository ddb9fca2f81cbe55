"""Activation checkpointing of the transformer layers: same results, fewer saved activations."""

from __future__ import annotations

import pytest
import torch

from asr.models import EncoderConfig, build_encoder


def _encoder(checkpoint_layers: bool, dropout: float) -> torch.nn.Module:
    torch.manual_seed(3)
    cfg = EncoderConfig.from_dict(
        dict(
            input_dim=12,
            subsampling=1,
            conv_channels=0,
            d_model=16,
            n_layers=3,
            n_heads=2,
            d_ff=32,
            attention="linear",
            positional="conv",
            conv_pos_kernel=3,
            dropout=dropout,
            checkpoint_layers=checkpoint_layers,
        )
    )
    return build_encoder(cfg).train()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(4)
    return torch.randn(2, 21, 12, generator=gen), torch.tensor([21, 13])


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_checkpointed_layers_give_the_same_outputs_and_gradients(dropout: float) -> None:
    results = []
    for checkpoint_layers in (False, True):
        encoder = _encoder(checkpoint_layers, dropout)
        x, lengths = _inputs()
        torch.manual_seed(5)  # the dropout masks
        y, _ = encoder(x, lengths)
        y.square().sum().backward()
        results.append((y.detach(), [p.grad for p in encoder.parameters()]))
    (y_plain, g_plain), (y_ckpt, g_ckpt) = results
    torch.testing.assert_close(y_ckpt, y_plain, rtol=0, atol=0)
    for a, b in zip(g_ckpt, g_plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _saved_bytes(encoder: torch.nn.Module) -> int:
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    x, lengths = _inputs()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        encoder(x, lengths)
    return total


def test_checkpointing_keeps_fewer_activations_for_backward() -> None:
    plain = _saved_bytes(_encoder(False, 0.0))
    checkpointed = _saved_bytes(_encoder(True, 0.0))
    assert checkpointed < plain / 2, (checkpointed, plain)
