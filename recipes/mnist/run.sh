#!/usr/bin/env bash
# Pixel-by-pixel image generation (Katharopoulos et al. 2020, Section 4.2): a causal linear and
# a softmax transformer model images as sequences of grey levels (MNIST-format IDX files) or RGB
# sub-pixels (CIFAR-10 binary batches; recipes/cifar10/run.sh runs this script with its configs).
#
# Usage: ./run.sh [--config conf/cpu.yaml] [--stage N] [--stop-stage N] [--exp-dir DIR]
#                 [--data-dir DIR] [--download]
# Stages: (0) data: Debian's dataset-fashion-mnist (apt-get) for fashion-mnist, the files in
# --data-dir otherwise (--download fetches them), (1) train each model of `models`, (2) bits/dim
# on the test set, (3) sample grids (PNG), (4) generation images/s of the three modes in one run,
# (5) RESULTS.md. Each stage skips work whose output exists; rerunning stage 1 resumes training.
# Config keys besides `train` (the asr-train-ar config): dataset, models, jobs, threads, eval.
set -euo pipefail
recipe_dir=${RECIPE_DIR:-$(cd "$(dirname "$0")" && pwd)}
cd "$recipe_dir"
recipe=$(basename "$recipe_dir")

config=conf/cpu.yaml
stage=0
stop_stage=5
exp_dir=
data_dir=
fetch=
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --exp-dir) exp_dir=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --download) fetch=--download; shift ;;
    -h|--help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

name=$(basename "$config" .yaml)
exp_dir=${exp_dir:-exp/$name}
mkdir -p "$exp_dir"
source "$recipe_dir/../common.sh"  # cfg, log, run_stage, train_ar_models
dataset=$(cfg dataset)
data_dir=${data_dir:-$(cfg data_dir "")}
data_args=(); [ -n "$data_dir" ] && data_args=(--data-dir "$data_dir")
models=$(cfg models)
threads=$(cfg threads "")
if [ -n "$threads" ]; then export OMP_NUM_THREADS=$threads; fi  # every stage

stage_0() {
  if [ "$dataset" = fashion-mnist ] && [ -z "$data_dir" ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then
    log "installing Debian's dataset-fashion-mnist (apt-get)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      dataset-fashion-mnist >/dev/null) || { echo "error: could not install dataset-fashion-mnist;" \
      "run: sudo apt-get install dataset-fashion-mnist, or pass --data-dir with the IDX files" >&2; exit 1; }
  fi
  python -m asr.autoregressive.cli data "$dataset" "${data_args[@]}" $fetch --json "$exp_dir/data.json"
}

stage_1() {
  local data_override=(); [ -n "$data_dir" ] && data_override=(--data.init_args.data_dir "$data_dir")
  train_ar_models "${data_override[@]}" --data.init_args.dataset "$dataset"
}

stage_2() {
  local max=(); [ -n "$(cfg eval.test_images "")" ] && max=(--max-images "$(cfg eval.test_images)")
  for kind in $models; do
    [ -f "$exp_dir/$kind/test_bpd.json" ] && continue
    python -m asr.autoregressive.cli bpd "$exp_dir/$kind/model.safetensors" "${data_args[@]}" \
      "${max[@]}" --json "$exp_dir/$kind/test_bpd.json"
  done
}

stage_3() {
  for kind in $models; do
    [ -f "$exp_dir/$kind/samples.png" ] && continue
    python -m asr.autoregressive.cli sample "$exp_dir/$kind/model.safetensors" \
      --num "$(cfg eval.samples 64)" --batch-size "$(cfg eval.sample_batch 64)" --seed 0 \
      --out "$exp_dir/$kind/samples.png" --json "$exp_dir/$kind/samples.json"
  done
}

stage_4() {  # both packages, the three modes, in one process (same machine state)
  [ -f "$exp_dir/generation.json" ] && return
  local packages=()
  for kind in $models; do packages+=(--package "$exp_dir/$kind/model.safetensors"); done
  python "$repo/tools/bench_generation.py" "${packages[@]}" --batch "$(cfg eval.bench_batch 1)" \
    --repeats "$(cfg eval.bench_repeats 3)" --threads "${threads:-$(nproc)}" \
    --json "$exp_dir/generation.json"
}

stage_5() {
  local extra=(); [ -n "$data_dir" ] && extra=("--extra=--data-dir $data_dir")
  python "$repo/tools/write_ar_results.py" image --exp-dir "$exp_dir" --config "$config" \
    --recipe "$recipe" --models $models --paper "$(cfg paper_table "$dataset")" "${extra[@]}"
  cat "$exp_dir/RESULTS.md"
}

run_stage 0 "check the $dataset files"
run_stage 1 "train: $models"
run_stage 2 "bits/dim on the test set"
run_stage 3 "sample grids"
run_stage 4 "generation throughput: linear recurrent vs softmax with / without cache"
run_stage 5 "write RESULTS.md"
