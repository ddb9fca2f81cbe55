"""A batch sampler whose order is a function of (seed, epoch), so training resumes exactly.

It follows :class:`asr.data.resume.ResumableSampler`: Lightning calls ``set_epoch`` at every
epoch start, and the data module (a :class:`asr.data.resume.ResumableDataModule`) saves
``state_dict(consumed)`` in every checkpoint; after ``load_state_dict`` the next iteration
continues the saved epoch at the next batch. Given the same epoch this sampler yields the same
batches, so a resumed run trains on exactly the data the uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


class EpochBatchSampler:
    """Batches of indices into ``n`` items, reshuffled per epoch from ``seed + epoch``.

    :param shuffle: False keeps dataset order (evaluation, or data that is random already).
    :param drop_last: drop a final short batch (keeps every training batch the same size).
    """

    def __init__(
        self, n: int, batch_size: int, *, shuffle: bool, seed: int = 0, drop_last: bool = False
    ) -> None:
        if n < 1 or batch_size < 1:
            raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.seed, self.drop_last, self.epoch = seed, drop_last, 0
        self._position = 0  # batches of this epoch handed out
        self._resume: tuple[int, int] | None = None  # (epoch, first batch) for the next __iter__

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._position = 0
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches of the whole epoch, also when resuming (Lightning counts the restored ones)."""
        full, rest = divmod(self.n, self.batch_size)
        return full if self.drop_last or not rest else full + 1

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=gen).tolist()
        else:
            order = list(range(self.n))
        start = self._resume[1] if self._resume and self._resume[0] == self.epoch else 0
        self._resume, self._position = None, start
        for b in range(start, len(self)):
            self._position += 1
            yield order[b * self.batch_size : (b + 1) * self.batch_size]

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """The epoch and position; ``consumed`` (batches trained on) overrides the count handed
        out, since DataLoader workers prefetch ahead of training."""
        position = self._position if consumed is None else consumed
        if consumed is None and self._resume and self._resume[0] == self.epoch:
            position = max(position, self._resume[1])
        return {
            "epoch": self.epoch,
            "position": position,
            "seed": self.seed,
            "n": self.n,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue ``state['epoch']`` at batch ``state['position']`` on the next iteration."""
        for key in ("seed", "n", "batch_size"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(
                    f"sampler state has {key}={state[key]} but this run has {getattr(self, key)}; "
                    "resume with the same data, batch size and seed"
                )
        self.epoch, self._position = int(state["epoch"]), int(state.get("position", 0))
        if self._position >= len(self):  # saved at the end of an epoch: start the next one
            self.epoch, self._position = self.epoch + 1, 0
        self._resume = (self.epoch, self._position)
