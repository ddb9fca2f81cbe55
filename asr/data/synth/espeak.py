"""espeak-ng as a :class:`~asr.data.synth.engine.SpeechEngine`: formant synthesis in many
English voices, installable with ``apt-get install espeak-ng``, fast enough for hours of audio.

Voices are ``language[+variant]`` (``en-gb-x-rp+m3``). Rate: ``-s`` words per minute, the rate
factor times espeak-ng's default 175. Pitch: ``-p`` on espeak-ng's 0-99 scale, 50 plus 20 per 3
semitones (around 50 each step of 20 moved the median f0 by a factor 1.18, about 2.9 semitones,
on ``en-us`` and ``en+f2``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from asr.data.synth.engine import EngineError, EngineMissing, SpeechEngine, SynthRequest

ESPEAK_INSTALL_HINT = "apt-get install espeak-ng"
ESPEAK_SAMPLE_RATE = 22050  # espeak-ng's only output rate
ESPEAK_DEFAULT_WPM = 175
ESPEAK_PITCH_PER_SEMITONE = 20 / 3
WAV_HEADER_BYTES = 44  # espeak-ng --stdout writes a plain 44-byte PCM header (streamed sizes)


class EspeakError(EngineError):
    """espeak-ng is missing, a voice does not exist, or synthesis failed."""


class EspeakMissing(EspeakError, EngineMissing):
    """espeak-ng is not installed."""


def find_espeak(espeak_bin: str = "espeak-ng") -> str:
    """Path of the espeak-ng executable, or a clear error saying how to install it."""
    path = shutil.which(espeak_bin)
    if path is None:
        raise EspeakMissing(
            f"'{espeak_bin}' was not found on PATH: "
            f"run '{ESPEAK_INSTALL_HINT}' (as root) or 'make system-deps'"
        )
    return path


def _variants(espeak: str) -> set[str]:
    """Variant names espeak-ng knows (it silently ignores an unknown ``+variant``)."""
    out = subprocess.run(
        [espeak, "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    return {r[4].removeprefix("!v/") for r in rows if len(r) > 4}


def check_voices(voices: Sequence[str], espeak: str) -> None:
    """Fail early on a misspelt voice instead of silently getting espeak-ng's default."""
    variants = _variants(espeak)
    for voice in voices:
        lang, _, variant = voice.partition("+")
        # -q: synthesise nothing; espeak-ng exits non-zero for an unknown language.
        probe = subprocess.run([espeak, "-q", "-v", lang, "a"], capture_output=True, check=False)
        if probe.returncode != 0:
            raise EspeakError(
                f"espeak-ng has no voice {lang!r} (in {voice!r}); see 'espeak-ng --voices=en'"
            )
        if variant and variant not in variants:
            raise EspeakError(
                f"espeak-ng has no variant {variant!r} (in {voice!r}); "
                "see 'espeak-ng --voices=variant'"
            )


def espeak_waveform(text: str, voice: str, rate: int, pitch: int, espeak: str) -> np.ndarray:
    """Speak ``text``; float32 samples at 22.05 kHz."""
    proc = subprocess.run(
        [espeak, "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", text],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0 or len(proc.stdout) <= WAV_HEADER_BYTES:
        err = proc.stderr.decode(errors="replace").strip()
        raise EspeakError(f"espeak-ng failed for voice {voice!r} on {text!r}: {err or 'no audio'}")
    pcm = np.frombuffer(proc.stdout[WAV_HEADER_BYTES:], dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def espeak_rate_pitch(rate: float, pitch: float) -> tuple[int, int]:
    """The rate factor and semitone shift as espeak-ng's ``-s`` (wpm) and ``-p`` (0-99)."""
    wpm = round(ESPEAK_DEFAULT_WPM * rate)
    p = round(50 + ESPEAK_PITCH_PER_SEMITONE * pitch)
    return wpm, min(99, max(0, p))


@dataclass(frozen=True)
class EspeakEngine(SpeechEngine):
    """espeak-ng at ``path``; voices are ``language[+variant]`` (``en-gb-x-rp+m3``)."""

    path: str
    name: ClassVar[str] = "espeak-ng"
    install_hint: ClassVar[str] = ESPEAK_INSTALL_HINT

    @classmethod
    def find(cls, espeak_bin: str = "espeak-ng") -> EspeakEngine:
        """The engine for ``espeak_bin`` on PATH (:func:`find_espeak` explains a missing one)."""
        return cls(find_espeak(espeak_bin))

    def missing_voices(self, voices: Sequence[str]) -> dict[str, str]:
        check_voices(voices, self.path)  # espeak-ng-data holds every voice: a miss is a typo
        return {}

    def synthesize(self, request: SynthRequest) -> tuple[np.ndarray, int]:
        wpm, pitch = espeak_rate_pitch(request.rate, request.pitch)
        return espeak_waveform(
            request.text, request.voice, wpm, pitch, self.path
        ), ESPEAK_SAMPLE_RATE
