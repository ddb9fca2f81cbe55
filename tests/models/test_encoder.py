"""Encoders and the CTC model: shapes, gradients, padding invariance, exact output lengths."""

import pytest
import torch

from asr.models import CTCModel, EncoderConfig, encoder_preset

VARIANTS = [
    dict(attention="linear"),
    dict(attention="softmax"),
    dict(encoder_type="lstm"),
    dict(attention="linear", positional="conv", conv_pos_kernel=5),
    dict(attention="linear", subsampling=2),
    dict(attention="softmax", subsampling=1, positional="conv", conv_pos_kernel=3),
    dict(attention="linear", conv_channels=0),
]


def _cfg(**kw: object) -> EncoderConfig:
    return encoder_preset("tiny", input_dim=12, dropout=0.0, **kw)


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: "-".join(map(str, kw.values())))
def test_forward_backward_shapes(kw: dict) -> None:
    torch.manual_seed(0)
    model = CTCModel(_cfg(**kw), vocab_size=7)
    lengths = torch.tensor([40, 23, 9])
    x = torch.randn(3, 40, 12, requires_grad=True)
    lp, out_len = model(x, lengths)
    sub = model.config.subsampling
    assert lp.dtype == torch.float32 and lp.shape[0] == 3 and lp.shape[2] == 7
    assert lp.shape[1] == int(out_len.max())
    assert torch.equal(out_len, model.output_lengths(lengths))
    assert (out_len <= lengths // sub).all() and (out_len >= lengths // sub - 2).all()
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(lp.shape[:2]), rtol=0, atol=1e-5)
    lp[0, : out_len[0]].sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: "-".join(map(str, kw.values())))
def test_padding_does_not_change_outputs(kw: dict) -> None:
    torch.manual_seed(1)
    model = CTCModel(_cfg(**kw), vocab_size=7).eval()
    lengths = torch.tensor([37, 21, 50])
    x = torch.randn(3, 50, 12)
    x[0, 37:] = 1e3 * torch.randn(13, 12)  # garbage in the padding must not leak
    x[1, 21:] = float("nan")
    batched, out_len = model(x, lengths)
    for i in range(3):
        alone, alone_len = model(x[i : i + 1, : lengths[i]], lengths[i : i + 1])
        n = int(alone_len[0])
        assert n == int(out_len[i])
        ref = alone[0, :n]
        err = (batched[i, :n] - ref).abs().max() / ref.abs().max()
        assert err <= 1e-5, f"utterance {i}: relative difference {err:.2e}"


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="attention"):
        EncoderConfig(attention="bogus")
    with pytest.raises(ValueError, match="subsampling"):
        EncoderConfig(subsampling=3)
    with pytest.raises(ValueError, match="unknown EncoderConfig keys"):
        EncoderConfig.from_dict({"d_modle": 3})


def test_feature_dim_mismatch_is_explained() -> None:
    model = CTCModel(_cfg(), vocab_size=5)
    with pytest.raises(ValueError, match="input_dim"):
        model(torch.randn(1, 30, 80), torch.tensor([30]))


def test_presets_build() -> None:
    for name in ("small", "wsj", "wsj-lstm"):
        cfg = encoder_preset(name)
        assert cfg.subsampling == 4
    assert encoder_preset("wsj").n_layers == 9 and encoder_preset("wsj").n_heads == 6
