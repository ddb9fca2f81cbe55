"""Build, load and call the compiled shorten decoder (``shorten.cpp`` beside this file).

Built once with ``torch.utils.cpp_extension.load`` (the way :mod:`asr.attention` builds its
CPU kernel) into ``$TORCH_EXTENSIONS_DIR``, then reused. Without a C++ compiler, or with
``ASR_SHORTEN_DISABLE_NATIVE=1``, :func:`decode` warns once and uses the plain-Python
reference decoder, which gives the same samples about 100x slower.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np

from asr.shorten import reference
from asr.shorten.format import ShortenError, ShortenHeader

SOURCE = Path(__file__).resolve().with_name("shorten.cpp")
EXTENSION_NAME = "asr_shorten"
DISABLE_ENV = "ASR_SHORTEN_DISABLE_NATIVE"

_lock = threading.Lock()
_state: dict[str, ModuleType | None] = {}


def native_decoder(verbose: bool = False) -> ModuleType | None:
    """The compiled extension, or ``None`` (warned once) if it cannot be built."""
    if os.environ.get(DISABLE_ENV):
        return None
    with _lock:
        if "module" not in _state:
            module = None
            try:
                from torch.utils.cpp_extension import load

                module = load(
                    name=EXTENSION_NAME,
                    sources=[str(SOURCE)],
                    extra_cflags=["-O3", "-std=c++17"],
                    verbose=verbose,
                )
            except Exception as exc:  # noqa: BLE001 - no compiler, missing headers, ...
                warnings.warn(
                    f"could not build the shorten decoder from {SOURCE} ({exc!s:.300}); using "
                    "the plain-Python decoder (same samples, ~100x slower). Install g++ for "
                    f"the fast one, or set {DISABLE_ENV}=1 to silence this.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            _state["module"] = module
        return _state["module"]


def decode(data: bytes, expected_samples: int = 0) -> tuple[np.ndarray, ShortenHeader]:
    """Decode a shorten stream: ``(int32 samples (frames, channels), header)``.

    :param expected_samples: frames times channels the caller expects (sizes the buffer).
    :raises ShortenError: not shorten, corrupt, or truncated inside a block.
    """
    module = native_decoder()
    if module is None:
        return reference.decode(bytes(data))
    try:
        samples, header = module.decode(bytes(data), int(expected_samples))
    except ValueError as e:
        raise ShortenError(str(e)) from None
    return samples, ShortenHeader(*header)
