"""flite (CMU Flite 2.2) as a :class:`~asr.data.synth.engine.SpeechEngine`: a second family of
voices, unlike espeak-ng's formant synthesis, installable with ``apt-get install flite``.

Voices: the built-in ``kal`` (diphone, 8 kHz), ``kal16`` (the same diphones at 16 kHz), ``awb``,
``rms``, ``slt`` (statistical parametric, 16 kHz), or the path of a ``.flitevox`` file (Debian
ships none). ``awb_time`` only speaks clock times and is refused. Rate: ``duration_stretch`` =
1 / rate. Pitch: ``f0_shift`` = 2^(semitones/12), which moves ``kal``, ``kal16`` and ``slt``;
``awb`` and ``rms`` keep their recorded pitch (their median f0 did not move with it).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import soundfile as sf

from asr.data.synth.engine import EngineError, EngineMissing, SpeechEngine, SynthRequest

FLITE_INSTALL_HINT = "apt-get install flite"
# Built-in voices that cannot read arbitrary sentences.
LIMITED_DOMAIN_VOICES = frozenset({"awb_time"})


def _built_in_voices(flite: str) -> set[str]:
    """``flite -lv`` prints ``Voices available: kal awb_time kal16 awb rms slt``."""
    out = subprocess.run([flite, "-lv"], capture_output=True, text=True, check=False).stdout
    return set(out.partition(":")[2].split())


@dataclass(frozen=True)
class FliteEngine(SpeechEngine):
    """flite at ``path``; a voice is a built-in name or a ``.flitevox`` path."""

    path: str
    name: ClassVar[str] = "flite"
    install_hint: ClassVar[str] = FLITE_INSTALL_HINT

    @classmethod
    def find(cls, flite_bin: str = "flite") -> FliteEngine:
        path = shutil.which(flite_bin)
        if path is None:
            raise EngineMissing(f"'{flite_bin}' was not found on PATH ({FLITE_INSTALL_HINT})")
        return cls(path)

    def missing_voices(self, voices: Sequence[str]) -> dict[str, str]:
        built_in = _built_in_voices(self.path)
        missing = {}
        for voice in voices:
            if voice.endswith(".flitevox"):
                if not Path(voice).is_file():
                    missing[voice] = "no such .flitevox file"
            elif voice in LIMITED_DOMAIN_VOICES:
                raise EngineError(f"flite voice {voice!r} only speaks clock times; choose another")
            elif voice not in built_in:
                raise EngineError(
                    f"flite has no voice {voice!r}; built in: {sorted(built_in)} "
                    "(or give a .flitevox path)"
                )
        return missing

    def synthesize(self, request: SynthRequest) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory(prefix="flite") as tmp:
            wav = Path(tmp) / "out.wav"
            cmd = [self.path, "-voice", request.voice]
            cmd += ["--setf", f"duration_stretch={1.0 / request.rate:.4f}"]
            cmd += ["--setf", f"f0_shift={2.0 ** (request.pitch / 12.0):.4f}"]
            cmd += ["-t", request.text, "-o", str(wav)]
            proc = subprocess.run(cmd, capture_output=True, check=False)
            if proc.returncode != 0 or not wav.exists():
                err = proc.stderr.decode(errors="replace").strip()
                raise EngineError(
                    f"flite failed for voice {request.voice!r} on {request.text!r}: "
                    f"{err or 'no audio'}"
                )
            samples, rate = sf.read(wav, dtype="float32")
        if samples.size == 0:
            raise EngineError(f"flite wrote no audio for {request.text!r}")
        return samples, int(rate)
