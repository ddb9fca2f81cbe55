"""Built-in synthetic speech corpus: several text-to-speech engines read real English
sentences in many voices.

This is the first stage of the demo recipe and of the CI smoke test: it gives the toolkit a
corpus with no download. Sentences come from :mod:`asr.data.text_sources`; each utterance gets a
voice (engine and voice), speaking rate, pitch and optional additive noise, is resampled to
16 kHz and written as FLAC under ``out_dir/audio/<split>/``, and listed in
``out_dir/<split>.jsonl`` manifests (the :mod:`asr.data.manifest` format: ``id``, ``audio``
relative to the manifest folder, ``duration``, ``text``, ``speaker`` = the voice).

Splits: ``train``; ``dev`` and ``test`` (training voices, sentences never in training);
``test_unseen`` (a voice of a training engine held out of every other split);
``test_unseen_engine`` (the voices of an engine family training never hears); train-only
voices add speakers to training alone. Training audio
can get reverberation, noise, babble, a telephone channel and gain (:mod:`asr.data.augment`).

One module per job:

* :mod:`~asr.data.synth.config` -- :class:`SynthConfig`, the recipe's ``corpus:`` section;
* :mod:`~asr.data.synth.engine` -- :class:`Voice`, the :class:`SpeechEngine` interface and
  :func:`find_engines` (a missing engine is reported once and left out); one module per
  engine: :mod:`~asr.data.synth.espeak`, :mod:`~asr.data.synth.flite`,
  :mod:`~asr.data.synth.festival`, whose voices of other languages speak English through
  :mod:`~asr.data.synth.phonemap`;
* :mod:`~asr.data.synth.plan` -- sentences to splits, voice/rate/pitch/noise per utterance, all
  random draws seeded by (seed, split, utterance), so the corpus is the same for any ``--jobs``;
* :mod:`~asr.data.synth.render` -- batches of one voice: engine, resampling, noise, FLAC;
* :mod:`~asr.data.synth.corpus` -- :func:`synthesize_corpus`: plan, render in workers,
  augment the training audio, manifests;
* :mod:`~asr.data.synth.cli` -- ``asr-synth-corpus``.
"""

from asr.data.synth.cli import build_parser, config_from_args, main
from asr.data.synth.config import EVAL_SPLITS, SPLITS, SynthConfig
from asr.data.synth.corpus import (
    CLEAN_TRAIN,
    CONFIG_FILE,
    LM_TEXT_FILE,
    SUMMARY_FILE,
    format_summary,
    manifest_paths,
    synthesize_corpus,
)
from asr.data.synth.engine import (
    EngineError,
    EngineMissing,
    SpeechEngine,
    SynthRequest,
    Voice,
    find_engines,
)
from asr.data.synth.espeak import EspeakEngine, EspeakError, check_voices, find_espeak
from asr.data.synth.festival import FestivalEngine
from asr.data.synth.flite import FliteEngine
from asr.data.synth.plan import UttSpec, plan_corpus, split_voices
from asr.data.synth.render import RESAMPLING, RenderContext, render_utterance, resample

__all__ = [
    "CLEAN_TRAIN",
    "CONFIG_FILE",
    "EVAL_SPLITS",
    "LM_TEXT_FILE",
    "RESAMPLING",
    "SPLITS",
    "SUMMARY_FILE",
    "EngineError",
    "EngineMissing",
    "EspeakEngine",
    "EspeakError",
    "FestivalEngine",
    "FliteEngine",
    "RenderContext",
    "SpeechEngine",
    "SynthConfig",
    "SynthRequest",
    "UttSpec",
    "Voice",
    "build_parser",
    "check_voices",
    "config_from_args",
    "find_engines",
    "find_espeak",
    "format_summary",
    "main",
    "manifest_paths",
    "plan_corpus",
    "render_utterance",
    "resample",
    "split_voices",
    "synthesize_corpus",
]
