"""The text-to-speech interface the corpus renderer drives, and the engine a config selects.

An engine turns (text, voice, speaking rate, pitch) into samples at its own rate; the renderer
(:mod:`asr.data.synth.render`) resamples, adds noise and writes the file. Adding an engine is a
module with a :class:`SpeechEngine` subclass (see :mod:`asr.data.synth.espeak`) and a line in
:func:`make_engine`. Engines are pickled into the worker processes, so they hold plain data
(an executable's path), not open handles.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from asr.data.synth.config import SynthConfig


class EngineError(RuntimeError):
    """A text-to-speech engine is missing, lacks a voice, or failed on a sentence."""


class SpeechEngine(ABC):
    """A text-to-speech program that reads sentences in several voices."""

    #: rate of the samples :meth:`synthesize` returns.
    sample_rate: int

    @abstractmethod
    def check_voices(self, voices: Sequence[str]) -> None:
        """Raise :class:`EngineError` naming the first voice this engine does not have."""

    @abstractmethod
    def synthesize(self, text: str, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
        """Speak ``text``: float32 mono samples in [-1, 1] at :attr:`sample_rate`."""


def make_engine(cfg: SynthConfig) -> SpeechEngine:
    """The engine that reads the corpus (espeak-ng, the one engine so far)."""
    from asr.data.synth.espeak import EspeakEngine  # espeak imports this module

    return EspeakEngine.find(cfg.espeak_bin)
