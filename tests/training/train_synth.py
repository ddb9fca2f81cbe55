"""Tiny synthetic CTC task for training tests: each character has a fixed random feature pattern.

An "utterance" of text ``"ab ca"`` is the concatenation of its characters' patterns (a few frames
each) plus noise, so a tiny model can learn it in seconds. Also a tiny char tokenizer, a
deterministic rank-aware batch sampler that resumes mid-epoch (the
:class:`asr.data.resume.ResumableSampler` protocol), and a DataModule.
"""

from __future__ import annotations

import random

import torch
from torch.utils.data import DataLoader, Dataset

from asr.data.datamodule import BatchDataset
from asr.data.resume import ResumableDataModule
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
    """Shuffles per epoch (seed + epoch), cuts global batches and gives each rank its slice.

    :param shares: utterances of each global batch per rank (default ``batch_size`` each); a
        DDP test gives ranks unequal shares of the same global batches.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        shuffle: bool = True,
        shares: list[int] | None = None,
    ) -> None:
        self.n, self.seed, self.rank, self.shuffle = n, seed, rank, shuffle
        self.shares = shares or [batch_size] * world
        assert len(self.shares) == world
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.skip = 0
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // sum(self.shares)

    def __iter__(self):  # noqa: ANN204
        order = list(range(self.n))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(order)
        g, lo = sum(self.shares), sum(self.shares[: self.rank])
        start, self.skip = self.skip, 0
        for b in range(start, len(self)):
            yield order[b * g + lo : b * g + lo + self.shares[self.rank]]

    def state_dict(self, consumed: int | None = None) -> dict:
        return {"epoch": self.epoch, "position": consumed or 0, "seed": self.seed}

    def load_state_dict(self, d: dict) -> None:
        self.epoch, self.skip, self.seed = d["epoch"], d["position"], d["seed"]
        if self.skip >= len(self):  # saved at the end of an epoch: start the next one
            self.epoch, self.skip = self.epoch + 1, 0


class SyntheticDataModule(ResumableDataModule):
    def __init__(
        self,
        n_train: int = 16,
        batch_size: int = 4,
        seed: int = 0,
        n_val: int | None = None,
        same_val: bool = True,
        shares: list[int] | None = None,
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
        self.batch_size, self.seed, self.shares = batch_size, seed, shares

    def _rank(self) -> tuple[int, int]:
        t = self.trainer
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        bs = ShardedBatchSampler(
            len(self.train_set), self.batch_size, self.seed, rank, world, shares=self.shares
        )
        return _loader(self.train_set, self.resumable(bs))

    def val_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        bs = ShardedBatchSampler(len(self.val_set), self.batch_size, 0, rank, world, shuffle=False)
        return _loader(self.val_set, bs)


def _loader(data: Dataset, sampler: ShardedBatchSampler) -> DataLoader:
    return DataLoader(BatchDataset(data), sampler=sampler, batch_size=None, collate_fn=collate)
