"""A batch sampler whose order is a function of (seed, epoch), so training resumes exactly.

:class:`asr.lightning.SamplerResumeCallback` calls ``set_epoch`` at every epoch and, when a run
resumes mid-epoch, restores the epoch and skips the batches already trained on; given the same
epoch this sampler yields the same batches, so the resumed run trains on the same data.
"""

from __future__ import annotations

from collections.abc import Iterator

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

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full if self.drop_last or not rest else full + 1

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=gen).tolist()
        else:
            order = list(range(self.n))
        for b in range(len(self)):
            yield order[b * self.batch_size : (b + 1) * self.batch_size]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])
