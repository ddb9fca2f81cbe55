"""The CPU kernels ask for huge pages under their large outputs (fewer page faults, same results)."""

import resource
from pathlib import Path

import pytest
import torch

from asr.attention import _cpu
from asr.attention.fused import fused_self_attention

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def thp_mode() -> str:
    """The bracketed mode of ``always [madvise] never``, or "" without THP."""
    text = THP.read_text() if THP.exists() else ""
    return text.split("[")[1].split("]")[0] if "[" in text else ""


pytestmark = [
    pytest.mark.skipif(_cpu.load_cpu_kernel() is None, reason="needs the C++ kernel"),
    pytest.mark.skipif(
        thp_mode() != "madvise", reason="huge pages follow advice only in THP 'madvise' mode"
    ),
]


def faults_during(fn) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_causal_product_outputs_fault_per_huge_page():
    # 32 MiB per tensor: 8,192 faults on 4 KiB pages; with the advice ~16, plus up to 1,024 for
    # the unaligned 2 MiB at either end of the allocation.
    kernel = _cpu.load_cpu_kernel()
    q, k, v, g = (torch.randn(1, 8, 16384, 64) for _ in range(4))
    four_kib_faults = q.numel() * 4 // 4096
    kernel.backward(q, k, v, g)  # a first call starts the kernel's threads (their own faults)
    assert faults_during(lambda: kernel.forward(q, k, v)) < four_kib_faults / 4
    assert faults_during(lambda: kernel.backward(q, k, v, g)) < 3 * four_kib_faults / 4


def test_layer_gradients_fault_per_huge_page():
    # The packed q/k/v gradient is one (B, N, 3, H, D) buffer made in Python: the kernel advises it.
    qkv = torch.randn(1, 8192, 3, 8, 64, requires_grad=True)
    four_kib_faults = qkv.numel() * 4 // 4096

    def backward_faults() -> int:
        qkv.grad = None
        out = fused_self_attention(qkv, causal=False)
        grad = torch.ones_like(out)
        return faults_during(lambda: out.backward(grad))

    backward_faults()  # the first backward of a process starts autograd (its own faults)
    assert backward_faults() < four_kib_faults / 4
