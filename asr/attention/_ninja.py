"""Build the extensions with one ninja, the ``ninja`` package's, whatever is first on PATH.

Two ninja versions record a build's command differently in ``.ninja_log``, so each rebuilds from
scratch what the other built. Without this, a user with a system ninja (``/usr/bin/ninja``) pays a
full kernel build at every switch between ``run.sh`` (the venv's ninja on PATH) and a bare
``.venv/bin/asr-decode`` (the system's).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def ninja_bin_dir() -> str | None:
    """The folder of the ``ninja`` package's binary, or ``None`` without that package."""
    try:
        import ninja
    except ImportError:
        return None
    return getattr(ninja, "BIN_DIR", None)


@contextmanager
def pinned_ninja() -> Iterator[None]:
    """Put the ``ninja`` package's binary first on PATH for the duration (torch's extension
    builder runs ``ninja`` from PATH and takes no path to it)."""
    bin_dir = ninja_bin_dir()
    old_path = os.environ.get("PATH")
    if bin_dir is None:
        yield
        return
    os.environ["PATH"] = os.pathsep.join([bin_dir, old_path] if old_path else [bin_dir])
    try:
        yield
    finally:
        if old_path is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old_path
