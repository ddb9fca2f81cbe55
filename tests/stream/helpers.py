"""Shared test helpers: a tiny streaming model package whose sharpened head emits many tokens
(so decoded text is not empty), speech-like noise, peaked CTC log-probs."""

import random

import numpy as np
import torch

WORDS = ["hello", "world", "the", "cat", "sat", "on", "mat"]


WEIGHT_SEED = 3  # random weights that, with the head sharpened, spell several words per input


def make_package(path, *, chunk_ms: float = 0.0, streaming: bool = True, sharpen: float = 10.0):
    """A random-weight char model package (12 mel bins, 2 small layers) saved at ``path``."""
    from asr.data.tokenizer import train_tokenizer
    from asr.features import FbankConfig, GlobalCMVN
    from asr.models import CTCModel, EncoderConfig, TransformerConfig
    from asr.package import save_package

    rng = random.Random(0)
    corpus = [" ".join(rng.choices(WORDS, k=rng.randint(1, 4))) for _ in range(40)]
    tok = train_tokenizer("char", corpus)
    layers = TransformerConfig(
        n_layers=2,
        n_heads=2,
        d_ff=64,
        attention="causal-linear" if streaming else "linear",
        positional="conv",
        conv_pos_kernel=5,
        streaming=streaming,
        chunk_ms=chunk_ms,
    )
    cfg = EncoderConfig(input_dim=12, conv_channels=8, d_model=32, dropout=0.0, transformer=layers)
    with torch.random.fork_rng():
        torch.manual_seed(WEIGHT_SEED)
        model = CTCModel(cfg, tok.vocab_size)
    with torch.no_grad():
        model.head.weight.mul_(sharpen)
    fbank = FbankConfig(num_mel_bins=12)
    cmvn = GlobalCMVN(torch.full((12,), 8.0), torch.full((12,), 3.0))
    save_package(path, model, cfg, tok, fbank, cmvn)
    return path, corpus


def speechy(seconds: float, sr: int = 16000) -> torch.Tensor:
    """Noise bursts with pauses: enough structure for a random model to emit tokens."""
    t = int(seconds * sr)
    env = (torch.rand(max(1, t // 4000)) > 0.3).float().repeat_interleave(4000)[:t]
    env = torch.nn.functional.pad(env, (0, t - env.numel()))
    return 0.3 * torch.randn(t) * env


def peaked_log_probs(
    token_ids: list[int], vocab: int, frames_per_token: int = 2, peak: float = 0.9
) -> torch.Tensor:
    """(T, V) log-probs whose best path spells ``token_ids`` with blanks between tokens."""
    path = [0]
    for t in token_ids:
        path += [t] * frames_per_token + [0]
    probs = np.random.uniform(0.0, 1.0, size=(len(path), vocab))
    for i, t in enumerate(path):
        probs[i, t] = 0.0
        probs[i] *= (1.0 - peak) / probs[i].sum()
        probs[i, t] = peak
    return torch.log(torch.tensor(probs, dtype=torch.float32))
