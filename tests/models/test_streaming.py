"""Streaming encoder: chunk-by-chunk stepping equals the offline forward, causality is real,
chunk-causal attention means what it says, batched stepping equals single streams."""

import os
import random

import pytest
import torch

from asr.attention import AttentionLayer, make_feature_map
from asr.models import CTCModel, EncoderConfig, TransformerConfig
from asr.models.causal_attention import stateful_linear_attention
from asr.models.encoder import (
    CausalConvPositionalEncoding,
    Conv2dSubsampling,
    ConvPositionalEncoding,
)
from asr.models.streaming import (
    NotStreamableError,
    StreamingCTC,
    split_state,
    stack_states,
)


@pytest.fixture(autouse=True)
def fresh_seed() -> int:
    seed = int(os.environ.get("ASR_TEST_SEED", random.randrange(2**31)))
    torch.manual_seed(seed)
    random.seed(seed)
    print(f"ASR_TEST_SEED={seed}")
    return seed


def _cfg(
    subsampling: int = 4, chunk_ms: float = 0, positional: str = "conv", **front
) -> EncoderConfig:
    return EncoderConfig(
        input_dim=12,
        conv_channels=front.pop("conv_channels", 8),
        d_model=32,
        dropout=0.0,
        subsampling=subsampling,
        transformer=TransformerConfig(
            n_layers=2,
            n_heads=2,
            d_ff=64,
            attention="causal-linear",
            positional=positional,
            conv_pos_kernel=5,
            streaming=True,
            chunk_ms=chunk_ms,
        ),
    )


# (subsampling, chunk_ms, positional, conv_channels)
VARIANTS = [
    (4, 0, "conv", 8),
    (4, 160, "conv", 8),
    (4, 40, "sinusoidal", 8),
    (2, 0, "none", 8),
    (2, 80, "conv", 8),
    (1, 0, "sinusoidal", 8),
    (1, 30, "conv", 8),
    (4, 0, "conv", 0),
    (2, 120, "sinusoidal", 0),
]


def _chunkings(total: int) -> dict[str, list[int]]:
    sizes = []
    while sum(sizes) < total:
        sizes.append(random.randint(1, 37))
    return {"1 frame": [1] * total, "160 ms": [16] * (total // 16 + 1), "random": sizes}


def _streamed(sm: StreamingCTC, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    state, outs, at = sm.initial_state(x.size(0)), [], 0
    for n in sizes:
        out, state = sm.step(x[:, at : at + n], state)
        outs.append(out)
        at += n
    out, state = sm.step(x[:, :0], state, final=True)
    return torch.cat([*outs, out], dim=1)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_any_chunking_equals_the_offline_forward(variant: tuple) -> None:
    sub, chunk_ms, pos, channels = variant
    model = CTCModel(_cfg(sub, chunk_ms, pos, conv_channels=channels), vocab_size=7).eval()
    total = random.randint(60, 130)
    x = torch.randn(1, total, 12)
    with torch.no_grad():
        ref, n = model(x, torch.tensor([total]))
    sm = StreamingCTC(model)
    for name, sizes in _chunkings(total).items():
        got = _streamed(sm, x, sizes)
        assert got.shape == ref.shape, name
        err = (got - ref).abs().max().item()
        assert err <= 1e-5, f"{name}: max |streamed - offline| = {err:.2e}"


def test_batched_streams_equal_single_streams() -> None:
    model = CTCModel(_cfg(4, 160), vocab_size=7).eval()
    sm = StreamingCTC(model)
    x = torch.randn(3, 96, 12)
    singles = [_streamed(sm, x[b : b + 1], [16] * 6) for b in range(3)]
    states = [sm.initial_state() for _ in range(3)]
    outs = []
    for at in range(0, 96, 16):
        batched = stack_states(states)
        out, batched = sm.step(x[:, at : at + 16], batched)
        states = split_state(batched)
        outs.append(out)
    out, _ = sm.step(x[:, :0], stack_states(states), final=True)
    got = torch.cat([*outs, out], dim=1)
    for b in range(3):
        torch.testing.assert_close(got[b : b + 1], singles[b], rtol=0, atol=1e-5)


def test_states_of_different_shape_are_not_stacked() -> None:
    sm = StreamingCTC(CTCModel(_cfg(), vocab_size=7).eval())
    a, b = sm.initial_state(), sm.initial_state()
    _, a = sm.step(torch.randn(1, 5, 12), a)
    with pytest.raises(ValueError, match="separate batches"):
        stack_states([a, b])


@pytest.mark.parametrize("sub", [4, 2, 1])
def test_front_end_reads_exactly_its_stated_lookahead(sub: int) -> None:
    front = Conv2dSubsampling(12, 4, 16, sub, causal=True).eval()
    ahead = front.lookahead_frames()
    assert ahead == {4: 3, 2: 1, 1: 0}[sub]
    x = torch.randn(1, 60, 12)
    t = 5  # an output frame; its own input frames end at (t + 1) * sub - 1
    last_read = (t + 1) * sub - 1 + ahead
    with torch.no_grad():
        ref, _ = front(x, torch.tensor([60]))
        y = x.clone()
        y[:, last_read + 1 :] += 10.0
        beyond, _ = front(y, torch.tensor([60]))
        y = x.clone()
        y[:, last_read] += 10.0
        at_edge, _ = front(y, torch.tensor([60]))
    assert torch.equal(beyond[:, : t + 1], ref[:, : t + 1])
    assert not torch.allclose(at_edge[:, t], ref[:, t])


def test_frame_causal_model_never_reads_past_the_front_end_lookahead() -> None:
    model = CTCModel(_cfg(4, 0), vocab_size=7).eval()
    x = torch.randn(1, 80, 12)
    t = 9
    with torch.no_grad():
        ref, _ = model(x, torch.tensor([80]))
        y = x.clone()
        y[:, (t + 1) * 4 + 3 :] = torch.randn(1, 80 - (t + 1) * 4 - 3, 12)
        out, _ = model(y, torch.tensor([80]))
    torch.testing.assert_close(out[:, : t + 1], ref[:, : t + 1], rtol=0, atol=1e-6)
    assert not torch.allclose(out[:, t + 1 :], ref[:, t + 1 :])


def test_chunk_causal_frames_see_their_whole_chunk_and_nothing_later() -> None:
    model = CTCModel(_cfg(4, 160), vocab_size=7).eval()  # chunks of 4 encoder frames
    x = torch.randn(1, 80, 12)
    with torch.no_grad():
        ref, _ = model(x, torch.tensor([80]))
        y = x.clone()
        y[:, 4 * 7] += 5.0  # input of encoder frame 7 (chunk 1: frames 4-7), read by 6 and 7
        out, _ = model(y, torch.tensor([80]))
    torch.testing.assert_close(out[:, :4], ref[:, :4], rtol=0, atol=1e-6)  # chunk 0 unchanged
    assert not torch.allclose(out[:, 4], ref[:, 4], atol=1e-5)  # frame 4 sees frame 7


@pytest.mark.parametrize("chunk", [0, 1, 3, 8])
def test_stateful_attention_matches_a_masked_reference(chunk: int) -> None:
    b, h, n, d, m = 2, 3, 29, 5, 4
    fmap = make_feature_map("elu", d)
    q, k, v = torch.randn(b, h, n, d), torch.randn(b, h, n, d), torch.randn(b, h, n, m)
    mask = torch.zeros(b, n, dtype=torch.bool)
    mask[1, 21:] = True
    out, state = stateful_linear_attention(
        q, k, v, None, feature_map=fmap, chunk=chunk, key_padding_mask=mask
    )
    pq, pk = fmap(q.double()), fmap(k.double())
    pk = pk.masked_fill(mask[:, None, :, None], 0.0)
    idx = torch.arange(n)
    c = max(chunk, 1)
    visible = (idx[None, :] // c) <= (idx[:, None] // c)  # [i, j]: key j visible to query i
    w = (pq @ pk.transpose(-1, -2)) * visible
    ref = (w @ v.double()) / (w.sum(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        state.S.double(), pk.transpose(-1, -2) @ v.double(), rtol=1e-5, atol=1e-5
    )
    torch.testing.assert_close(state.z.double(), pk.sum(2), rtol=1e-5, atol=1e-5)


def test_stateful_attention_has_gradients() -> None:
    fmap = make_feature_map("elu", 4)
    q, k, v = (torch.randn(1, 2, 10, 4, requires_grad=True) for _ in range(3))
    out, _ = stateful_linear_attention(q, k, v, None, feature_map=fmap, chunk=3)
    out.sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))


def test_streaming_config_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match="streaming needs attention: causal-linear"):
        TransformerConfig(streaming=True, attention="linear")
    with pytest.raises(ValueError, match="chunk_ms=320 needs streaming: true"):
        TransformerConfig(chunk_ms=320)
    with pytest.raises(ValueError, match="multiple of the encoder frame, 40 ms"):
        EncoderConfig(
            subsampling=4,
            transformer=TransformerConfig(attention="causal-linear", streaming=True, chunk_ms=100),
        )
    assert _cfg(4, 320).chunk_frames() == 8 and _cfg(4, 0).chunk_frames() == 0


def test_bidirectional_model_is_refused_naming_the_config() -> None:
    cfg = EncoderConfig(
        input_dim=12, conv_channels=8, d_model=32, transformer=TransformerConfig(n_layers=1)
    )
    with pytest.raises(NotStreamableError, match="demo_streaming.yaml"):
        StreamingCTC(CTCModel(cfg, vocab_size=5))


def test_non_streaming_configs_build_the_modules_they_always_did() -> None:
    cfg = EncoderConfig.from_dict(
        {"input_dim": 12, "conv_channels": 8, "d_model": 32, "subsampling": 2,
         "transformer": {"n_layers": 1, "n_heads": 2, "positional": "conv", "conv_pos_kernel": 3}}
    )  # fmt: skip
    enc = CTCModel(cfg, vocab_size=5).encoder
    assert not cfg.streaming and not enc.front_end.causal
    assert type(enc.positional) is ConvPositionalEncoding
    assert type(enc.layers[0].attn) is AttentionLayer
    stream = CTCModel(_cfg(2, 0), vocab_size=5).encoder
    assert type(stream.positional) is CausalConvPositionalEncoding and stream.front_end.causal
    # the same parameter names, so the streaming model's weights read like any other's
    assert set(CTCModel(_cfg(2), 5).state_dict()) == set(
        CTCModel(EncoderConfig.from_dict({**_cfg(2).to_dict(), "transformer": {
            **_cfg(2).to_dict()["transformer"], "streaming": False, "attention": "linear"}}), 5
        ).state_dict()
    )  # fmt: skip
