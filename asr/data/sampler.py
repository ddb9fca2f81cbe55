"""Duration-bucketed dynamic batching (in the spirit of lhotse's DynamicBucketingSampler).

Batches hold utterances of similar length, filled up to ``max_batch_seconds`` of audio, so
padding is small and memory per batch roughly constant. Everything random comes from
``Random(seed + epoch)``, so every rank of a distributed job builds the same global list of
batches and takes a disjoint share.

Distributed: ranks must run the same number of steps or DDP hangs. Instead of dropping or
repeating data, the sampler splits its largest batches in two until the batch count is a
multiple of ``world_size``; every utterance is still seen exactly once per epoch on exactly one
rank. Only when there are fewer utterances than ranks are batches repeated (padding).
Give it to a DataLoader as ``sampler=`` with ``batch_size=None`` (each item is one batch, so
Lightning's ``set_epoch`` calls reach it) and use ``Trainer(use_distributed_sampler=False)`` so
Lightning does not wrap it.

Same length every epoch: shuffling within buckets changes how utterances fill batches, so the
batch count would drift by a few between epochs. Lightning reads ``len()`` once and runs
validation when the batch index reaches it: an epoch one batch short silently skips validation
(and best-checkpoint selection). So every epoch is brought to epoch 0's count, by splitting the
largest batches or moving the shortest batch's utterances into batches with room left (when
they fit nowhere, epoch 0's batches are reused in a new order).

Resuming (:mod:`asr.data.resume`): ``state_dict()`` records the epoch and how many batches
this rank has consumed; after ``load_state_dict()`` the same epoch continues at the next batch.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any


class DurationBucketSampler:
    """Sampler yielding batches: lists of dataset indices.

    :param durations: seconds of each utterance (dataset order).
    :param max_batch_seconds: upper bound on the summed duration of a batch; an utterance longer
        than this alone forms a batch of one.
    :param max_batch_utterances: optional cap on utterances per batch.
    :param num_buckets: duration quantile buckets; more buckets, less padding, less randomness.
    :param shuffle: shuffle within buckets and the batch order (False: sorted, for evaluation).
    :param rank, world_size: this process's share of a distributed job.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_batch_seconds: float,
        max_batch_utterances: int | None = None,
        num_buckets: int = 10,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if max_batch_seconds <= 0:
            raise ValueError(f"max_batch_seconds must be > 0, got {max_batch_seconds}")
        if max_batch_utterances is not None and max_batch_utterances < 1:
            raise ValueError(f"max_batch_utterances must be >= 1, got {max_batch_utterances}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if len(durations) == 0:
            raise ValueError("DurationBucketSampler needs at least one utterance")
        self.durations = [float(d) for d in durations]
        self.max_batch_seconds = float(max_batch_seconds)
        self.max_batch_utterances = max_batch_utterances
        self.num_buckets = max(1, num_buckets)
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self._position = 0  # batches of the current epoch handed out on this rank
        self._resume: tuple[int, int] | None = None
        self._cache: tuple[int, list[list[int]]] | None = None
        self._epoch0: list[list[int]] | None = None  # its batch count is every epoch's

    # ---- epoch plan

    def _fill(self, indices: list[int]) -> list[list[int]]:
        batches: list[list[int]] = []
        cur: list[int] = []
        total = 0.0
        cap = self.max_batch_utterances
        for i in indices:
            d = self.durations[i]
            if cur and (total + d > self.max_batch_seconds or (cap and len(cur) >= cap)):
                batches.append(cur)
                cur, total = [], 0.0
            cur.append(i)
            total += d
        if cur:
            batches.append(cur)
        return batches

    def _global_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed + epoch)
        order = sorted(range(len(self.durations)), key=lambda i: (self.durations[i], i))
        n = len(order)
        nb = min(self.num_buckets, n)
        buckets = [order[b * n // nb : (b + 1) * n // nb] for b in range(nb)]
        batches: list[list[int]] = []
        for bucket in buckets:
            if self.shuffle:
                rng.shuffle(bucket)
            batches += self._fill(bucket)
        if self.shuffle:
            rng.shuffle(batches)
        batches = self._even_out(batches)
        if epoch == 0 or not self.shuffle:
            return batches
        if self._epoch0 is None:
            self._epoch0 = self._global_batches(0)
        target = len(self._epoch0)
        batches = self._to_length(batches, target)
        if len(batches) != target:  # epoch 0's packing fits by construction: reuse it, reordered
            batches = [list(b) for b in self._epoch0]
            rng.shuffle(batches)
        return batches

    def _seconds(self, batch: list[int]) -> float:
        return sum(self.durations[i] for i in batch)

    def _to_length(self, batches: list[list[int]], target: int) -> list[list[int]]:
        """Split the largest / dissolve the shortest batches until there are ``target``.

        Dissolving keeps every batch under ``max_batch_seconds`` (and the utterance cap); when
        the utterances fit nowhere the count stays above target (only with nearly full batches
        of near-cap utterances)."""
        while len(batches) < target:
            k = max(range(len(batches)), key=lambda j: (len(batches[j]), -j))
            if len(batches[k]) < 2:
                break
            b = batches[k]
            batches[k : k + 1] = [b[: len(b) // 2], b[len(b) // 2 :]]
        while len(batches) > target and self._dissolve_smallest(batches):
            pass
        return batches

    def _dissolve_smallest(self, batches: list[list[int]]) -> bool:
        """Move the shortest batch's utterances, longest first, into the batches with the most
        room left; True when they all fit (the batch is then gone), else nothing changes."""
        cap = self.max_batch_utterances
        k = min(range(len(batches)), key=lambda j: (self._seconds(batches[j]), j))
        room = {j: self.max_batch_seconds - self._seconds(b) for j, b in enumerate(batches)}
        count = {j: len(b) for j, b in enumerate(batches)}
        moves: list[tuple[int, int]] = []
        for i in sorted(batches[k], key=lambda i: -self.durations[i]):
            fits = [j for j in room if j != k and room[j] >= self.durations[i]]
            fits = [j for j in fits if not cap or count[j] < cap]
            if not fits:
                return False
            j = max(fits, key=lambda j: (room[j], -j))
            room[j] -= self.durations[i]
            count[j] += 1
            moves.append((i, j))
        for i, j in moves:
            batches[j].append(i)
        del batches[k]
        return True

    def _even_out(self, batches: list[list[int]]) -> list[list[int]]:
        """Make len(batches) a multiple of world_size by splitting the largest batches."""
        w = self.world_size
        while len(batches) % w:
            k = max(range(len(batches)), key=lambda j: (len(batches[j]), -j))
            if len(batches[k]) < 2:
                # fewer utterances than ranks: repeat batches from the start (padding)
                need = w - len(batches) % w
                batches = batches + [list(batches[j % len(batches)]) for j in range(need)]
                break
            b = batches[k]
            batches[k : k + 1] = [b[: len(b) // 2], b[len(b) // 2 :]]
        return batches

    def batches_for_epoch(self, epoch: int) -> list[list[int]]:
        """This rank's batches of ``epoch`` in order (the whole epoch, ignoring resume)."""
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, self._global_batches(epoch)[self.rank :: self.world_size])
        return self._cache[1]

    # ---- sampler protocol

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning (and DDP code) at each epoch start; changes the shuffle."""
        if epoch != self.epoch:
            self._position = 0
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches of the whole epoch, also when resuming: Lightning counts restored batches
        toward the epoch length, so the remaining ones are len(self) - position."""
        return len(self.batches_for_epoch(self.epoch))

    def _start(self) -> int:
        if self._resume is not None and self._resume[0] == self.epoch:
            return self._resume[1]
        return 0

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches_for_epoch(self.epoch)
        start = self._start()
        self._resume = None
        self._position = start
        for b in batches[start:]:
            self._position += 1
            yield list(b)

    # ---- resumption

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """Where this rank is: ``consumed`` overrides the count of batches handed out, since a
        DataLoader prefetches and the sampler runs ahead of training."""
        pos = self._position if consumed is None else consumed
        if self._resume is not None and self._resume[0] == self.epoch:
            pos = max(pos, self._resume[1]) if consumed is None else consumed
        return {
            "epoch": self.epoch,
            "position": pos,
            "seed": self.seed,
            "world_size": self.world_size,
            "num_utterances": len(self.durations),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue ``state['epoch']`` at batch ``state['position']`` on the next iteration."""
        for key in ("seed", "world_size", "num_utterances"):
            mine = getattr(self, key) if key != "num_utterances" else len(self.durations)
            if key in state and state[key] != mine:
                raise ValueError(
                    f"sampler state has {key}={state[key]} but this run has {mine}; "
                    "resume with the same data, seed and number of devices"
                )
        self.epoch = int(state["epoch"])
        self._position = int(state["position"])
        if self._position >= len(self.batches_for_epoch(self.epoch)):
            # saved at the end of an epoch: the next iteration is the next epoch, from its start
            self.epoch, self._position = self.epoch + 1, 0
        self._resume = (self.epoch, self._position)
