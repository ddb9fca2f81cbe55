"""The Bi-LSTM encoder's unpacked path against the packed-sequence form it replaces."""

from __future__ import annotations

import pytest
import torch

from asr.models import EncoderConfig, build_encoder
from asr.models.lstm import reversal_index, reverse_within


def _encoder(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    cfg = EncoderConfig.from_dict(
        dict(
            encoder_type="lstm",
            input_dim=12,
            subsampling=1,
            conv_channels=0,
            d_model=10,
            dropout=0.0,
            lstm_hidden=7,
            lstm_layers=3,
        )
    )
    return build_encoder(cfg)


@pytest.mark.parametrize("lengths", [[31, 17, 1, 31], [23, 23], [9]])
def test_unpacked_equals_packed(lengths: list[int]) -> None:
    seed = 1000 + sum(lengths)
    print("seed", seed)
    encoder = _encoder(seed)
    gen = torch.Generator().manual_seed(seed)
    lengths_t = torch.tensor(lengths)
    x = torch.randn(len(lengths), max(lengths), 12, generator=gen)
    grad = torch.randn(len(lengths), max(lengths), 14, generator=gen)

    outputs, grads = [], []
    for forward in (encoder.forward, encoder.forward_packed):
        xs = x.clone().requires_grad_()
        y, out_lengths = forward(xs, lengths_t)
        assert torch.equal(out_lengths, lengths_t)
        params = [xs, *encoder.parameters()]
        outputs.append(y)
        grads.append(torch.autograd.grad(y, params, grad))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
    for fast, packed in zip(*grads, strict=True):
        torch.testing.assert_close(fast, packed, rtol=1e-4, atol=1e-5)
    padding = torch.arange(max(lengths))[None, :] >= lengths_t[:, None]
    assert (outputs[0][padding] == 0).all()


def test_reversal_index_reverses_within_length_and_is_its_own_inverse() -> None:
    lengths = torch.tensor([4, 2, 0])
    index = reversal_index(lengths, 5)
    assert index.tolist() == [[3, 2, 1, 0, 4], [1, 0, 2, 3, 4], [0, 1, 2, 3, 4]]
    x = torch.randn(3, 5, 2)
    assert torch.equal(reverse_within(reverse_within(x, index), index), x)
