"""Streaming recognition with a causal linear-attention encoder, in constant memory.

- :class:`Recognizer`: one stream (``accept_waveform``, ``finalize``, ``reset``).
- :class:`StreamBatch`: N streams whose encoder steps run as one batch.
- :class:`StreamOptions`, :class:`EndpointConfig`, :class:`StreamResult`.
- :class:`StreamingFbank`: incremental filterbanks equal to the whole-waveform ones.
- ``asr-decode --stream`` (:mod:`asr.stream.cli`): files, pipes and stdin, JSONL out.
"""

from asr.stream.features import StreamingFbank
from asr.stream.recognizer import Recognizer, StreamBatch, StreamOptions, StreamStats
from asr.stream.search import EndpointConfig, StreamResult

__all__ = [
    "EndpointConfig",
    "Recognizer",
    "StreamBatch",
    "StreamOptions",
    "StreamResult",
    "StreamStats",
    "StreamingFbank",
]
