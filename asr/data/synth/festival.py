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

Festival's voices of other languages (:data:`FOREIGN_VOICES`) speak English through a phone map
(:mod:`~asr.data.synth.phonemap`): ``kal_diphone``'s English front end gives each sentence's
phones, durations and f0 targets, and the foreign voice speaks them mapped onto its own
phones, an ``(Utterance Segments ...)``, at the voice's pitch. Rate divides the durations and
pitch scales the targets, as for the English voices.
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
from asr.data.synth.phonemap import PHONE_MAPS, Segment, map_segments, segments_scheme

FESTIVAL_INSTALL_HINT = "apt-get install festival"
# The Debian package of each English voice, for the message when one is not installed.
VOICE_PACKAGES = {
    "kal_diphone": "festvox-kallpc16k",
    "ked_diphone": "festvox-kdlpc16k",
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
}


@dataclass(frozen=True)
class ForeignVoice:
    """A festival voice of another language: its Debian packages (the voice's, and the language
    support it loads, which Debian only recommends), its phone map's name, and its pitch over
    the English front end's targets (those of a male voice at about 105 Hz)."""

    packages: tuple[str, ...]
    phone_set: str
    f0_factor: float


FOREIGN_VOICES = {
    "lp_diphone": ForeignVoice(("festvox-italp16k",), "italian", 1.6),
    "pc_diphone": ForeignVoice(("festvox-itapc16k",), "italian", 1.05),
    "czech_dita": ForeignVoice(("festvox-czech-dita",), "czech", 1.6),
    "czech_krb": ForeignVoice(("festvox-czech-krb",), "czech", 2.2),
    "czech_machac": ForeignVoice(("festvox-czech-machac",), "czech", 0.75),
    "czech_ph": ForeignVoice(("festvox-czech-ph",), "czech", 1.2),
    "suo_fi_lj_diphone": ForeignVoice(("festvox-suopuhe-lj",), "finnish", 1.6),
    "hy_fi_mv_diphone": ForeignVoice(("festvox-suopuhe-mv",), "finnish", 0.85),
    "hindi_NSK_diphone": ForeignVoice(("festvox-hi-nsk", "festival-hi"), "hindi", 1.0),
}
# The English voice whose front end gives the foreign voices their phones and prosody.
FRONT_END_VOICE = "kal_diphone"
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
(define (asr_voice_foreign name)
  (eval (list (intern (string-append "voice_" name)))))
(define (asr_say_segments segments file)
  (utt.save.wave (utt.synth (eval (list 'Utterance 'Segments segments))) file 'riff))
"""
# Prints each segment of a sentence as "asr_seg NAME DURATION [TIME F0 ...]" (f0 targets in
# seconds into the segment), then "asr_end INDEX".
_FRONT_END = """
(define (asr_front index text)
  (let ((utt (utt.synth (eval (list 'Utterance 'Text text)))) (start 0.0))
    (mapcar
      (lambda (seg)
        (let ((end (item.feat seg 'end)) (targets (item.relation seg 'Target)))
          (format t "asr_seg %s %f" (item.name seg) (- end start))
          (if targets
              (mapcar (lambda (x) (format t " %f %f" (- (item.feat x 'pos) start) (item.feat x 'f0)))
                      (item.daughters targets)))
          (format t "\\n")
          (set! start end)))
      (utt.relation.items utt 'Segment))
    (format t "asr_end %d\\n" index)))
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
        packages = {
            **VOICE_PACKAGES,
            **{v: " ".join(f.packages) for v, f in FOREIGN_VOICES.items()},
        }
        missing = {}
        for voice in voices:
            if voice not in packages and voice not in installed:
                raise EngineError(
                    f"festival has no voice {voice!r}; installed: {sorted(installed)}; "
                    f"Debian packages: {packages}"
                )
            needs = [voice] + ([FRONT_END_VOICE] if voice in FOREIGN_VOICES else [])
            absent = [packages[v] for v in needs if v not in installed]
            if absent:
                missing[voice] = f"apt-get install {' '.join(absent)}"
        return missing

    def synthesize(self, request: SynthRequest) -> tuple[np.ndarray, int]:
        result = self.synthesize_many([request])[0]
        if isinstance(result, EngineError):
            raise result
        return result

    def front_end(self, texts: Sequence[str]) -> list[list[Segment] | None]:
        """Each text's phones, durations and f0 targets from the English front end (``None``
        where it failed), for the foreign voices to speak.

        festival can die on a sentence and take the whole batch's unflushed output with it,
        so the sentences a failed batch leaves without phones are retried one by one.
        """
        spoken = {i: t for i, t in enumerate(texts) if t.strip()}
        out = self._front_end_batch(spoken)
        if len(spoken) > 1 and any(out[i] is None for i in spoken):
            for i in [i for i in spoken if out[i] is None]:
                out[i] = self._front_end_batch({i: spoken[i]})[i]
        return [out.get(i) for i in range(len(texts))]

    def _front_end_batch(self, texts: dict[int, str]) -> dict[int, list[Segment] | None]:
        script = [_FRONT_END, f"(voice_{FRONT_END_VOICE})"]
        for i, text in texts.items():  # a sentence that fails prints no "asr_end"
            script += ['(format t "asr_start\\n")', f"(asr_front {i} {_scheme_string(text)})"]
        stdout = self._run(script, len(texts))[0] if texts else ""
        out: dict[int, list[Segment] | None] = dict.fromkeys(texts)
        current: list[Segment] = []
        for line in stdout.splitlines():
            fields = line.split()
            if fields[:1] == ["asr_seg"]:
                times = [float(x) for x in fields[3:]]
                pairs = tuple(zip(times[::2], times[1::2], strict=True))
                current.append(Segment(fields[1], float(fields[2]), pairs))
            elif fields[:1] == ["asr_start"]:
                current = []
            elif fields[:1] == ["asr_end"]:
                out[int(fields[1])], current = current, []
        return out

    def _run(self, script: Sequence[str], sentences: int) -> tuple[str, str]:
        """Run one ``festival --pipe``: its stdout and its last error line."""
        timeout = _TIMEOUT_START_S + _TIMEOUT_PER_SENTENCE_S * sentences
        try:
            proc = subprocess.run(
                [self.path, "--pipe"], input="\n".join(script) + "\n", capture_output=True,
                text=True, check=False, timeout=timeout,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return "", f"festival took more than {timeout:.0f} s"
        err = proc.stderr.strip()
        return proc.stdout, err.splitlines()[-1] if err else "no audio"

    def synthesize_many(
        self, requests: Sequence[SynthRequest]
    ) -> list[tuple[np.ndarray, int] | EngineError]:
        """One festival process speaks every request (it carries on past a failed one); the
        foreign voices' requests go through the English front end first, in one more."""
        foreign = [i for i, r in enumerate(requests) if r.voice in FOREIGN_VOICES]
        phones = dict(
            zip(foreign, self.front_end([requests[i].text for i in foreign]), strict=True)
        )
        with tempfile.TemporaryDirectory(prefix="festival") as tmp:
            files = [Path(tmp) / f"{i}.wav" for i in range(len(requests))]
            script = [_PRELUDE]
            voice = None
            for i, (r, path) in enumerate(zip(requests, files, strict=True)):
                if r.voice != voice:
                    load = "asr_voice_foreign" if r.voice in FOREIGN_VOICES else "asr_voice"
                    script.append(f"({load} {_scheme_string(r.voice)})")
                    voice = r.voice
                f0 = 2.0 ** (r.pitch / 12.0)
                if r.voice not in FOREIGN_VOICES:
                    script.append(
                        f"(asr_say {_scheme_string(r.text)} {r.rate:.4f} {f0:.4f} "
                        f"{_scheme_string(str(path))})"
                    )
                elif phones[i]:
                    spec = FOREIGN_VOICES[r.voice]
                    segments = map_segments(
                        phones[i], PHONE_MAPS[spec.phone_set], spec.f0_factor * f0, r.rate
                    )
                    script.append(
                        f"(asr_say_segments '{segments_scheme(segments)} "
                        f"{_scheme_string(str(path))})"
                    )
            err = self._run(script, len(requests))[1]
            out: list[tuple[np.ndarray, int] | EngineError] = []
            for r, path in zip(requests, files, strict=True):
                if not path.exists() or path.stat().st_size <= 44:
                    out.append(
                        EngineError(f"festival failed for voice {r.voice!r} on {r.text!r}: {err}")
                    )
                    continue
                samples, rate = sf.read(path, dtype="float32")
                out.append((samples, int(rate)))
        return out
