"""Token-by-token decoding: equals the full-sequence forward; generation is the same in every mode."""

import pytest
import torch

from asr.autoregressive import IncrementalDecoder, RecomputeDecoder, generate, mode_label

from .conftest import tiny_model

KINDS = ["causal-linear", "causal-softmax"]


@pytest.mark.parametrize(
    ("attention", "feature_map"),
    [("causal-linear", "elu"), ("causal-linear", "relu"), ("causal-linear", "favor"),
     ("causal-softmax", "elu")],
)  # fmt: skip
@pytest.mark.parametrize("decoder_cls", [IncrementalDecoder, RecomputeDecoder])
def test_step_equals_full_forward(attention, feature_map, decoder_cls, seed):
    model = tiny_model(attention, feature_map=feature_map).double()
    tokens = torch.randint(0, 256, (3, 19))
    full = model(tokens)
    decoder = decoder_cls(model, batch_size=3, max_len=19)
    inputs = model.shift_right(tokens)
    for t in range(19):
        out = decoder.step(inputs[:, t])
        assert torch.allclose(out, full[:, t], atol=1e-10), f"position {t}"


@pytest.mark.parametrize("attention", KINDS)
@pytest.mark.parametrize("output", ["categorical", "logistic_mixture"])
def test_incremental_generation_gives_exactly_the_recomputed_tokens(attention, output, seed):
    """Recurrent (or cached) generation = step-by-step full-sequence decoding, same seed.

    In float64, so that the rounding differences between the two computations (1e-16) cannot
    move a draw across a bin of the sampled CDF.
    """
    model = tiny_model(attention, output).double()
    kw = dict(batch_size=4, seed=seed, temperature=1.0)
    incremental = generate(model, 24, mode="incremental", **kw)
    recomputed = generate(model, 24, mode="recompute", **kw)
    assert torch.equal(incremental, recomputed)
    assert not torch.equal(
        incremental, generate(model, 24, mode="incremental", batch_size=4, seed=seed + 1)
    )
    # the same seed gives the same tokens again, and top-k / temperature apply in both modes
    kw = dict(batch_size=2, seed=seed, temperature=0.7, top_k=5)
    assert torch.equal(
        generate(model, 24, mode="incremental", **kw), generate(model, 24, mode="recompute", **kw)
    )


@pytest.mark.parametrize("attention", KINDS)
def test_prompt_is_kept_and_continued(attention, seed):
    model = tiny_model(attention, "categorical").double()
    prompt = torch.randint(0, 16, (2, 5))
    out = generate(model, 12, batch_size=2, prompt=prompt, temperature=0)
    assert torch.equal(out[:, :5], prompt)
    # greedy continuation = argmax of the full forward at each generated position
    logits = model(out)
    assert torch.equal(out[:, 5:], logits[:, 5:].argmax(-1))


def test_linear_state_is_constant_and_softmax_cache_grows(seed):
    sizes = {}
    for attention in KINDS:
        decoder = IncrementalDecoder(tiny_model(attention), batch_size=2)
        token = torch.full((2,), 256)
        sizes[attention] = []
        for _ in range(10):
            decoder.step(token)
            sizes[attention].append(decoder.state_bytes())
    assert len(set(sizes["causal-linear"])) == 1
    assert sizes["causal-softmax"] == [sizes["causal-softmax"][0] * (t + 1) for t in range(10)]


def test_decoder_errors():
    model = tiny_model("causal-linear", max_len=4)
    decoder = IncrementalDecoder(model, batch_size=2)
    with pytest.raises(ValueError, match=r"\(2,\) tokens"):
        decoder.step(torch.zeros(3, dtype=torch.long))
    for _ in range(4):
        decoder.step(torch.zeros(2, dtype=torch.long))
    with pytest.raises(RuntimeError, match="max_len=4"):
        decoder.step(torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="eval mode"):
        IncrementalDecoder(model.train())
    with pytest.raises(ValueError, match="max_len"):
        generate(model.eval(), 5)
    with pytest.raises(ValueError, match="mode"):
        generate(model, 3, mode="cached")
    with pytest.raises(ValueError, match="prompt"):
        generate(model, 3, batch_size=2, prompt=torch.zeros(1, 2, dtype=torch.long))


def test_mode_labels():
    assert mode_label(tiny_model("causal-linear"), "incremental") == "linear_recurrent"
    assert mode_label(tiny_model("causal-softmax"), "incremental") == "softmax_cache"
    assert mode_label(tiny_model("causal-softmax"), "recompute") == "softmax_nocache"
