"""The extensions build with the ``ninja`` package's binary whatever PATH holds: two ninja
versions rebuild each other's builds from scratch."""

import os
import shutil
import stat
from pathlib import Path

import pytest
import torch.utils.cpp_extension

from asr.attention import _cpu, _ninja


@pytest.fixture
def other_ninja_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH whose first ninja is not the package's (as a system /usr/bin/ninja would be)."""
    fake = tmp_path / "ninja"
    fake.write_text("#!/bin/sh\necho 1.0.0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path), os.environ.get("PATH", "")]))
    return fake


def test_the_package_ninja_comes_first_and_path_is_restored(other_ninja_first: Path) -> None:
    bin_dir = _ninja.ninja_bin_dir()
    assert bin_dir is not None, "the ninja package is a dependency"
    before = os.environ["PATH"]
    assert shutil.which("ninja") == str(other_ninja_first)
    with _ninja.pinned_ninja():
        assert Path(shutil.which("ninja")).parent == Path(bin_dir)
    assert os.environ["PATH"] == before


def test_path_is_restored_after_an_error(other_ninja_first: Path) -> None:
    before = os.environ["PATH"]
    with pytest.raises(RuntimeError), _ninja.pinned_ninja():
        raise RuntimeError("build failed")
    assert os.environ["PATH"] == before


def test_without_the_package_path_is_left_alone(
    other_ninja_first: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ninja, "ninja_bin_dir", lambda: None)
    with _ninja.pinned_ninja():
        assert shutil.which("ninja") == str(other_ninja_first)


def test_the_cpu_kernel_builds_with_the_package_ninja(
    other_ninja_first: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []

    def fake_load(**kwargs: object) -> object:
        seen.append(shutil.which("ninja"))
        return object()

    monkeypatch.setattr(torch.utils.cpp_extension, "load", fake_load)
    _cpu._build(verbose=False)
    assert seen and Path(seen[0]).parent == Path(_ninja.ninja_bin_dir())
    assert shutil.which("ninja") == str(other_ninja_first)
