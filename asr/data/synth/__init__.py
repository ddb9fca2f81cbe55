"""Built-in synthetic speech corpus: a text-to-speech engine reads real English sentences in
several voices.

This is the first stage of the demo recipe and of the CI smoke test: it gives the toolkit a
corpus with no download. Sentences come from :mod:`asr.data.text_sources`; each utterance gets a
voice, speaking rate, pitch and optional additive noise, is resampled to 16 kHz and written as
FLAC under ``out_dir/audio/<split>/``, and listed in ``out_dir/<split>.jsonl`` manifests
(the :mod:`asr.data.manifest` format: ``id``, ``audio`` relative to the manifest folder,
``duration``, ``text``, ``speaker``).

Splits: ``train``; ``dev`` and ``test`` (training voices, sentences never in training);
``test_unseen`` (a voice held out of every other split, sentences never in training).

One module per job:

* :mod:`~asr.data.synth.config` -- :class:`SynthConfig`, the recipe's ``corpus:`` section;
* :mod:`~asr.data.synth.engine` -- the :class:`SpeechEngine` interface; :mod:`~asr.data.synth.espeak`
  implements it with espeak-ng (a new engine is one more such module);
* :mod:`~asr.data.synth.plan` -- sentences to splits, voice/rate/pitch/noise per utterance, all
  random draws seeded by (seed, split, utterance), so the corpus is the same for any ``--jobs``;
* :mod:`~asr.data.synth.noise` -- coloured noise at a given SNR;
* :mod:`~asr.data.synth.render` -- one utterance: engine, resampling, noise, FLAC;
* :mod:`~asr.data.synth.corpus` -- :func:`synthesize_corpus`: plan, render in workers, manifests;
* :mod:`~asr.data.synth.cli` -- ``asr-synth-corpus``.
"""

from asr.data.synth.cli import build_parser, config_from_args, main
from asr.data.synth.config import SPLITS, SynthConfig
from asr.data.synth.corpus import (
    CONFIG_FILE,
    LM_TEXT_FILE,
    SUMMARY_FILE,
    format_summary,
    manifest_paths,
    synthesize_corpus,
)
from asr.data.synth.engine import EngineError, SpeechEngine, make_engine
from asr.data.synth.espeak import EspeakEngine, EspeakError, check_voices, find_espeak
from asr.data.synth.noise import NOISE_KINDS, add_noise, coloured_noise
from asr.data.synth.plan import UttSpec, plan_corpus
from asr.data.synth.render import RESAMPLING, RenderContext, render_utterance, resample

__all__ = [
    "CONFIG_FILE",
    "LM_TEXT_FILE",
    "NOISE_KINDS",
    "RESAMPLING",
    "SPLITS",
    "SUMMARY_FILE",
    "EngineError",
    "EspeakEngine",
    "EspeakError",
    "RenderContext",
    "SpeechEngine",
    "SynthConfig",
    "UttSpec",
    "add_noise",
    "build_parser",
    "check_voices",
    "coloured_noise",
    "config_from_args",
    "find_espeak",
    "format_summary",
    "main",
    "make_engine",
    "manifest_paths",
    "plan_corpus",
    "render_utterance",
    "resample",
    "synthesize_corpus",
]
