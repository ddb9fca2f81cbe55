# Everything runs from the virtual environment in .venv at the repository root.
SHELL := /bin/bash
PY := .venv/bin/python
VENV_STAMP := .venv/.installed
# nvcc on PATH may be a wrapper script; torch.utils.cpp_extension needs the real toolkit root.
CUDA_HOME ?= $(shell for d in /usr/local/cuda /usr/local/cuda-*; do [ -d $$d/lib64 ] && echo $$d && break; done)
export CUDA_HOME

.PHONY: venv system-deps foreign-voices demo test lint format smoke smoke-ar clean

# The synthetic corpus's engines (espeak-ng, flite, festival and its English voices), its text
# (Debian fortunes), ffmpeg (checks our shorten decoder) and tcmalloc (the recipes preload it,
# recipes/common.sh). A missing engine only leaves its voices out of the corpus.
SYSTEM_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts fortunes ffmpeg libtcmalloc-minimal4
system-deps:  ## the synthetic corpus's speech engines and text, ffmpeg, tcmalloc; installed when missing (needs root)
	@{ command -v espeak-ng && command -v flite && command -v festival && test -d /usr/share/games/fortunes \
	  && test -d /usr/share/festival/voices/english/kal_diphone && test -d /usr/share/festival/voices/english/ked_diphone \
	  && test -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts && command -v ffmpeg \
	  && /sbin/ldconfig -p | grep -q libtcmalloc_minimal.so.4; } >/dev/null || { \
	  echo "installing $(SYSTEM_PACKAGES) (apt-get)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null) \
	  || { echo "error: speech engines, fortunes, ffmpeg or tcmalloc missing and could not be installed; run: sudo apt-get install $(SYSTEM_PACKAGES)"; exit 1; }; }

# festival's voices of other languages, which speak accented English in training only
# (conf/demo_holdout_flite_foreign.yaml); the package list is asr.data.synth.festival's.
foreign-voices: venv system-deps  ## festival's Italian, Czech, Finnish and Hindi voices (needs root)
	@packages=$$($(PY) -c "from asr.data.synth.festival import FOREIGN_VOICES as v; print(*sorted({p for f in v.values() for p in f.packages}))"); \
	  missing=$$(for p in $$packages; do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	  test -z "$$missing" || { echo "installing" $$missing "(apt-get)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	  || { echo "error: could not install festival's foreign voices; run: sudo apt-get install" $$missing; exit 1; }; }

$(VENV_STAMP): pyproject.toml
	@test -x $(PY) || python3.11 -m venv .venv || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(VENV_STAMP)

venv: $(VENV_STAMP)

demo: venv system-deps  ## the synthetic-speech recipe end to end with conf/demo.yaml
	cd recipes/synth && ./run.sh --config conf/demo.yaml

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: venv
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

test: venv system-deps lint  ## unit tests (CUDA compile check included when nvcc is present)
	$(PY) -m pytest -q -m "not slow" tests

smoke: venv system-deps  ## every recipe stage on a tiny corpus (CI)
	cd recipes/synth && ./run.sh --config conf/smoke.yaml --exp-dir exp/smoke --data-dir data/smoke

smoke-ar: venv  ## every stage of the copy, MNIST and CIFAR-10 recipes, tiny models, images written on the fly (CI)
	cd recipes/copy && rm -rf exp/smoke && ./run.sh --config conf/smoke.yaml --exp-dir exp/smoke
	rm -rf recipes/mnist/data/tiny recipes/cifar10/data/tiny
	$(PY) tools/write_tiny_images.py mnist recipes/mnist/data/tiny --train 32 --test 20
	$(PY) tools/write_tiny_images.py cifar10 recipes/cifar10/data/tiny --train 8 --test 4
	cd recipes/mnist && rm -rf exp/smoke && ./run.sh --config conf/smoke.yaml --exp-dir exp/smoke --data-dir data/tiny
	cd recipes/cifar10 && rm -rf exp/smoke && ./run.sh --config conf/smoke.yaml --exp-dir exp/smoke --data-dir data/tiny

clean:
	rm -rf build *.egg-info .pytest_cache .ruff_cache
