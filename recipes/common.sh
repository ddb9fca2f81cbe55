# Shell helpers of every recipe's run.sh: the package's commands on PATH, config lookup, timed
# stages, and the rules by which decoding and scoring redo only what is out of date.
# A run.sh sources it after parsing its options, with $config, $stage, $stop_stage and $exp_dir
# set:  source ../common.sh

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -x "$repo/.venv/bin/python" ]; then export PATH="$repo/.venv/bin:$PATH"; fi
command -v asr-train >/dev/null || { echo "asr-train not found: run 'make venv' at the repository root" >&2; exit 1; }

# tcmalloc keeps freed memory for reuse, where glibc's malloc hands every large block back to the
# OS and faults it in again, zeroed, at the next training step (BENCHMARKS.md, "glibc's malloc
# against tcmalloc"). Preloaded into every command of the run where it is installed (Debian
# libtcmalloc-minimal4, `make system-deps`); ASR_MALLOC=glibc keeps glibc's.
if [ "${ASR_MALLOC:-tcmalloc}" = tcmalloc ]; then
  tcmalloc=$({ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null \
    | awk '/libtcmalloc_minimal\.so\.4 /{lib = $NF} END {print lib}' || true)
  if [ -n "$tcmalloc" ] && [[ ":${LD_PRELOAD:-}:" != *":$tcmalloc:"* ]]; then
    export LD_PRELOAD=$tcmalloc${LD_PRELOAD:+:$LD_PRELOAD}
  fi
fi

# cfg KEY.PATH [DEFAULT]: a value of the config (extends: resolved)
cfg() { python "$repo/tools/yaml_get.py" "$config" "$@"; }

current_stage=
log() { echo "$(date '+%F %T') [run.sh stage $current_stage] $*"; }

# run_stage N DESCRIPTION: stage_N when --stage/--stop-stage include it; its wall time goes to
# $exp_dir/timing.tsv for RESULTS.md
run_stage() {
  local n=$1; shift
  if [ "$stage" -le "$n" ] && [ "$stop_stage" -ge "$n" ]; then
    current_stage=$n
    log "$1"; local start; start=$(date +%s)
    "stage_$n"
    printf '%s\t%s\t%s\n' "$n" "$1" "$(( $(date +%s) - start ))" >> "$exp_dir/timing.tsv"
  fi
}

# stale OUT IN...: OUT is missing or older than one of its inputs
stale() {
  local out=$1; shift
  [ -f "$out" ] || return 0
  local f
  for f in "$@"; do [ "$f" -nt "$out" ] && return 0; done
  return 1
}

# write_decode_options OUT: the config's decode: section (asr-decode options by DecodeOptions
# field name) as OUT, replaced only when it changed, so that outputs decoded with the same
# options stay up to date
write_decode_options() {
  local out=$1
  python "$repo/tools/yaml_get.py" "$config" --section decode "$out.new" 2>/dev/null \
    || echo "{}" > "$out.new"
  if cmp -s "$out.new" "$out"; then rm "$out.new"; else mv "$out.new" "$out"; fi
}

# write_bundle MODEL LEXICON LM DEV_MANIFEST: the lexicon, the LM and the config's decode:
# section go into MODEL as its decoding bundle, so that `asr-decode MODEL audio` gives words with
# them. With `tune: {enabled: true, lm_weights: [...], word_scores: [...]}` the two weights are
# picked on DEV_MANIFEST first (tools/tune_decoding.py, reusing a tune.json of the same inputs).
# The package is rewritten only when its bundle changes, so decoded outputs stay up to date.
write_bundle() {
  local model=$1 lexicon=$2 lm=$3 dev=$4
  local options=$exp_dir/decode.yaml tuning=()
  write_decode_options "$options"
  if [ "$(cfg tune.enabled false)" = true ]; then
    # shellcheck disable=SC2046  # the grids are space-separated lists
    python "$repo/tools/tune_decoding.py" "$model" "$dev" --lexicon "$lexicon" --lm "$lm" \
      --config "$options" --lm-weights $(cfg tune.lm_weights) --word-scores $(cfg tune.word_scores) \
      --out "$exp_dir/tune.json" --reuse
    tuning=(--tuning "$exp_dir/tune.json")
  fi
  python -m asr.bundle add "$model" --lexicon "$lexicon" --lm "$lm" --options "$options" "${tuning[@]}"
}

# decode OUT MODEL MANIFEST ASR-DECODE-OPTIONS...: MANIFEST decoded into OUT (JSONL).
# OUT older than the model (its weights or its decoding bundle), the manifest or a file the
# options name (--config, --lexicon, --lm): decoded afresh. Otherwise one line per utterance means whole, and it is left alone;
# fewer (an interrupted run, or an utterance that failed) are completed by --resume.
decode() {
  local out=$1 model=$2 manifest=$3; shift 3
  local inputs=("$model" "$manifest") arg
  for arg in "$@"; do if [ -f "$arg" ]; then inputs+=("$arg"); fi; done
  if stale "$out" "${inputs[@]}"; then
    if [ -f "$out" ]; then log "$out is older than its inputs: decoding afresh"; fi
    rm -f "$out"
  elif [ "$(grep -c . "$out")" = "$(grep -c . "$manifest")" ]; then
    log "$out is up to date"
    return
  else
    log "$out lacks utterances: completing it"
  fi
  mkdir -p "$(dirname "$out")"
  asr-decode "$model" "$manifest" "$@" --format jsonl -o "$out" --resume
}

# score OUT_DIR REF HYP: asr-score into OUT_DIR, unless its summary is newer than REF and HYP
score() {
  local out=$1 ref=$2 hyp=$3
  if stale "$out/summary.json" "$ref" "$hyp"; then
    asr-score "$ref" "$hyp" --out-dir "$out"
  else
    log "$out is up to date"
  fi
}

# train_ar_models ARGS...: asr-train-ar for each model of the config's `models` list (an
# attention kind) in $exp_dir/<kind>, ARGS added to every command; a model whose package exists
# is skipped, an interrupted one resumes from its checkpoints/last.ckpt. `jobs: 2` trains them
# side by side (logs in $exp_dir/<kind>/train.log), each with `threads` torch threads.
train_ar_models() {
  python "$repo/tools/yaml_get.py" "$config" --section train "$exp_dir/train.yaml"
  local kind pid pids=() failed=0
  for kind in $(cfg models); do
    if [ -f "$exp_dir/$kind/model.safetensors" ]; then
      log "$exp_dir/$kind/model.safetensors exists, skipping"; continue
    fi
    mkdir -p "$exp_dir/$kind"
    if [ "$(cfg jobs 1)" -gt 1 ]; then
      log "training $kind in the background, log in $exp_dir/$kind/train.log"
      train_ar_model "$kind" "$@" > "$exp_dir/$kind/train.log" 2>&1 & pids+=($!)
    else
      train_ar_model "$kind" "$@"
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ "$failed" = 0 ] || { echo "training failed: see $exp_dir/*/train.log" >&2; exit 1; }
}

train_ar_model() {  # train_ar_model KIND ARGS...: one model; its wall time to train_seconds
  local kind=$1 threads start; shift
  threads=$(cfg threads "")
  start=$(date +%s)
  env ${threads:+OMP_NUM_THREADS=$threads} asr-train-ar --config "$exp_dir/train.yaml" "$@" \
    --model.model.attention "$kind" --trainer.default_root_dir "$exp_dir/$kind"
  echo $(( $(date +%s) - start )) >> "$exp_dir/$kind/train_seconds"
}
