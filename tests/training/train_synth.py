"""Tiny synthetic CTC task for training tests: each character has a fixed random feature pattern.

An "utterance" of text ``"ab ca"`` is the concatenation of its characters' patterns (a few frames
each) plus noise, so a tiny model can learn it in seconds. Also a tiny char tokenizer, a
deterministic rank-aware batch sampler with ``set_epoch``/``state_dict``, and a DataModule.
"""

from __future__ import annotations

import random

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from asr.models import EncoderConfig, TransformerConfig

FEAT_DIM = 12
FRAMES_PER_CHAR = 8


def tiny_encoder() -> EncoderConfig:
    """A 2-layer, 32-wide transformer over FEAT_DIM features: learns the task in seconds."""
    return EncoderConfig(
        input_dim=FEAT_DIM,
        conv_channels=8,
        d_model=32,
        dropout=0.0,
        transformer=TransformerConfig(n_layers=2, n_heads=2, d_ff=64),
    )


class CharTokenizer:
    """Minimal stand-in for ``asr.data`` tokenizers: blank 0, space, letters."""

    kind = "char"

    def __init__(self, letters: str = "abcde") -> None:
        self.tokens = ["<blk>", " ", *letters]

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return [self.tokens.index(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.tokens[i] for i in ids if i > 0).strip()

    def to_dict(self) -> dict:
        return {"kind": "char", "tokens": self.tokens}


def make_texts(n: int, seed: int, letters: str = "abcde") -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        words = []
        for _ in range(rng.randint(1, 3)):
            w = [rng.choice(letters)]
            for _ in range(rng.randint(0, 3)):  # no doubled letters: keeps CTC easy for tiny nets
                w.append(rng.choice([c for c in letters if c != w[-1]]))
            words.append("".join(w))
        texts.append(" ".join(words))
    return texts


class SyntheticSpeech(Dataset):
    def __init__(self, texts: list[str], tokenizer: CharTokenizer, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.patterns = 2.0 * torch.randn(tokenizer.vocab_size, FEAT_DIM, generator=g)
        self.texts, self.tok = texts, tokenizer
        self.feats = []
        for text in texts:
            ids = torch.tensor(tokenizer.encode(text))
            x = self.patterns[ids].repeat_interleave(FRAMES_PER_CHAR, dim=0)
            x = torch.cat([torch.zeros(4, FEAT_DIM), x, torch.zeros(4, FEAT_DIM)])
            self.feats.append(x + 0.1 * torch.randn(x.shape, generator=g))

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict:
        return {
            "id": f"utt{i}",
            "features": self.feats[i],
            "text": self.texts[i],
            "targets": torch.tensor(self.tok.encode(self.texts[i])),
        }


def collate(items: list[dict]) -> dict:
    pad = torch.nn.utils.rnn.pad_sequence
    return {
        "features": pad([it["features"] for it in items], batch_first=True),
        "feature_lengths": torch.tensor([len(it["features"]) for it in items]),
        "targets": pad([it["targets"] for it in items], batch_first=True),
        "target_lengths": torch.tensor([len(it["targets"]) for it in items]),
        "ids": [it["id"] for it in items],
        "texts": [it["text"] for it in items],
    }


class ShardedBatchSampler:
    """Shuffles per epoch (seed + epoch), cuts global batches and gives each rank its slice."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        shuffle: bool = True,
    ) -> None:
        self.n, self.bs, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.shuffle, self.epoch = shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // (self.bs * self.world)

    def __iter__(self):  # noqa: ANN204
        order = list(range(self.n))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(order)
        g = self.bs * self.world
        for b in range(len(self)):
            chunk = order[b * g : (b + 1) * g]
            yield chunk[self.rank * self.bs : (self.rank + 1) * self.bs]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, d: dict) -> None:
        self.epoch, self.seed = d["epoch"], d["seed"]


class SyntheticDataModule(L.LightningDataModule):
    def __init__(
        self,
        n_train: int = 16,
        batch_size: int = 4,
        seed: int = 0,
        n_val: int | None = None,
        same_val: bool = True,
    ) -> None:
        super().__init__()
        self.tokenizer = CharTokenizer()
        texts = make_texts(n_train, seed)
        self.train_set = SyntheticSpeech(texts, self.tokenizer, seed)
        self.val_set = (
            self.train_set
            if same_val
            else SyntheticSpeech(make_texts(n_val or n_train, seed + 1), self.tokenizer, seed)
        )
        self.batch_size, self.seed = batch_size, seed

    def train_dataloader(self) -> DataLoader:
        t = self.trainer
        rank, world = (t.global_rank, t.world_size) if t is not None else (0, 1)
        bs = ShardedBatchSampler(len(self.train_set), self.batch_size, self.seed, rank, world)
        return DataLoader(self.train_set, batch_sampler=bs, collate_fn=collate)

    def val_dataloader(self) -> DataLoader:
        t = self.trainer
        rank, world = (t.global_rank, t.world_size) if t is not None else (0, 1)
        bs = ShardedBatchSampler(len(self.val_set), self.batch_size, 0, rank, world, shuffle=False)
        return DataLoader(self.val_set, batch_sampler=bs, collate_fn=collate)
