"""The recipes preload tcmalloc where it is installed, and recorded machine lines name the malloc."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def installed_tcmalloc() -> str | None:
    for ldconfig in ("ldconfig", "/sbin/ldconfig"):
        try:
            out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True).stdout
        except OSError:
            continue
        for line in out.splitlines():
            if "libtcmalloc_minimal.so.4 " in line:
                return line.split()[-1]
    return None


TCMALLOC = installed_tcmalloc()
needs_tcmalloc = pytest.mark.skipif(TCMALLOC is None, reason="libtcmalloc-minimal4 not installed")


def preload_after_common_sh(**env: str) -> str:
    """LD_PRELOAD as recipes/common.sh leaves it, sourced as a run.sh sources it."""
    script = 'set -euo pipefail; config=x; source recipes/common.sh; echo "${LD_PRELOAD:-}"'
    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASR_MALLOC")}
    out = subprocess.run(
        ["bash", "-c", script], cwd=REPO, env={**base, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@needs_tcmalloc
def test_common_sh_preloads_tcmalloc_once():
    assert preload_after_common_sh() == TCMALLOC
    # sourced again (a recipe calling another), or with a preload of the user's: kept, not doubled
    assert preload_after_common_sh(LD_PRELOAD=TCMALLOC) == TCMALLOC
    assert preload_after_common_sh(LD_PRELOAD="/x/libmine.so") == f"{TCMALLOC}:/x/libmine.so"


def test_asr_malloc_glibc_keeps_glibc():
    assert preload_after_common_sh(ASR_MALLOC="glibc") == ""


@needs_tcmalloc
def test_machine_line_names_the_malloc():
    code = "from asr.machine import machine_description; print(machine_description())"
    lines = {}
    for name, preload in (("glibc", None), ("tcmalloc", TCMALLOC)):
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        env.update({"LD_PRELOAD": preload} if preload else {})
        lines[name] = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
    assert lines["glibc"].endswith(", glibc malloc")
    assert lines["tcmalloc"].endswith(", tcmalloc")
