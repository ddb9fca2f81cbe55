"""Speech recognition built on linear attention (Katharopoulos et al., ICML 2020).

Data flows one way: audio -> features -> batches -> encoder -> CTC -> decode -> score.
"""

from typing import Any

__version__ = "0.1.0"


def transcribe(model: Any, paths: Any, **kwargs: Any) -> Any:
    """Transcribe audio files with a trained model package; see :func:`asr.inference.transcribe`."""
    from asr.inference import transcribe as _transcribe

    return _transcribe(model, paths, **kwargs)
