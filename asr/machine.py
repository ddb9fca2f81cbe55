"""Describe the machine a benchmark or recipe ran on, so every recorded number says where it came from."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo with its family and model numbers, which tell
    apart generations that a virtual machine names alike ("AMD EPYC"); falls back to the
    architecture."""
    try:
        fields: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip():
                break  # the first processor's block is enough
            fields.setdefault(key.strip(), value.strip())
        if "model name" in fields:
            numbers = f" (family {fields.get('cpu family')}, model {fields.get('model')})"
            return fields["model name"] + (numbers if "cpu family" in fields else "")
    except OSError:
        pass
    return platform.processor() or platform.machine()


def malloc_name() -> str:
    """The allocator behind this process's malloc: a preloaded tcmalloc (recipes/common.sh
    preloads it) or jemalloc, else glibc's. It changes CPU step times (BENCHMARKS.md), so a
    recorded time names it."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "unknown malloc"
    for name in ("tcmalloc", "jemalloc"):
        if f"lib{name}" in maps:
            return name
    return "glibc malloc"


def machine_description() -> str:
    """CPU, cores, memory, GPU, torch version and malloc in one line."""
    import torch

    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{cpu_model()}, {os.cpu_count()} cores{mem}{gpu}; torch {torch.__version__}, {malloc_name()}"


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(accelerator: str | None = "cpu") -> bool:
    """Whether ``accelerator`` (a Lightning name: cpu, gpu, cuda, auto) does bf16 arithmetic in
    hardware. Only then is bf16 autocast faster than fp32: a CPU without AVX512-BF16 or AMX
    emulates it, an NVIDIA GPU before Ampere has no bf16 tensor cores."""
    import torch

    if accelerator in ("gpu", "cuda", "auto", None) and torch.cuda.is_available():
        return torch.cuda.get_device_capability()[0] >= 8
    if accelerator in ("gpu", "cuda"):
        return False
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
