"""The text-to-speech interface the corpus renderer drives, voices, and finding the engines.

A :class:`Voice` is an engine and one of its voices, written ``engine:name`` (``flite:slt``,
``festival:kal_diphone``); a bare name is an espeak-ng voice (``en-us+f3``). Each utterance
also gets a speaking rate (a factor on the voice's own tempo) and a pitch shift in semitones;
each engine maps both onto its own controls.

An engine turns (text, voice, rate, pitch) into samples at the voice's own rate; the renderer
(:mod:`asr.data.synth.render`) resamples, adds noise and writes the file. Adding an engine is a
module with a :class:`SpeechEngine` subclass (see :mod:`asr.data.synth.flite`) and a line in
:data:`ENGINES`. Engines are pickled into the worker processes, so they hold plain data (an
executable's path), not open handles.

A missing engine is not an error: :func:`find_engines` reports it once, and the corpus is made
from the voices of the engines that are there.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

DEFAULT_ENGINE = "espeak-ng"


class EngineError(RuntimeError):
    """A text-to-speech engine is missing, lacks a voice, or failed on a sentence."""


class EngineMissing(EngineError):
    """The engine's program is not installed."""


@dataclass(frozen=True, order=True)
class Voice:
    """One voice of one engine: ``Voice("flite", "slt")``, written ``flite:slt``."""

    engine: str
    name: str

    @classmethod
    def parse(cls, spec: str) -> Voice:
        """``engine:name``, or a bare espeak-ng voice name (``en-gb-x-rp+m3``)."""
        engine, sep, name = str(spec).partition(":")
        if not sep:
            engine, name = DEFAULT_ENGINE, engine
        if not engine or not name:
            raise ValueError(f"voice {spec!r}: expected 'engine:name' (e.g. 'flite:slt')")
        return cls(engine, name)

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"

    @property
    def slug(self) -> str:
        """The voice as a file-name and utterance-id prefix (``flite-slt``)."""
        return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{self.engine}-{self.name}").strip("-")


@dataclass(frozen=True)
class SynthRequest:
    """One sentence to speak: text, voice name (within the engine), rate factor, semitones."""

    text: str
    voice: str
    rate: float = 1.0
    pitch: float = 0.0


class SpeechEngine(ABC):
    """A text-to-speech program that reads sentences in several voices."""

    #: the engine's name in voice specs (``flite`` in ``flite:slt``).
    name: ClassVar[str]
    #: how to install it (shown when it is missing).
    install_hint: ClassVar[str]

    @classmethod
    @abstractmethod
    def find(cls) -> SpeechEngine:
        """The engine installed on PATH; :class:`EngineMissing` (naming the install) if none."""

    @abstractmethod
    def missing_voices(self, voices: Sequence[str]) -> dict[str, str]:
        """Voices this engine lacks that an install would add: ``{voice: install hint}``.

        Raise :class:`EngineError` for a name no install provides (a misspelt voice).
        """

    @abstractmethod
    def synthesize(self, request: SynthRequest) -> tuple[np.ndarray, int]:
        """Speak one sentence: (float32 mono samples in [-1, 1], sample rate)."""

    def synthesize_many(
        self, requests: Sequence[SynthRequest]
    ) -> list[tuple[np.ndarray, int] | EngineError]:
        """Speak several sentences; a failed one is returned as its error, not raised.

        Engines with a slow start (festival loads its voices) override this to start once.
        """
        out: list[tuple[np.ndarray, int] | EngineError] = []
        for r in requests:
            try:
                out.append(self.synthesize(r))
            except EngineError as e:
                out.append(e)
        return out


def engine_classes() -> dict[str, type[SpeechEngine]]:
    """Every engine the corpus can drive, by name."""
    from asr.data.synth.espeak import EspeakEngine  # these modules import this one
    from asr.data.synth.festival import FestivalEngine
    from asr.data.synth.flite import FliteEngine

    return {cls.name: cls for cls in (EspeakEngine, FliteEngine, FestivalEngine)}


def find_engines(
    voices: Iterable[Voice],
    engines: dict[str, SpeechEngine] | None = None,
    report: Callable[[str], None] = print,
) -> tuple[dict[str, SpeechEngine], list[Voice]]:
    """The engines ``voices`` need, found on PATH, and the voices that can be spoken.

    A missing engine, or a voice whose package is not installed, is reported once (with the
    command that installs it) and left out; a name that no engine knows, or a misspelt voice,
    raises :class:`EngineError`. ``engines`` replaces the engines found on PATH (tests).
    """
    classes = engine_classes()
    voices = list(dict.fromkeys(voices))
    by_engine: dict[str, list[Voice]] = {}
    for v in voices:
        if engines is None or v.engine not in engines:
            if v.engine not in classes:
                raise EngineError(
                    f"voice {v}: unknown engine {v.engine!r}; known: {sorted(classes)}"
                )
        by_engine.setdefault(v.engine, []).append(v)
    found: dict[str, SpeechEngine] = {}
    usable: set[Voice] = set()
    for name, engine_voices in by_engine.items():
        names = ", ".join(v.name for v in engine_voices)
        try:
            engine = engines[name] if engines and name in engines else classes[name].find()
        except EngineMissing as e:
            report(f"synth: {e}; leaving out its voices ({names})")
            continue
        missing = engine.missing_voices([v.name for v in engine_voices])
        for voice, hint in missing.items():
            report(f"synth: {name} voice {voice!r} is not installed ({hint}); leaving it out")
        found[name] = engine
        usable.update(v for v in engine_voices if v.name not in missing)
    return found, [v for v in voices if v in usable]
