"""espeak-ng as a :class:`~asr.data.synth.engine.SpeechEngine`: formant synthesis in many
English voices, installable with ``apt-get install espeak-ng``, fast enough for hours of audio."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from asr.data.synth.engine import EngineError, SpeechEngine

ESPEAK_INSTALL_HINT = "apt-get install espeak-ng"
ESPEAK_SAMPLE_RATE = 22050  # espeak-ng's only output rate
WAV_HEADER_BYTES = 44  # espeak-ng --stdout writes a plain 44-byte PCM header (streamed sizes)


class EspeakError(EngineError):
    """espeak-ng is missing, a voice does not exist, or synthesis failed."""


def find_espeak(espeak_bin: str = "espeak-ng") -> str:
    """Path of the espeak-ng executable, or a clear error saying how to install it."""
    path = shutil.which(espeak_bin)
    if path is None:
        raise EspeakError(
            f"'{espeak_bin}' was not found on PATH; the synthetic corpus needs it: "
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


@dataclass(frozen=True)
class EspeakEngine(SpeechEngine):
    """espeak-ng at ``path``; voices are ``language[+variant]`` (``en-gb-x-rp+m3``)."""

    path: str
    sample_rate: int = ESPEAK_SAMPLE_RATE

    @classmethod
    def find(cls, espeak_bin: str = "espeak-ng") -> EspeakEngine:
        """The engine for ``espeak_bin`` on PATH (:func:`find_espeak` explains a missing one)."""
        return cls(find_espeak(espeak_bin))

    def check_voices(self, voices: Sequence[str]) -> None:
        check_voices(voices, self.path)

    def synthesize(self, text: str, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
        return espeak_waveform(text, voice, rate_wpm, pitch, self.path)
