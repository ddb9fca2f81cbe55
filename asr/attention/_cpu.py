"""Build and load the CPU causal-product kernel (``kernels/causal_product_cpu.cpp``).

Built once with ``torch.utils.cpp_extension.load`` into the default torch extensions directory
(``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``) and reused from there afterwards.
Without a C++ compiler we warn once and callers use the pure-PyTorch fallback.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

KERNEL_SOURCE = Path(__file__).resolve().parents[2] / "kernels" / "causal_product_cpu.cpp"
EXTENSION_NAME = "asr_causal_product_cpu"
DISABLE_ENV = "ASR_ATTENTION_DISABLE_CPU_KERNEL"

_lock = threading.Lock()
_state: dict[str, CpuKernel | None] = {}


@dataclass(frozen=True)
class CpuKernelConfig:
    """Chunk length of the C++ kernel: intra-chunk work grows with it, GEMM efficiency too.

    32 was fastest for D = M = 64 on a 2-core AMD EPYC (see tools/bench_attention.py --tune).
    """

    chunk: int = 32


CONFIG = CpuKernelConfig()


class CpuKernel:
    """The compiled extension behind the ``forward``/``backward`` interface of a backend."""

    name = "cpu"
    SUPPORTED_DTYPES = (torch.float32, torch.float64)  # halves are upcast by causal_product

    def __init__(self, extension: ModuleType, chunk: int | None = None) -> None:
        self.extension = extension
        self.chunk = chunk

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.extension.forward(q, k, v, self.chunk or CONFIG.chunk)

    def backward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, grad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        grad_q, grad_k, grad_v = self.extension.backward(q, k, v, grad, self.chunk or CONFIG.chunk)
        return grad_q, grad_k, grad_v


def load_cpu_kernel(verbose: bool = False) -> CpuKernel | None:
    """Return the compiled kernel module, or ``None`` (warned once) if it cannot be built."""
    if os.environ.get(DISABLE_ENV):
        return None
    with _lock:
        if "module" in _state:
            return _state["module"]
        module = None
        try:
            module = _build(verbose)
        except Exception as exc:  # noqa: BLE001 - no compiler, missing headers, ...
            warnings.warn(
                f"could not build the CPU causal_product kernel from {KERNEL_SOURCE} ({exc!s:.500}); "
                "falling back to the (slower) pure-PyTorch implementation. Install a C++ compiler "
                f"(g++) to get the fast kernel, or set {DISABLE_ENV}=1 to silence this.",
                RuntimeWarning,
                stacklevel=3,
            )
        _state["module"] = module
        return module


def _build(verbose: bool) -> CpuKernel:
    from torch.utils.cpp_extension import load

    if not KERNEL_SOURCE.is_file():
        raise FileNotFoundError(f"kernel source missing: {KERNEL_SOURCE}")
    # No -march=native: the build is cached and may be reused on another CPU; the heavy lifting
    # is BLAS (dispatched at run time by torch's MKL/oneDNN) anyway.
    module = load(
        name=EXTENSION_NAME,
        sources=[str(KERNEL_SOURCE)],
        extra_cflags=["-O3", "-fopenmp"],
        extra_ldflags=["-fopenmp"],
        verbose=verbose,
    )
    return CpuKernel(module)
