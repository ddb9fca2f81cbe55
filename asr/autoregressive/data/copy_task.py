"""The paper's synthetic copy task: random symbols, a separator, then the same symbols again.

A sequence with L symbols is ``s_1 .. s_L SEP s_1 .. s_L`` (2L + 1 tokens); L is drawn uniformly
from ``[min_symbols, max_symbols]`` and each symbol from ``n_symbols`` values. Token 0 pads a
batch to its longest sequence. Only the copy (the tokens after the separator) can be predicted,
so the loss and the accuracy count those positions alone.

Item ``i`` of a :class:`CopyTaskDataset` is a pure function of ``(seed, i)``: any number of
sequences without storing them, the same sequences on every run, and a resumed run sees the
same data as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch.utils.data import Dataset

PAD = 0


@dataclass(frozen=True)
class CopyTask:
    """Sequence layout: tokens ``1..n_symbols`` are symbols, ``n_symbols + 1`` the separator."""

    max_symbols: int = 128
    n_symbols: int = 10
    min_symbols: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.min_symbols <= self.max_symbols:
            raise ValueError(
                f"need 1 <= min_symbols <= max_symbols, got {self.min_symbols}, {self.max_symbols}"
            )
        if self.n_symbols < 1:
            raise ValueError(f"n_symbols must be >= 1, got {self.n_symbols}")

    @property
    def separator(self) -> int:
        return self.n_symbols + 1

    @property
    def vocab_size(self) -> int:
        return self.n_symbols + 2

    @property
    def max_len(self) -> int:
        return 2 * self.max_symbols + 1

    def sequence(self, generator: torch.Generator) -> torch.Tensor:
        """One random ``s SEP s`` sequence (1-D long tensor)."""
        n = int(torch.randint(self.min_symbols, self.max_symbols + 1, (1,), generator=generator))
        symbols = torch.randint(1, self.n_symbols + 1, (n,), generator=generator)
        return torch.cat([symbols, torch.tensor([self.separator]), symbols])

    def copy_mask(self, tokens: torch.Tensor) -> torch.Tensor:
        """Bool mask of the positions after each row's separator that are not padding."""
        is_sep = tokens == self.separator
        after = (is_sep.long().cumsum(dim=-1) > 0) & ~is_sep
        return after & (tokens != PAD)

    def to_dict(self) -> dict:
        return asdict(self)


class CopyTaskDataset(Dataset):
    """``size`` copy-task sequences, item ``i`` drawn from a generator seeded by ``(seed, i)``."""

    def __init__(self, task: CopyTask, size: int, seed: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.task, self.size, self.seed = task, size, seed

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.size:
            raise IndexError(index)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        return self.task.sequence(generator)


def collate_copy(task: CopyTask, sequences: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Pad to the longest sequence; ``loss_mask`` marks the copied positions."""
    tokens = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=PAD)
    return {"tokens": tokens, "loss_mask": task.copy_mask(tokens)}
