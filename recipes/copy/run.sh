#!/usr/bin/env bash
# Copy task (Katharopoulos et al. 2020, Figure 2): a causal linear and a softmax transformer
# learn to repeat a random symbol sequence after a separator; loss-vs-updates curves, copy
# accuracy by greedy (recurrent / key-value cached) generation, RESULTS.md.
#
# Usage: ./run.sh [--config conf/cpu.yaml] [--stage N] [--stop-stage N] [--exp-dir DIR]
# Stages: (0) train each model of the config's `models` list, (1) greedy copy accuracy,
# (2) loss curves PNG + CSV, (3) RESULTS.md. Each stage skips work whose output exists;
# rerunning stage 0 after an interruption resumes training from the last checkpoint.
# Config keys besides `train` (the asr-train-ar config): models, jobs, threads, eval.
set -euo pipefail
cd "$(dirname "$0")"

config=conf/cpu.yaml
stage=0
stop_stage=3
exp_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --exp-dir) exp_dir=$2; shift 2 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

name=$(basename "$config" .yaml)
exp_dir=${exp_dir:-exp/$name}
mkdir -p "$exp_dir"
source ../common.sh  # cfg, log, run_stage, train_ar_models
models=$(cfg models)

stage_0() { train_ar_models; }

stage_1() {
  for kind in $models; do
    [ -f "$exp_dir/$kind/copy_eval.json" ] && continue
    python -m asr.autoregressive.cli copy-eval "$exp_dir/$kind/model.safetensors" \
      --num "$(cfg eval.sequences 512)" --json "$exp_dir/$kind/copy_eval.json"
  done
}

stage_2() {
  local runs=()
  for kind in $models; do runs+=(--run "$kind=$exp_dir/$kind/csv/metrics.csv"); done
  python -m asr.autoregressive.cli curves "${runs[@]}" \
    --png "$exp_dir/loss_curves.png" --csv "$exp_dir/loss_curves.csv"
}

stage_3() {
  python "$repo/tools/write_ar_results.py" copy --exp-dir "$exp_dir" --config "$config" \
    --recipe copy --models $models
  cat "$exp_dir/RESULTS.md"
}

run_stage 0 "train: $models"
run_stage 1 "greedy copy accuracy"
run_stage 2 "loss-vs-updates curves (PNG + CSV)"
run_stage 3 "write RESULTS.md"
