"""The Triton causal product (``asr.attention._triton``) against the float64 reference.

The checks run on a CUDA GPU (marked ``cuda``) and on CPU tensors in Triton's interpreter, which
must be switched on before triton is first imported: on a machine without a GPU,
``test_checks_pass_in_the_interpreter`` reruns this file in a fresh process with
``TRITON_INTERPRET=1``.
"""

import os
import re
import subprocess
import sys

import pytest
import torch

from asr.attention import causal_product, causal_product_reference

from .conftest import out_and_grads, rel_err

_triton = pytest.importorskip("asr.attention._triton")
if not _triton.is_available():
    pytest.skip("triton is not installed", allow_module_level=True)

HAS_CUDA = torch.cuda.is_available()
DEVICES = [
    pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason="no GPU")]),
    pytest.param(
        "cpu",
        marks=pytest.mark.skipif(
            not _triton.interpreted(),
            reason="CPU tensors need triton's interpreter: run by test_checks_pass_in_the_interpreter",
        ),
    ),
]  # fmt: skip
# Shapes: one step; a partial chunk; exactly one chunk; several chunks with a partial last one
# and D, M not powers of two; two M tiles.
SHAPES = [(1, 1, 1, 4, 4), (1, 2, 37, 5, 7), (2, 1, 64, 16, 16), (1, 1, 150, 24, 40),
          (1, 1, 70, 8, 80)]  # fmt: skip
# float32 on every shape; the half dtypes on the multi-chunk ones (the interpreter is slow).
CASES = [(torch.float32, s) for s in SHAPES] + [
    (torch.bfloat16, SHAPES[1]), (torch.bfloat16, SHAPES[3]), (torch.float16, SHAPES[4]),
]  # fmt: skip
# Largest |error| / largest |reference| against float64 on the same (rounded) inputs. Half
# inputs round the scores and the state to their dtype as matmul operands (8 bits of mantissa
# for bfloat16, 11 for float16), float32 inputs nothing.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("dtype", "shape"), CASES)
def test_matches_reference_with_grads(device, dtype, shape):
    b, h, n, d, m = shape
    # Feature-mapped queries and keys are positive, as causal linear attention gives them.
    q, k = (torch.rand(b, h, n, d, device=device).to(dtype) for _ in range(2))
    v, g = (torch.randn(b, h, n, m, device=device).to(dtype) for _ in range(2))
    ours = out_and_grads(lambda *x: causal_product(*x, backend="triton"), q, k, v, g)
    ref = out_and_grads(causal_product_reference, *(x.double() for x in (q, k, v, g)))
    for name, a, r in zip(("out", "grad_q", "grad_k", "grad_v"), ours, ref, strict=True):
        assert a.dtype == dtype
        assert rel_err(a, r) < TOLERANCE[dtype], f"{name}: {rel_err(a, r):.2e}"


@pytest.mark.parametrize("device", DEVICES)
def test_rejects_heads_over_its_limit(device):
    q, k, v = (torch.rand(1, 1, 8, _triton.MAX_D + 1, device=device) for _ in range(3))
    with pytest.raises(ValueError, match="MAX_D"):
        causal_product(q, k, v, backend="triton")


@pytest.mark.skipif(_triton.interpreted(), reason="the interpreter is on in this process")
def test_cpu_tensors_without_the_interpreter_are_refused():
    q, k, v = (torch.rand(1, 1, 8, 4) for _ in range(3))
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        causal_product(q, k, v, backend="triton")


@pytest.mark.skipif(_triton.interpreted(), reason="already in the interpreter")
def test_checks_pass_in_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", __file__, "-p", "no:cacheprovider", "-m", "not cuda"],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    passed = re.search(r"(\d+) passed", run.stdout)
    assert passed and int(passed.group(1)) > len(CASES), run.stdout[-2000:]
