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

repo=$(cd ../.. && pwd)
if [ -x "$repo/.venv/bin/python" ]; then export PATH="$repo/.venv/bin:$PATH"; fi
python -c "import asr.autoregressive" 2>/dev/null || { echo "cannot import asr: run 'make venv' at the repository root" >&2; exit 1; }
cfg() { python "$repo/tools/yaml_get.py" "$config" "$@"; }

name=$(basename "$config" .yaml)
exp_dir=${exp_dir:-exp/$name}
mkdir -p "$exp_dir"
timing=$exp_dir/timing.tsv
models=$(cfg models)
log() { echo "$(date '+%F %T') [run.sh stage $1] ${*:2}"; }
run_stage() {  # run_stage N DESCRIPTION -- records wall time per stage for RESULTS.md
  local n=$1; shift
  if [ "$stage" -le "$n" ] && [ "$stop_stage" -ge "$n" ]; then
    log "$n" "$1"; local start; start=$(date +%s)
    "stage_$n"
    printf '%s\t%s\t%s\n' "$n" "$1" "$(( $(date +%s) - start ))" >> "$timing"
  fi
}

train_one() {  # train_one KIND: one model in its own folder; resumes from checkpoints/last.ckpt
  local kind=$1 dir=$exp_dir/$1
  if [ -f "$dir/model.safetensors" ]; then log 0 "$dir/model.safetensors exists, skipping"; return; fi
  mkdir -p "$dir"; local start; start=$(date +%s)
  python -m asr.autoregressive.train --config "$exp_dir/train.yaml" \
    --model.model.attention "$kind" --trainer.default_root_dir "$dir"
  echo $(( $(date +%s) - start )) >> "$dir/train_seconds"
}

stage_0() {  # `jobs: 2` trains the models side by side, each with `threads` torch threads
  python "$repo/tools/yaml_get.py" "$config" --section train "$exp_dir/train.yaml"
  local threads; threads=$(cfg threads "")
  if [ -n "$threads" ]; then export OMP_NUM_THREADS=$threads; fi
  if [ "$(cfg jobs 1)" -gt 1 ]; then
    local pids=() kind
    for kind in $models; do
      log 0 "training $kind in the background, log in $exp_dir/$kind/train.log"
      mkdir -p "$exp_dir/$kind"; train_one "$kind" > "$exp_dir/$kind/train.log" 2>&1 & pids+=($!)
    done
    local failed=0 pid
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    [ "$failed" = 0 ] || { echo "training failed: see $exp_dir/*/train.log" >&2; exit 1; }
  else
    for kind in $models; do train_one "$kind"; done
  fi
}

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
