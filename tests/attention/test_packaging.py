"""The kernel sources ship inside the package: a wheel carries them and an install builds them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from asr.attention import _cpu, _cuda
from asr.attention.kernel import CUDA_FALLBACK_SLOWDOWN

REPO = Path(__file__).resolve().parents[2]
KERNEL_FILES = sorted(
    {p.name for p in (_cpu.KERNEL_SOURCE, *_cpu.KERNEL_HEADERS, *_cuda.SOURCES, *_cuda.HEADERS)}
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout (the build leaves no files in the checkout)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO / "asr", src / "asr", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    dist = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(src)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (found,) = dist.glob("linear_asr-*.whl")
    return found


def test_every_kernel_source_lives_in_the_package():
    assert _cpu.CSRC_DIR == _cuda.KERNEL_DIR == REPO / "asr" / "attention" / "csrc"
    on_disk = {p.name for p in _cpu.CSRC_DIR.iterdir() if p.suffix in {".cpp", ".h", ".cu", ".cuh"}}
    assert on_disk == set(KERNEL_FILES), "a kernel file the loaders do not know (or vice versa)"


def test_wheel_contains_kernel_sources(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in KERNEL_FILES if f"asr/attention/csrc/{f}" not in names]
    assert not missing, f"{wheel.name} lacks {missing}"


def test_installed_wheel_finds_its_sources(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    code = (
        "from asr.attention import _cpu, _cuda\n"
        "paths = [_cpu.KERNEL_SOURCE, *_cpu.KERNEL_HEADERS, *_cuda.SOURCES, *_cuda.HEADERS]\n"
        "assert all(p.is_file() for p in paths), paths\n"
        "print(_cpu.KERNEL_SOURCE)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().startswith(str(site)), "imported asr from outside the install"


@pytest.mark.slow
def test_installed_wheel_builds_and_uses_the_kernel(wheel, tmp_path):
    """A plain install compiles the kernels on first use, as the editable install does."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    code = (
        "import warnings, torch\n"
        "warnings.simplefilter('error')\n"  # a fallback warning fails the test
        "from asr.attention import _cpu, linear_attention\n"
        "assert _cpu.load_cpu_kernel() is not None\n"
        "q = torch.randn(1, 2, 50, 8)\n"
        "linear_attention(q, q, q, causal=True).sum()\n"
        "print(_cpu.KERNEL_SOURCE)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().startswith(str(site))
    assert list((tmp_path / "ext").rglob("*.so")), "nothing was built"


def test_fallback_warning_states_the_measured_slowdown():
    text = _cpu.fallback_warning("no compiler")
    assert "no compiler" in text and _cpu.FALLBACK_SLOWDOWN in text
    benchmarks = (REPO / "BENCHMARKS.md").read_text()
    for factor in (_cpu.FALLBACK_SLOWDOWN, CUDA_FALLBACK_SLOWDOWN):
        assert factor in benchmarks, (
            f"BENCHMARKS.md must state the factor a warning quotes: {factor}"
        )
