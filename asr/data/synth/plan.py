"""Planning the corpus: which sentence each split gets, and each utterance's voice, rate,
pitch and noise.

Everything random is drawn here, in one process, from RNGs seeded by ``(seed, split, purpose,
utterance index)``; workers only execute the plan, so the corpus is identical for any number
of jobs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from asr.data.augment import NOISE_KINDS
from asr.data.synth.config import EVAL_SPLITS, SPLITS, SynthConfig
from asr.data.synth.engine import SynthRequest, Voice
from asr.data.text_sources import Sentence


@dataclass(frozen=True)
class UttSpec:
    """Everything needed to render one utterance (planned up front, executed by a worker)."""

    id: str
    split: str
    index: int
    spoken: str
    text: str
    voice: Voice
    rate: float
    pitch: float
    snr_db: float | None
    noise_kind: str
    noise_seed: tuple[int, ...]

    @property
    def request(self) -> SynthRequest:
        """What the engine is asked to say."""
        return SynthRequest(self.spoken, self.voice.name, self.rate, self.pitch)


# Purposes of the RNG streams; every stream is seeded by [seed, split stream, purpose, index],
# all of the same length, so no two streams share a seed.
_UTTERANCE, _SENTENCE_ORDER, _NOISE = 0, 1, 2
# Split streams: test_unseen_engine came after the sentence-to-split assignment took 4, so the
# corpus of a seed keeps the dev/test/test_unseen sentences it had before that split existed.
# "train_only" is the stream of the training utterances that SynthConfig.train_only_hours adds.
_SPLIT_STREAM = {
    "train": 0, "dev": 1, "test": 2, "test_unseen": 3, "test_unseen_engine": 5, "train_only": 6,
}  # fmt: skip
_CORPUS_SPLIT = 4  # pseudo-split stream of the sentence-to-split assignment


def _rng_seed(seed: int, split: str, purpose: int, index: int = 0) -> tuple[int, int, int, int]:
    return (seed, _SPLIT_STREAM[split], purpose, index)


def _split_rng(seed: int, split: str, purpose: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(_rng_seed(seed, split, purpose, index))


def estimate_seconds(sentence: Sentence, rate: float, cfg: SynthConfig) -> float:
    """Expected duration of ``sentence`` spoken at ``rate`` times the voice's tempo."""
    letters = len(sentence.text.replace(" ", ""))
    return cfg.est_letter_s * letters / rate + cfg.est_silence_s


def _target(cfg: SynthConfig, split: str) -> tuple[int | None, float | None]:
    hours = getattr(cfg, f"{split}_hours")
    return (None, hours) if hours is not None else (getattr(cfg, f"num_{split}"), None)


def split_voices(cfg: SynthConfig) -> dict[str, tuple[Voice, ...]]:
    """The voices each split is spoken in (train, dev and test share theirs; train also has
    the train-only voices, unless ``train_only_hours`` gives them hours of their own)."""
    training = tuple(Voice.parse(v) for v in cfg.training_voices())
    shared = () if cfg.train_only_hours is not None else cfg.train_only_voices
    return {
        "train": training + tuple(Voice.parse(v) for v in shared),
        "dev": training,
        "test": training,
        "test_unseen": (Voice.parse(cfg.unseen_voice),),
        "test_unseen_engine": tuple(Voice.parse(v) for v in cfg.held_out_voices()),
    }


def _utt_spec(
    cfg: SynthConfig,
    split: str,
    i: int,
    sentence: Sentence,
    voices: Sequence[Voice],
    stream: str,
    first_index: int,
) -> UttSpec:
    """Voice, rate, pitch and noise of utterance ``i`` come only from (seed, stream, i); it is
    utterance ``first_index + i`` of ``split``."""
    rng = _split_rng(cfg.seed, stream, _UTTERANCE, i)
    index = first_index + i
    voice = voices[int(rng.integers(len(voices)))]
    rate = round(float(rng.uniform(*cfg.rate)), 3)
    pitch = round(float(rng.uniform(*cfg.pitch)), 2)
    noisy = cfg.noise_snr_db is not None and rng.random() < cfg.noise_fraction
    snr = float(rng.uniform(*cfg.noise_snr_db)) if noisy else None
    kind = NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))]
    return UttSpec(
        id=f"{voice.slug}_{split}_{index:06d}",
        split=split,
        index=index,
        spoken=sentence.spoken,
        text=sentence.text,
        voice=voice,
        rate=rate,
        pitch=pitch,
        snr_db=snr,
        noise_kind=kind,
        noise_seed=_rng_seed(cfg.seed, stream, _NOISE, i),
    )


def _sentence_stream(
    sentences: Sequence[Sentence], cycle: bool, rng: np.random.Generator, split: str
) -> Iterator[Sentence]:
    """Eval splits read their pool once, in order; train reshuffles it on every pass."""
    if not sentences:
        raise ValueError(f"no sentences left for split {split!r}; lower the dev/test sizes")
    while True:
        order = rng.permutation(len(sentences)) if cycle else range(len(sentences))
        yield from (sentences[i] for i in order)
        if not cycle:
            raise ValueError(
                f"split {split!r} needs more than its {len(sentences)} sentences; "
                "lower its size or raise max_eval_sentence_fraction"
            )


def _take(
    cfg: SynthConfig,
    split: str,
    sentences: Sequence[Sentence],
    cycle: bool,
    voices: Sequence[Voice],
    *,
    stream: str | None = None,
    target: tuple[int | None, float | None] | None = None,
    first_index: int = 0,
) -> list[UttSpec]:
    """Plan one split's utterances from its sentence pool until the count or hours is met.

    ``stream`` (default: the split) seeds the draws; ``target`` replaces the split's size;
    the utterances are numbered from ``first_index``.
    """
    stream = stream or split
    count, hours = target or _target(cfg, split)
    if count == 0 or hours == 0 or not voices:
        return []
    order_rng = _split_rng(cfg.seed, stream, _SENTENCE_ORDER)
    sentence_stream = _sentence_stream(sentences, cycle, order_rng, split)
    specs: list[UttSpec] = []
    seconds = 0.0
    while (count is None or len(specs) < count) and (hours is None or seconds < hours * 3600):
        sentence = next(sentence_stream)
        spec = _utt_spec(cfg, split, len(specs), sentence, voices, stream, first_index)
        seconds += estimate_seconds(sentence, spec.rate, cfg)
        specs.append(spec)
    return specs


def plan_corpus(
    cfg: SynthConfig,
    sentences: Sequence[Sentence],
    available: Sequence[Voice] | None = None,
) -> dict[str, list[UttSpec]]:
    """Assign sentences to splits (eval sentences never reach train) and plan every utterance.

    ``available``: the voices that can be spoken (default: all in the config); a split left
    with none is planned empty.
    """
    order = np.random.default_rng([cfg.seed, _CORPUS_SPLIT, 0, 0]).permutation(len(sentences))
    shuffled = [sentences[i] for i in order]
    max_eval = int(cfg.max_eval_sentence_fraction * len(shuffled))

    allowed = None if available is None else set(available)

    def spoken(vs: Sequence[Voice]) -> tuple[Voice, ...]:
        return tuple(v for v in vs if allowed is None or v in allowed)

    voices = {s: spoken(vs) for s, vs in split_voices(cfg).items()}
    plans: dict[str, list[UttSpec]] = {}
    start = 0
    for split in EVAL_SPLITS:
        # Each eval utterance gets its own sentence: take from a window of the remaining pool.
        pool = shuffled[start:max_eval]
        plans[split] = _take(cfg, split, pool, cycle=False, voices=voices[split])
        start += len(plans[split])
    train_pool = shuffled[start:]
    plans["train"] = _take(cfg, "train", train_pool, cycle=True, voices=voices["train"])
    if cfg.train_only_hours is not None:
        # On top of the training voices' hours, in an order of their own: those stay as they were.
        extra = spoken([Voice.parse(v) for v in cfg.train_only_voices])
        plans["train"] += _take(
            cfg, "train", train_pool, cycle=True, voices=extra, stream="train_only",
            target=(None, cfg.train_only_hours), first_index=len(plans["train"]),
        )  # fmt: skip
    return {s: plans[s] for s in SPLITS}
