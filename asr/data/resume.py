"""Exact mid-epoch resume: the training sampler's position is part of the data module's state.

This is lhotse's answer, and the project's only resume mechanism: a resumable sampler has
``state_dict()`` / ``load_state_dict()``; :class:`ResumableDataModule` keeps that state in its
own ``state_dict`` (Lightning saves it in every checkpoint and hands it back on resume), so a run
killed mid-epoch continues at the next batch of the same epoch, in the same order.

Two details make it exact under Lightning:

- The saved position is the number of batches *training* has processed (Lightning's progress
  counter), not how far the sampler got: DataLoader workers prefetch batches ahead.
- The sampler is the DataLoader's ``sampler`` with ``batch_size=None`` (each item it yields is
  one batch), as with lhotse's samplers. Lightning then calls its ``set_epoch`` at every epoch
  start; it never tells a ``batch_sampler`` the epoch.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import lightning as L

STATE_KEY = "train_sampler"


class ResumableSampler(Protocol):
    """What :class:`ResumableDataModule` needs of a training sampler."""

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's order (Lightning calls it at every epoch start)."""

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """The epoch and position; ``consumed`` = batches of this epoch already trained on."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make the next iteration continue the saved epoch after its consumed batches (or
        start the next epoch when the saved one was complete)."""


SamplerT = TypeVar("SamplerT", bound=ResumableSampler)


class ResumableDataModule(L.LightningDataModule):
    """A data module whose training sampler resumes mid-epoch.

    Subclasses pass the training sampler through :meth:`resumable` when they build the train
    loader, and give it to the DataLoader as ``sampler=`` with ``batch_size=None``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._train_sampler: ResumableSampler | None = None
        # Lightning may restore the state before or after building the train loader.
        self._pending_sampler_state: dict[str, Any] | None = None

    def resumable(self, sampler: SamplerT) -> SamplerT:
        """Track ``sampler`` as the training sampler, restoring a position waiting for it."""
        if self._pending_sampler_state is not None:
            sampler.load_state_dict(self._pending_sampler_state)
            self._pending_sampler_state = None
        self._train_sampler = sampler
        return sampler

    def state_dict(self) -> dict[str, Any]:
        s = self._train_sampler
        if s is None:
            return {}
        consumed = None
        trainer = self.trainer
        if trainer is not None:
            s.set_epoch(int(trainer.current_epoch))
            # processed, not completed: a checkpoint saved in on_train_batch_end has trained
            # on this batch but not yet counted it as completed
            consumed = int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)
        return {STATE_KEY: s.state_dict(consumed)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = state_dict.get(STATE_KEY)
        if state is None:
            return
        if self._train_sampler is not None:
            self._train_sampler.load_state_dict(state)
        else:
            self._pending_sampler_state = state
