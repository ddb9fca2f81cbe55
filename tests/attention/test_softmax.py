"""softmax_attention (SDPA) against softmax written out by hand."""

import pytest
import torch

from asr.attention import softmax_attention


def manual_softmax(q, k, v, causal, mask=None):
    scores = (q.double() @ k.double().transpose(-1, -2)) / q.shape[-1] ** 0.5
    n_q, n_k = scores.shape[-2:]
    blocked = torch.zeros(scores.shape, dtype=torch.bool)
    if causal:
        blocked |= torch.ones(n_q, n_k, dtype=torch.bool).triu(1)
    if mask is not None:
        blocked |= mask[:, None, None, :]
    weights = scores.masked_fill(blocked, float("-inf")).softmax(-1)
    return weights @ v.double()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_matches_manual_softmax(causal, with_mask, make_qkv):
    q, k, v = make_qkv(3, 2, 19, 8, 6)
    mask = None
    if with_mask:
        lengths = torch.tensor([19, 7, 12])
        mask = torch.arange(19)[None, :] >= lengths[:, None]
    out = softmax_attention(q, k, v, causal=causal, key_padding_mask=mask)
    ref = manual_softmax(q, k, v, causal, mask)
    assert out.shape == (3, 2, 19, 6)
    assert torch.allclose(out.double(), ref, atol=1e-5)


def test_rows_without_keys_are_zero_not_nan(make_qkv):
    q, k, v = make_qkv(2, 1, 5, 4, 4)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[1, :2] = True  # left padding: causal rows 0 and 1 of item 1 see no key
    out = softmax_attention(q, k, v, causal=True, key_padding_mask=mask)
    assert torch.isfinite(out).all()
    assert (out[1, :, :2] == 0).all()
    ref = manual_softmax(q, k, v, True, mask)
    assert torch.allclose(out[:, :, 2:].double(), ref[:, :, 2:], atol=1e-5)


def test_bad_inputs(make_qkv):
    q, k, v = make_qkv(2, 2, 6, 4, 4)
    with pytest.raises(ValueError, match="key_padding_mask has shape"):
        softmax_attention(
            q, k, v, causal=False, key_padding_mask=torch.zeros(6, 2, dtype=torch.bool)
        )
    with pytest.raises(ValueError, match="dropout_p"):
        softmax_attention(q, k, v, causal=False, dropout_p=1.5)
