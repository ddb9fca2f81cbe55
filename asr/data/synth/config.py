"""What synthetic corpus to make: :class:`SynthConfig` (the recipe's ``corpus:`` section)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from asr.data.text_sources import FORTUNE_DIR

SPLITS: tuple[str, ...] = ("train", "dev", "test", "test_unseen")


@dataclass
class SynthConfig:
    """What corpus to synthesise.

    Sizes are numbers of utterances; a ``*_hours`` value, when set, replaces the count and
    plans utterances until their estimated duration reaches it.

    :param voices: espeak-ng voices (``language[+variant]``) for train, dev and test.
    :param unseen_voice: the voice of ``test_unseen`` only; must not be in ``voices``.
    :param rate_wpm: speaking-rate range (words per minute), sampled per utterance.
    :param pitch: espeak-ng pitch range (0-99), sampled per utterance.
    :param noise_snr_db: additive-noise SNR range in dB, or ``None`` for clean audio.
    :param noise_fraction: share of utterances that get noise (the rest stay clean).
    :param max_eval_sentence_fraction: dev+test+test_unseen may use at most this share of the
        sentences, so training keeps most of the text.
    :param text_dir: folder of fortune files (``apt-get install fortunes``).
    :param jobs: worker processes (does not change the output).
    :param est_letter_s: duration estimate, used only to turn ``*_hours`` into utterance
        counts: ``est_letter_s * letters / rate_wpm + est_silence_s`` seconds, a least-squares
        fit on espeak-ng utterances of the default voices.
    """

    num_train: int = 2000
    num_dev: int = 200
    num_test: int = 200
    num_test_unseen: int = 200
    train_hours: float | None = None
    dev_hours: float | None = None
    test_hours: float | None = None
    test_unseen_hours: float | None = None
    seed: int = 0
    voices: tuple[str, ...] = (
        "en-us",
        "en-us+f3",
        "en-gb-x-rp+m3",
        "en+f2",
        "en-gb-scotland+m2",
        "en-029+f4",
        "en-us-nyc+m4",
        "en-gb-x-gbclan+f1",
        "en-gb-x-gbcwmd+m5",
    )
    unseen_voice: str = "en-gb-x-rp+f5"
    rate_wpm: tuple[int, int] = (140, 200)
    pitch: tuple[int, int] = (30, 70)
    noise_snr_db: tuple[float, float] | None = (15.0, 40.0)
    noise_fraction: float = 0.8
    sample_rate: int = 16000
    min_words: int = 3
    max_words: int = 20
    max_eval_sentence_fraction: float = 0.5
    text_dir: str = str(FORTUNE_DIR)
    espeak_bin: str = "espeak-ng"
    jobs: int = 2
    est_letter_s: float = 11.1
    est_silence_s: float = 0.45

    def __post_init__(self) -> None:
        self.voices = tuple(self.voices)
        self.rate_wpm = tuple(self.rate_wpm)  # type: ignore[assignment]
        self.pitch = tuple(self.pitch)  # type: ignore[assignment]
        # YAML reads a bare `off` as False.
        if self.noise_snr_db is False or self.noise_snr_db in ("off", "none"):
            self.noise_snr_db = None
        if self.noise_snr_db is not None:
            self.noise_snr_db = tuple(self.noise_snr_db)  # type: ignore[assignment]
        self.validate()

    def validate(self) -> None:
        """Reject impossible settings early, naming the field and the fix."""
        if not self.voices:
            raise ValueError("SynthConfig.voices is empty; give at least one espeak-ng voice")
        if self.unseen_voice in self.voices:
            raise ValueError(
                f"SynthConfig.unseen_voice {self.unseen_voice!r} is also in voices; "
                "the test_unseen voice must never be heard in training"
            )
        for name in ("num_train", "num_dev", "num_test", "num_test_unseen", "seed", "jobs"):
            if getattr(self, name) < (1 if name == "jobs" else 0):
                raise ValueError(f"SynthConfig.{name} must be non-negative (jobs >= 1)")
        for name in ("rate_wpm", "pitch", "noise_snr_db"):
            rng = getattr(self, name)
            if rng is not None and (len(rng) != 2 or rng[0] > rng[1]):
                raise ValueError(f"SynthConfig.{name} must be a (min, max) pair, got {rng}")
        if not 0.0 <= self.noise_fraction <= 1.0:
            raise ValueError("SynthConfig.noise_fraction must be in [0, 1]")

    def fingerprint(self) -> dict:
        """Fields that change the output (``jobs`` does not)."""
        d = dataclasses.asdict(self)
        d.pop("jobs")
        return json.loads(json.dumps(d))  # tuples -> lists, as stored on disk

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> SynthConfig:
        """Read a YAML mapping of SynthConfig fields; ``overrides`` (not None) win."""
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of SynthConfig fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"{path}: unknown SynthConfig fields {unknown}; known: {sorted(known)}"
            )
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)
