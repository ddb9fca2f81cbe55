"""Festival as a :class:`~asr.data.synth.engine.SpeechEngine`: a third family of voices
(diphone and HTS synthesis), installable with ``apt-get install festival`` and the ``festvox-*``
voice packages.

Debian's English voices: ``kal_diphone`` (festvox-kallpc16k), ``ked_diphone``
(festvox-kdlpc16k), both 16 kHz diphone voices, and ``cmu_us_slt_arctic_hts``
(festvox-us-slt-hts, 32 kHz HTS). Festival takes about 0.35 s to start and load a voice, longer
than it takes to speak a sentence, so :meth:`FestivalEngine.synthesize_many` speaks a whole batch
in one ``festival --pipe`` process. Rate: ``Duration_Stretch`` = 1 / rate for diphone voices,
HTS engine option ``-r`` for HTS voices. Pitch: the diphone voices' target f0 mean and range
times 2^(semitones/12) (their median f0 moves by about half to all of the shift asked); the HTS
voice keeps its own pitch (its engine has no pitch option here).
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

FESTIVAL_INSTALL_HINT = "apt-get install festival"
# The Debian package of each English voice, for the message when one is not installed.
VOICE_PACKAGES = {
    "kal_diphone": "festvox-kallpc16k",
    "ked_diphone": "festvox-kdlpc16k",
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
}
# Seconds a festival process may take: start-up and voice loading, then per sentence.
_TIMEOUT_START_S, _TIMEOUT_PER_SENTENCE_S = 60.0, 20.0

# Scheme run once per process. asr_f0 scales a diphone voice's intonation target (mean and
# range); asr_say speaks one sentence with a rate and pitch into a RIFF file.
_PRELUDE = """
(define (asr_f0 params factor)
  (mapcar
    (lambda (p)
      (if (or (eq (car p) 'target_f0_mean) (eq (car p) 'target_f0_std))
          (list (car p) (* factor (car (cdr p))))
          p))
    params))
(define (asr_voice name)
  (eval (list (intern (string-append "voice_" name))))
  (set! asr_lr int_lr_params)
  (set! asr_hts (string-equal (Param.get 'Synth_Method) "HTS"))
  (if asr_hts (set! asr_hts_params hts_engine_params)))
(define (asr_say text rate f0 file)
  (Parameter.set 'Duration_Stretch (/ 1.0 rate))
  (set! int_lr_params (asr_f0 asr_lr f0))
  (if asr_hts (set! hts_engine_params (append asr_hts_params (list (list "-r" rate)))))
  ; Utterance does not evaluate its arguments: build the call
  (utt.save.wave (utt.synth (eval (list 'Utterance 'Text text))) file 'riff))
"""


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def festival_voices(festival: str) -> set[str]:
    """Voices festival can load (``(voice.list)`` prints ``(kal_diphone ked_diphone ...)``)."""
    proc = subprocess.run(
        [festival, "--pipe"], input="(print (voice.list))\n", capture_output=True, text=True,
        check=False, timeout=_TIMEOUT_START_S,
    )  # fmt: skip
    return set(proc.stdout.strip().strip("()").split())


@dataclass(frozen=True)
class FestivalEngine(SpeechEngine):
    """festival at ``path``; voices are festival voice names (``kal_diphone``)."""

    path: str
    name: ClassVar[str] = "festival"
    install_hint: ClassVar[str] = FESTIVAL_INSTALL_HINT

    @classmethod
    def find(cls, festival_bin: str = "festival") -> FestivalEngine:
        path = shutil.which(festival_bin)
        if path is None:
            raise EngineMissing(
                f"'{festival_bin}' was not found on PATH ({FESTIVAL_INSTALL_HINT} "
                f"{' '.join(VOICE_PACKAGES.values())})"
            )
        return cls(path)

    def missing_voices(self, voices: Sequence[str]) -> dict[str, str]:
        installed = festival_voices(self.path)
        missing = {}
        for voice in voices:
            if voice in installed:
                continue
            if voice not in VOICE_PACKAGES:
                raise EngineError(
                    f"festival has no voice {voice!r}; installed: {sorted(installed)}; "
                    f"Debian packages: {VOICE_PACKAGES}"
                )
            missing[voice] = f"apt-get install {VOICE_PACKAGES[voice]}"
        return missing

    def synthesize(self, request: SynthRequest) -> tuple[np.ndarray, int]:
        result = self.synthesize_many([request])[0]
        if isinstance(result, EngineError):
            raise result
        return result

    def synthesize_many(
        self, requests: Sequence[SynthRequest]
    ) -> list[tuple[np.ndarray, int] | EngineError]:
        """One festival process speaks every request (it carries on past a failed one)."""
        with tempfile.TemporaryDirectory(prefix="festival") as tmp:
            files = [Path(tmp) / f"{i}.wav" for i in range(len(requests))]
            script = [_PRELUDE]
            voice = None
            for r, path in zip(requests, files, strict=True):
                if r.voice != voice:
                    script.append(f"(asr_voice {_scheme_string(r.voice)})")
                    voice = r.voice
                f0 = 2.0 ** (r.pitch / 12.0)
                script.append(
                    f"(asr_say {_scheme_string(r.text)} {r.rate:.4f} {f0:.4f} "
                    f"{_scheme_string(str(path))})"
                )
            timeout = _TIMEOUT_START_S + _TIMEOUT_PER_SENTENCE_S * len(requests)
            try:
                proc = subprocess.run(
                    [self.path, "--pipe"], input="\n".join(script) + "\n", capture_output=True,
                    text=True, check=False, timeout=timeout,
                )  # fmt: skip
                err = proc.stderr.strip()
            except subprocess.TimeoutExpired:
                err = f"festival took more than {timeout:.0f} s"
            out: list[tuple[np.ndarray, int] | EngineError] = []
            for r, path in zip(requests, files, strict=True):
                if not path.exists() or path.stat().st_size <= 44:
                    out.append(
                        EngineError(
                            f"festival failed for voice {r.voice!r} on {r.text!r}: "
                            f"{err.splitlines()[-1] if err else 'no audio'}"
                        )
                    )
                    continue
                samples, rate = sf.read(path, dtype="float32")
                out.append((samples, int(rate)))
        return out
