"""Build and call the CUDA kernels (``asr/attention/csrc/*cuda*``): causal product, fused layer.

The backend behind :func:`asr.attention.causal_product` for CUDA tensors:
``forward(q, k, v)`` and ``backward(q, k, v, grad_out)`` validate their arguments (errors name
the argument), make inputs contiguous and call the extension, which is compiled with nvcc on
first use by ``torch.utils.cpp_extension.load`` and cached in the torch extensions directory
(``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``).

Inputs: float32, float16 or bfloat16 (float32 accumulation, output in the input dtype);
any N >= 1; D <= MAX_D and M <= MAX_M.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import torch

from asr.attention._ninja import pinned_ninja

KERNEL_DIR = Path(__file__).resolve().parent / "csrc"
SOURCES = (
    KERNEL_DIR / "attention_cuda_binding.cpp",
    KERNEL_DIR / "causal_product_cuda.cu",
    KERNEL_DIR / "linear_attention_cuda.cu",
)
HEADERS = (
    KERNEL_DIR / "causal_product_cuda_kernels.cuh",
    KERNEL_DIR / "linear_attention_cuda_kernels.cuh",
)
EXTENSION_NAME = "asr_attention_cuda"
# Used when TORCH_CUDA_ARCH_LIST is unset and no GPU is visible to pick one (H100/H200).
DEFAULT_ARCH_LIST = "9.0"
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
FUSED_DTYPES = SUPPORTED_DTYPES  # read by asr.attention.fused: float64 takes the composite path

# The kernel tiles D and M, so these are not hard limits of the algorithm; they bound the float32
# prefix-state buffer (B*H*ceil(N/64)*D*M) and are the largest sizes the design was checked for.
MAX_D = 1024
MAX_M = 1024
name = "cuda"  # read by asr.attention.causal_product in its error messages

_lock = threading.Lock()
_cache: dict[str, ModuleType] = {}
_available: dict[str, bool] = {}


class CudaBuildError(RuntimeError):
    """The extension could not be compiled (no CUDA toolkit, compiler error, ...)."""


def toolkit_candidates() -> list[Path]:
    """Where to look for the toolkit, best first: $CUDA_HOME, $CUDA_PATH, /usr/local, nvcc's root."""
    candidates = [
        Path(os.environ[var]) for var in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(var)
    ]
    candidates.append(Path("/usr/local/cuda"))
    candidates.extend(sorted(Path("/usr/local").glob("cuda-*"), reverse=True))
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(Path(nvcc).resolve().parent.parent)
    return candidates


def find_cuda_home(candidates: Iterable[Path] | None = None) -> Path:
    """The first CUDA toolkit root with ``bin/nvcc`` and ``lib64`` among ``candidates``.

    ``nvcc`` on PATH may be a wrapper script; torch then guesses a wrong root and linking fails,
    so :func:`toolkit_candidates` tries ``$CUDA_HOME``/``$CUDA_PATH`` and the usual places first.
    """
    searched = list(toolkit_candidates() if candidates is None else candidates)
    for home in searched:
        if (home / "bin" / "nvcc").is_file() and (home / "lib64").is_dir():
            return home
    raise CudaBuildError(
        f"no CUDA toolkit found in {[str(p) for p in searched]}; install the CUDA toolkit "
        f"matching torch.version.cuda={torch.version.cuda} and set CUDA_HOME to its root "
        "(the folder holding bin/nvcc and lib64)"
    )


def _compile(verbose: bool, build_directory: str | None, ext_name: str) -> ModuleType:
    from torch.utils import cpp_extension

    for path in SOURCES + HEADERS:
        if not path.is_file():
            raise CudaBuildError(f"kernel source missing: {path}")
    home = find_cuda_home()
    # torch resolved CUDA_HOME when it was imported; point it at the real toolkit root.
    cpp_extension.CUDA_HOME = str(home)
    arch_set = bool(os.environ.get("TORCH_CUDA_ARCH_LIST"))
    if not arch_set and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCH_LIST
    # torch rebuilds a cached extension when sources or flags change, not headers: the digest
    # of every file in the flags makes a header edit rebuild too.
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES + HEADERS)).hexdigest()[:16]
    try:
        with pinned_ninja():
            return cpp_extension.load(
                name=ext_name,
                sources=[str(p) for p in SOURCES],
                extra_cflags=["-O3", f"-DASR_SOURCES_DIGEST={digest}"],
                extra_cuda_cflags=["-O3", "-lineinfo", f"-DASR_SOURCES_DIGEST={digest}"],
                extra_include_paths=[str(KERNEL_DIR)],
                build_directory=build_directory,
                verbose=verbose,
            )
    except Exception as exc:
        message = str(exc)  # the compiler's error is at the end of ninja's log
        raise CudaBuildError(
            f"building the CUDA attention kernels from {KERNEL_DIR} with CUDA_HOME={home} "
            f"failed: ...{message[-3000:]}"
        ) from exc
    finally:
        if not arch_set:
            os.environ.pop("TORCH_CUDA_ARCH_LIST", None)


def build_extension(
    verbose: bool = False, *, build_directory: str | Path | None = None
) -> ModuleType:
    """Compile (once per process) and return the extension module.

    :param verbose: print the compiler commands.
    :param build_directory: build there (not cached in this process, separate module name)
        instead of the torch extensions cache; the compile test passes an empty folder.
    :raises CudaBuildError: no CUDA toolkit, or the compiler failed (message says which).
    """
    if build_directory is not None:
        return _compile(verbose, str(build_directory), EXTENSION_NAME + "_fresh")
    with _lock:
        if EXTENSION_NAME not in _cache:
            _cache[EXTENSION_NAME] = _compile(verbose, None, EXTENSION_NAME)
        return _cache[EXTENSION_NAME]


def is_available() -> bool:
    """True when a CUDA device is present and the extension builds (the result is cached)."""
    if "ok" not in _available:
        ok = torch.cuda.is_available()
        if ok:
            try:
                build_extension()
            except CudaBuildError:
                ok = False
        _available["ok"] = ok
    return _available["ok"]


def _check(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, grad_out: torch.Tensor | None = None
) -> None:
    named = {"q": q, "k": k, "v": v}
    if grad_out is not None:
        named["grad_out"] = grad_out
    for arg, x in named.items():
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{arg} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            raise ValueError(
                f"{arg} must be 4-D (B, H, N, {'D' if arg in 'qk' else 'M'}), "
                f"got shape {tuple(x.shape)}"
            )
        if x.dtype not in SUPPORTED_DTYPES:
            raise TypeError(
                f"{arg} has dtype {x.dtype}; the CUDA kernel supports float32, float16 and "
                "bfloat16 (use backend='torch' for float64)"
            )
        if x.dtype != q.dtype:
            raise TypeError(f"{arg} has dtype {x.dtype} but q has {q.dtype}; cast to one dtype")
    b, h, n, d = q.shape
    if k.shape != q.shape:
        raise ValueError(
            f"k has shape {tuple(k.shape)} but q has {tuple(q.shape)}; they must match"
        )
    m = v.shape[-1]
    if tuple(v.shape[:3]) != (b, h, n):
        raise ValueError(
            f"v has shape {tuple(v.shape)}; expected (B, H, N, M) = ({b}, {h}, {n}, M)"
        )
    if grad_out is not None and tuple(grad_out.shape) != (b, h, n, m):
        raise ValueError(
            f"grad_out has shape {tuple(grad_out.shape)}; expected the output shape {(b, h, n, m)}"
        )
    if min(b, h, n, d, m) == 0:
        raise ValueError(f"empty input: q {tuple(q.shape)}, v {tuple(v.shape)}; sizes must be >= 1")
    if d > MAX_D:
        raise ValueError(f"q, k have D={d} > MAX_D={MAX_D}; use backend='torch' or smaller heads")
    if m > MAX_M:
        raise ValueError(f"v has M={m} > MAX_M={MAX_M}; use backend='torch' or smaller heads")
    for arg, x in named.items():
        if x.device != q.device:
            raise ValueError(f"{arg} is on {x.device} but q is on {q.device}; use one device")
    if q.device.type != "cuda":
        raise ValueError(f"q, k, v must be CUDA tensors, got device {q.device}")


def forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``out[b, h, i] = sum_{j <= i} (q_i . k_j) v_j``, shape ``(B, H, N, M)``, dtype of q."""
    _check(q, k, v)
    return build_extension().forward(q.contiguous(), k.contiguous(), v.contiguous())


def backward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, grad_out: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients ``(grad_q, grad_k, grad_v)`` of :func:`forward` given ``grad_out``."""
    _check(q, k, v, grad_out)
    grad_q, grad_k, grad_v = build_extension().backward(
        q.contiguous(), k.contiguous(), v.contiguous(), grad_out.contiguous()
    )
    return grad_q, grad_k, grad_v


def layer_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_padding_mask: torch.Tensor | None,
    causal: bool,
    eps: float,
) -> list[torch.Tensor]:
    """Fused elu+1 linear attention on ``(B, N, H, D)`` CUDA inputs -> ``[out, den, kv, z]``.

    One pass over the keys (per-chunk states with phi and the mask applied on load), a scan
    (causal) or sum (non-causal) over chunks, one pass over the queries that divides by the
    normaliser before storing (``csrc/linear_attention_cuda_kernels.cuh``).
    """
    for arg, x in (("q", q), ("k", k), ("v", v)):
        if x.device.type != "cuda":
            raise ValueError(f"{arg} must be a CUDA tensor, got device {x.device}")
        if x.dtype not in FUSED_DTYPES:
            raise TypeError(f"{arg} has dtype {x.dtype}; the CUDA kernels take {FUSED_DTYPES}")
    return build_extension().layer_forward(q, k, v, key_padding_mask, causal, eps)


def layer_backward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_padding_mask: torch.Tensor | None,
    saved: tuple[torch.Tensor, ...],
    grad: torch.Tensor,
    causal: bool,
    into: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Gradients ``[grad_q, grad_k, grad_v]`` of :func:`layer_forward` (``saved = out, den, kv, z``),
    copied into ``into`` when given.

    With gn = g / den and gd = -(g . out) / den: non-causal, four cuBLAS products with the saved
    state; causal, three causal products (the ``product`` primitive) over [gn, gd] and [v, 1],
    whose last column carries the normaliser. phi is recomputed; float32 work tensors live only
    during this call.
    """
    out, den, kv, z = saved
    qf, kf, vf, gf, of = (x.transpose(1, 2).float() for x in (q, k, v, grad, out))
    phi_q = torch.nn.functional.elu(qf) + 1
    phi_k = torch.nn.functional.elu(kf) + 1
    if key_padding_mask is not None:  # padded keys and their values count as zero
        phi_k = phi_k.masked_fill(key_padding_mask[:, None, :, None], 0.0)
        vf = vf.masked_fill(key_padding_mask[:, None, :, None], 0.0)
    inv = 1.0 / den
    gn = gf * inv[..., None]
    gd = -(gf * of).sum(-1) * inv
    if causal:
        ext = build_extension()
        g_aug = torch.cat([gn, gd[..., None]], -1).contiguous()
        v_aug = torch.cat([vf, torch.ones_like(vf[..., :1])], -1).contiguous()
        phi_q, phi_k = phi_q.contiguous(), phi_k.contiguous()
        grad_phi_q = ext.product(g_aug, v_aug, phi_k, False)
        grad_phi_k = ext.product(v_aug, g_aug, phi_q, True)
        grad_v = ext.product(phi_k, phi_q, gn.contiguous(), True)
    else:
        grad_kv = phi_q.transpose(-1, -2) @ gn
        grad_z = (phi_q * gd[..., None]).sum(2)
        grad_phi_q = gn @ kv.transpose(-1, -2) + gd[..., None] * z[:, :, None, :]
        grad_v = phi_k @ grad_kv
        grad_phi_k = vf @ grad_kv.transpose(-1, -2) + grad_z[:, :, None, :]
    grad_q = grad_phi_q * phi_q.clamp(max=1.0)  # phi'(x) = min(phi(x), 1)
    grad_k = grad_phi_k * phi_k.clamp(max=1.0)  # zero on padded keys, where phi_k is zeroed
    grads = [x.transpose(1, 2).to(q.dtype) for x in (grad_q, grad_k, grad_v)]
    if into is None:
        return grads
    return [dst.copy_(g) for dst, g in zip(into, grads, strict=True)]
