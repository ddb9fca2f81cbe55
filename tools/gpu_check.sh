#!/usr/bin/env bash
# One-shot GPU check of the CUDA causal-product kernel: build, GPU tests, benchmarks.
# Run from the repository root on a machine with an NVIDIA GPU.
# It needs no install: it uses .venv if present, else the system python with torch.
#   bash tools/gpu_check.sh          (about 2-5 min: build ~1 min, tests, benchmarks)
# Covers the causal product and the fused linear-attention layer (asr/attention/csrc/*cuda*) and
# the Triton causal product (asr/attention/_triton.py): the extension build, the GPU tests against
# float64 references, kernel and layer benchmarks, and a training-step comparison of the encoders.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=$(command -v python3 || command -v python); fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"   # asr importable without pip install
export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$REPO/build/torch_extensions}"
OUT_DIR="${OUT:-$REPO/build/gpu_check}"; mkdir -p "$OUT_DIR"
echo "== python: $PY"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
$PY - <<'PY' || { echo "FATAL: torch with CUDA is needed"; exit 1; }
import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available())
assert torch.cuda.is_available()
PY
$PY -c "import pytest" 2>/dev/null || $PY -m pip install -q pytest 2>/dev/null || echo "WARN: pytest missing"
if [ -z "${CUDA_HOME:-}" ]; then
  for d in /usr/local/cuda /usr/local/cuda-*; do [ -x "$d/bin/nvcc" ] && [ -d "$d/lib64" ] && export CUDA_HOME=$d && break; done
fi
echo "== CUDA_HOME=${CUDA_HOME:-unset}  TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-native}"

echo "== build"
start=$(date +%s)
$PY -c "from asr.attention import _cuda; m = _cuda.build_extension(verbose=False); print('built', m.__file__)" \
  2>&1 | tail -20 | tee "$OUT_DIR/build.log"
echo "build_s=$(( $(date +%s) - start ))"

echo "== tests (pytest -m cuda tests/attention: causal product, fused layer, dispatch, triton)"
timeout 300 $PY -m pytest -q --maxfail=30 -m cuda tests/attention -p no:cacheprovider 2>&1 | tail -25 | tee "$OUT_DIR/pytest.log"

echo "== benchmark (causal product, CUDA and triton, vs SDPA flash; fused layer vs composite vs SDPA)"
timeout 240 $PY tools/bench_cuda_kernel.py --n 1024 2048 4096 8192 16384 2>&1 | tee "$OUT_DIR/bench_cuda.md"

if [ -f tools/bench_attention.py ]; then
  echo "== tools/bench_attention.py --device cuda"
  timeout 180 $PY tools/bench_attention.py --device cuda 2>&1 | tail -30 | tee "$OUT_DIR/bench_attention.log"
fi
echo "== tools/bench_train.py on the GPU (encoders at the paper's size, bf16 autocast)"
timeout 200 $PY tools/bench_train.py --device cuda --bf16 --layers 9 --d-model 384 --heads 6 \
  --conv-channels 256 --lstm-layers 4 --batch 8 --steps 5 --threads 8 --lengths 5 20 60 120 \
  --timeout 100 2>&1 | tail -12 | tee "$OUT_DIR/bench_train.md"
echo "== done; logs in $OUT_DIR"
