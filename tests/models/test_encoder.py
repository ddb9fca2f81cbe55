"""Encoders and the CTC model: shapes, gradients, padding invariance, exact output lengths."""

import pytest
import torch

from asr.models import CTCModel, EncoderConfig, LSTMConfig, TransformerConfig

# (front-end overrides, transformer overrides); None = the Bi-LSTM encoder
VARIANTS = [
    ({}, dict(attention="linear")),
    ({}, dict(attention="softmax")),
    ({}, None),
    ({}, dict(attention="linear", positional="conv", conv_pos_kernel=5)),
    (dict(subsampling=2), dict(attention="linear")),
    (dict(subsampling=1), dict(attention="softmax", positional="conv", conv_pos_kernel=3)),
    (dict(conv_channels=0), dict(attention="linear")),
    # streaming (causal) encoders: frame-causal and chunk-causal attention
    ({}, dict(attention="causal-linear", positional="conv", conv_pos_kernel=5, streaming=True)),
    (dict(subsampling=2), dict(attention="causal-linear", streaming=True, chunk_ms=60)),
    (dict(subsampling=1), dict(attention="causal-linear", positional="conv", streaming=True)),
]


def _cfg(front: dict | None = None, layers: dict | None = None) -> EncoderConfig:
    """A tiny encoder: 12-dim features, 2 small layers."""
    common = {**dict(input_dim=12, conv_channels=8, d_model=32, dropout=0.0), **(front or {})}
    if layers is None:
        return EncoderConfig(
            encoder_type="lstm", lstm=LSTMConfig(hidden_size=16, n_layers=1), **common
        )
    return EncoderConfig(
        transformer=TransformerConfig(n_layers=2, n_heads=2, d_ff=64, **layers), **common
    )


def _variant_id(v: tuple) -> str:
    front, layers = v
    return "-".join(map(str, [*front.values(), *(layers or {"lstm": 1}).values()]))


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_forward_backward_shapes(variant: tuple) -> None:
    torch.manual_seed(0)
    model = CTCModel(_cfg(*variant), vocab_size=7)
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


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_padding_does_not_change_outputs(variant: tuple) -> None:
    torch.manual_seed(1)
    model = CTCModel(_cfg(*variant), vocab_size=7).eval()
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


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_padding_does_not_change_gradients(variant: tuple) -> None:
    """A padded batch's parameter gradients are the sum of its utterances' alone, NaN in the
    padding included (the front end zeroes padding only where a conv would read it)."""
    torch.manual_seed(3)
    model = CTCModel(_cfg(*variant), vocab_size=7).eval()
    lengths = torch.tensor([50, 21, 37])
    x = torch.randn(3, 50, 12)
    x[1, 21:] = float("nan")
    x[2, 37:] = 1e3 * torch.randn(13, 12)
    weights = torch.randn(3, 50, 7)  # a fixed random loss on the real output frames

    def grads(features: torch.Tensor, lens: torch.Tensor, w: torch.Tensor) -> list[torch.Tensor]:
        model.zero_grad()
        lp, out_len = model(features, lens)
        real = ~(torch.arange(lp.size(1))[None, :] >= out_len[:, None])
        (lp * w[:, : lp.size(1)] * real[..., None]).sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    batched = grads(x, lengths, weights)
    scale = max(g.abs().max().item() for g in batched)
    alone = [
        grads(x[i : i + 1, : lengths[i]], lengths[i : i + 1], weights[i : i + 1]) for i in range(3)
    ]
    for b, *singles in zip(batched, *alone, strict=True):
        ref = sum(singles)
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b, ref, rtol=1e-4, atol=1e-6 * scale)


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="attention"):
        TransformerConfig(attention="bogus")
    with pytest.raises(ValueError, match="subsampling"):
        EncoderConfig(subsampling=3)
    with pytest.raises(ValueError, match="unknown EncoderConfig keys"):
        EncoderConfig.from_dict({"d_modle": 3})
    with pytest.raises(ValueError, match=r"unknown encoder.transformer keys \['n_layer'\]"):
        EncoderConfig.from_dict({"transformer": {"n_layer": 3}})
    with pytest.raises(ValueError, match="encoder.lstm is set but encoder_type is 'transformer'"):
        EncoderConfig(lstm=LSTMConfig())


def test_feature_dim_mismatch_is_explained() -> None:
    model = CTCModel(_cfg(), vocab_size=5)
    with pytest.raises(ValueError, match="input_dim"):
        model(torch.randn(1, 30, 80), torch.tensor([30]))


def test_only_the_selected_section_is_filled_and_saved() -> None:
    cfg = EncoderConfig(encoder_type="lstm")
    assert cfg.lstm == LSTMConfig() and cfg.transformer is None and cfg.section is cfg.lstm
    assert "transformer" not in cfg.to_dict() and cfg.to_dict()["lstm"]["hidden_size"] == 320
    assert EncoderConfig.from_dict(cfg.to_dict()) == cfg
    default = EncoderConfig()
    assert default.transformer == TransformerConfig() and default.lstm is None


# The flat layout every checkpoint and package held before the per-encoder sections (asdict of
# the old EncoderConfig, demo-sized transformer and a Bi-LSTM variant).
FLAT_TRANSFORMER = {
    "encoder_type": "transformer", "input_dim": 80, "subsampling": 4, "conv_channels": 64,
    "d_model": 192, "n_layers": 6, "n_heads": 4, "d_ff": 768, "attention": "linear",
    "feature_map": "elu", "positional": "conv", "conv_pos_kernel": 31, "dropout": 0.0,
    "attention_dropout": 0.0, "lstm_hidden": 320, "lstm_layers": 3,
}  # fmt: skip
FLAT_LSTM = {**FLAT_TRANSFORMER, "encoder_type": "lstm", "lstm_hidden": 192, "lstm_layers": 2}


def test_flat_pre_split_dicts_still_load() -> None:
    t = EncoderConfig.from_dict(FLAT_TRANSFORMER)
    assert t.lstm is None and t.d_model == 192 and t.conv_channels == 64
    assert t.transformer == TransformerConfig(
        n_layers=6, n_heads=4, d_ff=768, attention="linear", positional="conv"
    )
    lstm = EncoderConfig.from_dict(FLAT_LSTM)
    assert lstm.transformer is None and lstm.lstm == LSTMConfig(hidden_size=192, n_layers=2)
    # the parameters are named as before, so old weights load into the new modules
    for cfg in (t, lstm):
        names = set(CTCModel(cfg, vocab_size=5).state_dict())
        assert "head.weight" in names and "encoder.front_end.out.weight" in names
    assert "encoder.layers.5.attn.out_proj.weight" in CTCModel(t, 5).state_dict()
    assert "encoder.lstm.weight_hh_l1_reverse" in CTCModel(lstm, 5).state_dict()
