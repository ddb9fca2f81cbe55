"""Transcribe audio with a trained model package: ``asr-decode`` and :func:`asr.transcribe`.

The inference path, one module per step:

* :mod:`asr.inference.inputs` -- files, folders, JSONL manifests, ``wav.scp`` -> audio items;
* :mod:`asr.inference.segmenter` -- long recordings cut at their pauses into utterance-sized
  segments;
* :mod:`asr.inference.long_audio` -- exact piecewise filterbanks, chunked and stitched log-probs;
* :mod:`asr.inference.transcriber` -- :class:`DecodeOptions`, :func:`options_for_model` (a
  package's decoding bundle as defaults, :mod:`asr.bundle`), :class:`Transcriber` (batching,
  model, search), :func:`iter_transcribe` (results in input order), :func:`transcribe`;
* :mod:`asr.inference.cli` -- the ``asr-decode`` command line.

Output formats are read and written by :mod:`asr.transcripts` (shared with ``asr-score``).
"""

from asr.inference.cli import main
from asr.inference.inputs import AUDIO_EXTENSIONS, AudioItem, collect_inputs
from asr.inference.long_audio import featurize_in_pieces, log_probs_chunked
from asr.inference.transcriber import (
    DecodeOptions,
    DecodeStats,
    Transcriber,
    iter_transcribe,
    join_segments,
    load_model_package,
    options_for_model,
    transcribe,
)
from asr.transcripts import Result

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioItem",
    "DecodeOptions",
    "DecodeStats",
    "Result",
    "Transcriber",
    "collect_inputs",
    "featurize_in_pieces",
    "iter_transcribe",
    "join_segments",
    "load_model_package",
    "log_probs_chunked",
    "main",
    "options_for_model",
    "transcribe",
]
