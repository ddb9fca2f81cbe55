"""Build and load the CPU attention extension (``asr/attention/csrc/attention_cpu.cpp``).

It holds the causal product and the fused linear-attention layer. The C++ sources ship inside the
package (``csrc/``), so an editable install, ``pip install .`` and a wheel all build it the same
way: once, with ``torch.utils.cpp_extension.load``, into the torch extensions directory
(``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``), reused from there afterwards.
If it cannot be built, one warning says why and how much slower the pure-PyTorch fallback is.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from asr.attention._ninja import pinned_ninja

CSRC_DIR = Path(__file__).resolve().parent / "csrc"
KERNEL_SOURCE = CSRC_DIR / "attention_cpu.cpp"
KERNEL_HEADERS = (CSRC_DIR / "cpu_primitives.h", CSRC_DIR / "linear_attention_cpu.h")
EXTENSION_NAME = "asr_attention_cpu"
DISABLE_ENV = "ASR_ATTENTION_DISABLE_CPU_KERNEL"
# How much slower the pure-PyTorch fallback is, as measured in BENCHMARKS.md ("Attention"); the
# test suite checks that BENCHMARKS.md states the same figure.
FALLBACK_SLOWDOWN = "about 2.3x slower for the causal product at N=4096"

_lock = threading.Lock()
_state: dict[str, CpuKernel | None] = {}


@dataclass(frozen=True)
class CpuKernelConfig:
    """Block sizes of the C++ kernels, the fastest of a sweep on a 2-core AMD EPYC
    (tools/bench_attention.py --tune-chunks times the causal product's).

    :param chunk: time steps per chunk of the causal product: intra-chunk work grows with it,
        GEMM efficiency too.
    :param layer_chunk: the same for the fused causal linear-attention layer.
    :param layer_block: rows per block of the fused non-causal layer (no intra-block work, so
        larger only helps until the block leaves the cache).
    """

    chunk: int = 16
    layer_chunk: int = 16
    layer_block: int = 128


CONFIG = CpuKernelConfig()


class CpuKernel:
    """The compiled extension behind the ``forward``/``backward`` interface of a backend."""

    name = "cpu"
    SUPPORTED_DTYPES = (torch.float32, torch.float64)  # halves are upcast by causal_product
    FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

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

    @staticmethod
    def _layer_chunk(causal: bool) -> int:
        return CONFIG.layer_chunk if causal else CONFIG.layer_block

    def layer_forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        key_padding_mask: torch.Tensor | None,
        causal: bool,
        eps: float,
    ) -> list[torch.Tensor]:
        """Fused elu+1 linear attention on ``(B, N, H, D)`` inputs -> ``[out, den, kv, z]``."""
        return self.extension.linear_attention_forward(
            q, k, v, key_padding_mask, causal, eps, self._layer_chunk(causal)
        )

    def layer_backward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        key_padding_mask: torch.Tensor | None,
        saved: tuple[torch.Tensor, ...],
        grad: torch.Tensor,
        causal: bool,
        into: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """Gradients ``[grad_q, grad_k, grad_v]`` given ``saved = (out, den, kv, z)``, written
        into ``into`` (tensors of q, k, v's shapes, any row strides) when given."""
        out, den, kv, z = saved
        return self.extension.linear_attention_backward(
            q,
            k,
            v,
            key_padding_mask,
            out,
            den,
            kv,
            z,
            grad,
            causal,
            self._layer_chunk(causal),
            *(into or (None, None, None)),
        )


def fallback_warning(reason: str) -> str:
    """The one warning shown when the compiled kernels cannot be used."""
    return (
        f"asr.attention: the C++ attention kernels could not be built ({reason}); using the "
        f"pure-PyTorch fallback, which gives the same results but is {FALLBACK_SLOWDOWN} "
        "(see BENCHMARKS.md). Install a C++ compiler (g++) and ninja to get the kernels, or set "
        f"{DISABLE_ENV}=1 to choose the fallback without this warning."
    )


def load_cpu_kernel(verbose: bool = False) -> CpuKernel | None:
    """Return the compiled kernels, or ``None`` (warned once) if they cannot be built."""
    if os.environ.get(DISABLE_ENV):
        return None
    with _lock:
        if "module" in _state:
            return _state["module"]
        module = None
        try:
            module = _build(verbose)
        except Exception as exc:  # noqa: BLE001 - no compiler, missing headers, ...
            reason = str(exc)  # a compiler's error is at the end of the build log
            reason = reason if len(reason) <= 600 else "..." + reason[-600:]
            warnings.warn(fallback_warning(reason), RuntimeWarning, stacklevel=3)
        _state["module"] = module
        return module


def sources_digest() -> str:
    """Hash of every C++ file of the extension.

    torch rebuilds a cached extension when its sources or flags change but not its headers;
    passing this digest as a flag makes a header edit rebuild too.
    """
    digest = hashlib.sha256()
    for path in (KERNEL_SOURCE, *KERNEL_HEADERS):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _build(verbose: bool) -> CpuKernel:
    from torch.utils.cpp_extension import load

    for path in (KERNEL_SOURCE, *KERNEL_HEADERS):
        if not path.is_file():
            raise FileNotFoundError(f"kernel source missing: {path}")
    # No -march=native: the build is cached and may be reused on another CPU. The GEMMs are
    # torch's BLAS (dispatched at run time); the feature map has per-ISA clones in the source.
    with pinned_ninja():
        module = load(
            name=EXTENSION_NAME,
            sources=[str(KERNEL_SOURCE)],
            extra_cflags=["-O3", "-fopenmp", f"-DASR_SOURCES_DIGEST={sources_digest()}"],
            extra_ldflags=["-fopenmp"],
            extra_include_paths=[str(CSRC_DIR)],
            verbose=verbose,
        )
    return CpuKernel(module)
