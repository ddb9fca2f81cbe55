"""What synthetic corpus to make: :class:`SynthConfig` (the recipe's ``corpus:`` section)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from asr.data.augment import AugmentConfig
from asr.data.synth.engine import Voice
from asr.data.text_sources import FORTUNE_DIR

SPLITS: tuple[str, ...] = ("train", "dev", "test", "test_unseen", "test_unseen_engine")
EVAL_SPLITS: tuple[str, ...] = SPLITS[1:]


@dataclass
class SynthConfig:
    """What corpus to synthesise.

    Sizes are numbers of utterances; a ``*_hours`` value, when set, replaces the count and
    plans utterances until their estimated duration reaches it.

    :param voices: every voice, ``engine:name`` or a bare espeak-ng name
        (:class:`~asr.data.synth.engine.Voice`). Those of ``held_out_engine`` speak only
        ``test_unseen_engine``; the rest speak train, dev and test.
    :param train_only_voices: voices heard in training only, never in dev or test (festival's
        voices of other languages speaking accented English, say: more speakers to learn from,
        while dev and test keep measuring ``voices``); none of ``held_out_engine``.
    :param train_only_hours: None: the train-only voices share ``train_hours`` with the
        training voices. A number: they speak that many hours of training sentences on top,
        and the training voices keep all of ``train_hours`` (the same utterances as without
        them).
    :param held_out_engine: the engine family no training utterance comes from (None: no
        ``test_unseen_engine`` split).
    :param unseen_voice: the voice of ``test_unseen`` only (a voice of a training engine that
        training never hears); must not be in ``voices``.
    :param rate: speaking-rate factor range (1 = the voice's own tempo), drawn per utterance.
    :param pitch: pitch shift range in semitones, drawn per utterance (voices without a pitch
        control ignore it: see each engine's module).
    :param noise_snr_db: additive-noise SNR range in dB (every split: the recording condition),
        or ``None`` for clean audio.
    :param noise_fraction: share of utterances that get that noise (the rest stay clean).
    :param augment: :class:`~asr.data.augment.AugmentConfig` for the ``train`` split only
        (reverberation, noise and babble, telephone, gain), baked into its audio; the
        unaugmented audio stays beside it as ``train_clean.jsonl``. None: off.
    :param max_eval_sentence_fraction: the evaluation splits may use at most this share of the
        sentences, so training keeps most of the text.
    :param text_dir: folder of fortune files (``apt-get install fortunes``).
    :param jobs: worker processes (does not change the output).
    :param est_letter_s: duration estimate, used only to turn ``*_hours`` into utterance
        counts: ``est_letter_s * letters / rate + est_silence_s`` seconds, a least-squares fit
        on utterances of the default voices.
    """

    num_train: int = 2000
    num_dev: int = 200
    num_test: int = 200
    num_test_unseen: int = 200
    num_test_unseen_engine: int = 200
    train_hours: float | None = None
    dev_hours: float | None = None
    test_hours: float | None = None
    test_unseen_hours: float | None = None
    test_unseen_engine_hours: float | None = None
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
        "flite:kal",
        "flite:kal16",
        "flite:awb",
        "flite:rms",
        "flite:slt",
        "festival:kal_diphone",
        "festival:ked_diphone",
        "festival:cmu_us_slt_arctic_hts",
    )
    train_only_voices: tuple[str, ...] = ()
    train_only_hours: float | None = None
    held_out_engine: str | None = "festival"
    unseen_voice: str = "en-gb-x-rp+f5"
    rate: tuple[float, float] = (0.8, 1.15)
    pitch: tuple[float, float] = (-3.0, 3.0)
    noise_snr_db: tuple[float, float] | None = (15.0, 40.0)
    noise_fraction: float = 0.8
    augment: AugmentConfig | None = None
    sample_rate: int = 16000
    min_words: int = 3
    max_words: int = 20
    max_eval_sentence_fraction: float = 0.5
    text_dir: str = str(FORTUNE_DIR)
    jobs: int = 2
    est_letter_s: float = 0.0618
    est_silence_s: float = 0.51

    def __post_init__(self) -> None:
        self.voices = tuple(str(Voice.parse(v)) for v in self.voices)
        self.train_only_voices = tuple(str(Voice.parse(v)) for v in self.train_only_voices)
        self.unseen_voice = str(Voice.parse(self.unseen_voice))
        self.rate = tuple(self.rate)  # type: ignore[assignment]
        self.pitch = tuple(self.pitch)  # type: ignore[assignment]
        # YAML reads a bare `off` as False.
        if self.noise_snr_db is False or self.noise_snr_db in ("off", "none"):
            self.noise_snr_db = None
        if self.noise_snr_db is not None:
            self.noise_snr_db = tuple(self.noise_snr_db)  # type: ignore[assignment]
        self.augment = AugmentConfig.from_any(self.augment)
        if self.augment is not None and not self.augment.enabled:
            self.augment = None
        self.validate()

    def validate(self) -> None:
        """Reject impossible settings early, naming the field and the fix."""
        if not self.training_voices():
            raise ValueError(
                "SynthConfig.voices has no voice outside held_out_engine "
                f"{self.held_out_engine!r}; give at least one training voice"
            )
        if self.unseen_voice in self.voices:
            raise ValueError(
                f"SynthConfig.unseen_voice {self.unseen_voice!r} is also in voices; "
                "the test_unseen voice must never be heard in training"
            )
        if Voice.parse(self.unseen_voice).engine == self.held_out_engine:
            raise ValueError(
                f"SynthConfig.unseen_voice {self.unseen_voice!r} belongs to held_out_engine; "
                "test_unseen is an unseen voice of a training engine"
            )
        if self.held_out_engine is not None and not self.held_out_voices():
            raise ValueError(
                f"SynthConfig.held_out_engine {self.held_out_engine!r} has no voice in voices; "
                "add its voices (e.g. 'festival:kal_diphone') or set held_out_engine: null"
            )
        for voice in self.train_only_voices:
            if voice in self.voices or voice == self.unseen_voice:
                raise ValueError(
                    f"SynthConfig.train_only_voices {voice!r} is also in voices or is the "
                    "unseen_voice; a voice is either heard in dev and test or in training only"
                )
            if Voice.parse(voice).engine == self.held_out_engine:
                raise ValueError(
                    f"SynthConfig.train_only_voices {voice!r} belongs to held_out_engine "
                    f"{self.held_out_engine!r}, which training must never hear"
                )
        if self.train_only_hours is not None and (
            self.train_only_hours < 0 or not self.train_only_voices
        ):
            raise ValueError(
                "SynthConfig.train_only_hours must be non-negative and needs train_only_voices"
            )
        counts = [f"num_{s}" for s in SPLITS]
        for name in (*counts, "seed", "jobs"):
            if getattr(self, name) < (1 if name == "jobs" else 0):
                raise ValueError(f"SynthConfig.{name} must be non-negative (jobs >= 1)")
        for name in ("rate", "pitch", "noise_snr_db"):
            rng = getattr(self, name)
            if rng is not None and (len(rng) != 2 or rng[0] > rng[1]):
                raise ValueError(f"SynthConfig.{name} must be a (min, max) pair, got {rng}")
        if self.rate[0] <= 0:
            raise ValueError(f"SynthConfig.rate must be positive factors, got {self.rate}")
        if not 0.0 <= self.noise_fraction <= 1.0:
            raise ValueError("SynthConfig.noise_fraction must be in [0, 1]")

    def training_voices(self) -> tuple[str, ...]:
        """Voices of train, dev and test: every voice not of the held-out engine."""
        return tuple(v for v in self.voices if Voice.parse(v).engine != self.held_out_engine)

    def held_out_voices(self) -> tuple[str, ...]:
        """Voices of ``test_unseen_engine``."""
        return tuple(v for v in self.voices if Voice.parse(v).engine == self.held_out_engine)

    def fingerprint(self) -> dict:
        """Fields that change the output (``jobs`` does not)."""
        d = dataclasses.asdict(self)
        d.pop("jobs")
        # Corpora made before these fields existed stay valid.
        if not d["train_only_voices"]:
            d.pop("train_only_voices")
        if d["train_only_hours"] is None:
            d.pop("train_only_hours")
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
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None
