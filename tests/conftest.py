"""Shared pytest set-up: small thread counts keep the suite fast and stable on 2 cores."""

import importlib.util
import os
import sys
import types
from pathlib import Path

# MKL's allocator cache (fast MM) keeps per-thread bookkeeping that a fork can copy mid-update:
# a DataLoader worker forked after other tests ran fbank (MKL FFT) in threads in this process once
# spun forever in mkl_serv_malloc. MKL reads the switch when torch loads it, so it goes first.
assert "torch" not in sys.modules, "tests/conftest.py must run before torch is imported"
os.environ.setdefault("MKL_DISABLE_FAST_MM", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.fixture(scope="session")
def load_tool():
    """Import a script of ``tools/`` (not a package) by name: ``load_tool("write_results")``;
    ``tools/`` is on the path while it loads, as when the script runs (it may import a sibling)."""

    def load(name: str) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(TOOLS))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(TOOLS))
        return module

    return load
