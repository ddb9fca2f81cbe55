"""In-test stand-ins for the tokenizer and model package, so decoding tests need no trained model."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch


class CharTokenizer:
    """Characters plus ``|`` for spaces; index 0 is the blank, like the real char tokenizer."""

    kind = "char"

    def __init__(self, alphabet: str = "abcdefghijklmnopqrstuvwxyz'") -> None:
        self.tokens = ["<blk>", "|", *alphabet]
        self._index = {t: i for i, t in enumerate(self.tokens)}

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return [self._index["|" if c == " " else c] for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(" " if self.tokens[i] == "|" else self.tokens[i] for i in ids if i != 0)

    def word_to_tokens(self, word: str) -> list[str] | None:
        if not word or any(c not in self._index or c == "|" for c in word):
            return None
        return list(word)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokens": self.tokens}


class PieceTokenizer:
    """A toy sentencepiece-style tokenizer: fixed pieces, ``▁`` starts a word."""

    kind = "bpe"

    def __init__(self, pieces: list[str]) -> None:
        self.tokens = ["<blk>", *pieces]
        self._index = {t: i for i, t in enumerate(self.tokens)}

    def decode(self, ids: list[int]) -> str:
        return "".join(self.tokens[i] for i in ids if i != 0).replace("▁", " ").strip()

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        for word in text.split():
            spelled = self.word_to_tokens(word)
            assert spelled is not None
            out += [self._index[p] for p in spelled]
        return out

    def word_to_tokens(self, word: str) -> list[str] | None:
        # greedy longest match, first piece carries the ▁
        rest, out, first = word, [], True
        while rest:
            for n in range(len(rest), 0, -1):
                cand = ("▁" if first else "") + rest[:n]
                if cand in self._index:
                    out.append(cand)
                    rest, first = rest[n:], False
                    break
            else:
                return None
        return out


def peaked_log_probs(
    token_ids: list[int],
    vocab: int,
    frames_per_token: int = 3,
    peak: float = 0.9,
    rng: np.random.Generator | None = None,
) -> torch.Tensor:
    """(T, V) log-probs whose best path spells ``token_ids`` with blanks between tokens."""
    rng = rng or np.random.default_rng(random.getrandbits(64))  # the test's seed drives it
    path: list[int] = [0]
    for t in token_ids:
        path += [t] * frames_per_token + [0]
    probs = rng.uniform(0.0, 1.0, size=(len(path), vocab))
    for i, t in enumerate(path):
        probs[i, t] = 0.0
        probs[i] *= (1.0 - peak) / probs[i].sum()
        probs[i, t] = peak
    return torch.log(torch.tensor(probs, dtype=torch.float32))


@dataclass
class FakeAudio:
    waveform: np.ndarray
    sample_rate: int = 16000


class FakePackage:
    """Model package stand-in: features are 10 ms frame energies; log_probs spell a fixed text.

    ``log_probs`` emits a peaked distribution spelling ``text`` once (then blanks), or over and
    over when ``repeat`` is set (for long audio). It is O(T) in memory, like the real model.
    Output frames are 40 ms; ``text`` needs 2 frames per token plus one.
    """

    frame_shift_s = 0.04
    subsampling = 4

    def __init__(self, tokenizer, text: str = "hello world", repeat: bool = False) -> None:
        self.repeat = repeat
        self.tokenizer = tokenizer
        self.ids = tokenizer.encode(text)
        self.model = torch.nn.Identity()
        self.calls: list[tuple[int, ...]] = []

    def featurize(self, waveform, sample_rate: int) -> torch.Tensor:
        wav = torch.as_tensor(np.asarray(waveform), dtype=torch.float32)
        hop = sample_rate // 100
        n = max(1, wav.numel() // hop)
        frames = wav[: n * hop].reshape(n, hop) if wav.numel() >= hop else wav.new_zeros(1, hop)
        return frames.pow(2).mean(dim=1, keepdim=True)

    def log_probs(self, features: torch.Tensor, lengths: torch.Tensor):
        self.calls.append(tuple(features.shape))
        b, t, _ = features.shape
        tp = (t + self.subsampling - 1) // self.subsampling
        v = (
            self.tokenizer.vocab_size
            if hasattr(self.tokenizer, "vocab_size")
            else len(self.tokenizer.tokens)
        )
        path = [0]
        for tok in self.ids:
            path += [tok, 0]
        if self.repeat:
            idx = torch.tensor(path).repeat(tp // len(path) + 1)[:tp]
        else:
            idx = torch.tensor(path + [0] * max(0, tp - len(path)))[:tp]
        lp = torch.full((b, tp, v), -8.0)
        lp.scatter_(2, idx.view(1, tp, 1).expand(b, tp, 1), -0.01)
        out_len = (lengths + self.subsampling - 1) // self.subsampling
        return lp, out_len


class FrameLocalPackage(FakePackage):
    """Output frame j depends only on input frame 4j (no context), so chunked decoding must
    reproduce whole-utterance decoding exactly: a check of the chunk stitching. ``edge_loss``
    output frames are dropped at the end of every input, as valid convolutions do."""

    edge_loss = 0

    def featurize(self, waveform, sample_rate: int) -> torch.Tensor:
        wav = torch.as_tensor(np.asarray(waveform), dtype=torch.float32)
        hop = sample_rate // 100
        n = wav.numel() // hop
        return wav[: n * hop].reshape(n, hop).mean(dim=1, keepdim=True)

    def log_probs(self, features: torch.Tensor, lengths: torch.Tensor):
        self.calls.append(tuple(features.shape))
        v = len(self.tokenizer.tokens)
        picked = features[:, :: self.subsampling, 0]
        idx = picked.round().long().clamp(0, v - 1)
        lp = torch.full((*idx.shape, v), -8.0)
        lp.scatter_(2, idx.unsqueeze(-1), -0.01)
        out_len = (lengths + self.subsampling - 1) // self.subsampling - self.edge_loss
        return lp[:, : int(out_len.max())], out_len
