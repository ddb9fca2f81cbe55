"""Shorten lossless audio, as embedded in LDC's NIST SPHERE files (WSJ ``.wv1``/``.wv2``).

:func:`decode` uses the compiled decoder (``shorten.cpp``, built on first use like the
attention kernels) and falls back to the plain-Python :mod:`asr.shorten.reference` where no C++
compiler is available; :func:`encode` writes streams (tests, the miniature WSJ corpus).
"""

from asr.shorten.encoder import EncoderOptions, encode
from asr.shorten.format import ShortenError, ShortenHeader
from asr.shorten.native import decode, native_decoder

__all__ = [
    "EncoderOptions",
    "ShortenError",
    "ShortenHeader",
    "decode",
    "encode",
    "native_decoder",
]
