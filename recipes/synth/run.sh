#!/usr/bin/env bash
# Synthetic-speech recipe: espeak-ng corpus -> manifests + CMVN -> tokenizer -> n-gram LM + lexicon
# -> train (asr-train) -> decoding bundle in the package (asr-bundle) -> decode (asr-decode, greedy
# and beam+LM) -> score (asr-score) -> RESULTS.md.
#
# Usage: ./run.sh [--config conf/demo.yaml] [--stage N] [--stop-stage N] [--data-dir DIR] [--exp-dir DIR]
# Every stage can be rerun: stages 0-3 skip work whose output exists (delete it to redo), stage 4
# resumes training from its last checkpoint, stage 5 rewrites the package only when its bundle
# changes, stages 6-7 redo only outputs older than their inputs.
set -euo pipefail
cd "$(dirname "$0")"

config=conf/demo.yaml
stage=0
stop_stage=7
data_dir=
exp_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --exp-dir) exp_dir=$2; shift 2 ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

repo=$(cd ../.. && pwd)
if [ -x "$repo/.venv/bin/python" ]; then export PATH="$repo/.venv/bin:$PATH"; fi
command -v asr-train >/dev/null || { echo "asr-train not found: run 'make venv' at the repository root" >&2; exit 1; }
cfg() { python "$repo/tools/yaml_get.py" "$config" "$@"; }

name=$(basename "$config" .yaml)
data_dir=${data_dir:-data/$name}
exp_dir=${exp_dir:-exp/$name}
corpus=$data_dir/corpus
mkdir -p "$data_dir" "$exp_dir"
timing=$exp_dir/timing.tsv
log() { echo "$(date '+%F %T') [run.sh stage $1] ${*:2}"; }
run_stage() {  # run_stage N DESCRIPTION -- records wall time per stage for RESULTS.md
  local n=$1; shift
  if [ "$stage" -le "$n" ] && [ "$stop_stage" -ge "$n" ]; then
    log "$n" "$1"; local start; start=$(date +%s)
    "stage_$n"
    printf '%s\t%s\t%s\n' "$n" "$1" "$(( $(date +%s) - start ))" >> "$timing"
  fi
}

stage_0() {  # the corpus section of the config holds asr.data.synth.SynthConfig fields
  python "$repo/tools/yaml_get.py" "$config" --section corpus "$data_dir/synth.yaml"
  asr-synth-corpus --out-dir "$corpus" --config "$data_dir/synth.yaml"
}

stage_1() {  # CMVN of the features training uses: the config's train.data.init_args.fbank
  asr-data validate "$corpus"/{train,dev,test,test_unseen}.jsonl
  asr-data info "$corpus/train.jsonl"
  python "$repo/tools/yaml_get.py" "$config" --section train.data.init_args.fbank "$data_dir/fbank.yaml"
  [ -f "$data_dir/cmvn.json" ] || asr-data cmvn --manifest "$corpus/train.jsonl" \
    --fbank-config "$data_dir/fbank.yaml" --out "$data_dir/cmvn.json"
}

stage_2() {
  [ -f "$data_dir/tokenizer.json" ] || asr-data tokenizer --kind "$(cfg tokenizer.kind)" \
    --vocab-size "$(cfg tokenizer.vocab_size 0)" --manifest "$corpus/train.jsonl" \
    --out "$data_dir/tokenizer.json"
}

stage_3() {  # LM text = source sentences minus every dev/test sentence (made in stage 0)
  mkdir -p "$data_dir/lm"
  [ -f "$data_dir/lm/lm.arpa" ] || asr-lm arpa --text "$corpus/lm_text.txt" \
    --order "$(cfg lm.order 3)" --out "$data_dir/lm/lm.arpa"
  local open_vocab=()  # lm.dictionary_words: also every CMUdict word (scored as <unk>)
  [ "$(cfg lm.dictionary_words false)" = true ] && open_vocab=(--with-dictionary)
  [ -f "$data_dir/lm/lexicon.txt" ] || asr-lm lexicon --tokenizer "$data_dir/tokenizer.json" \
    --words "$data_dir/lm/words.txt" --out "$data_dir/lm/lexicon.txt" "${open_vocab[@]}"
}

stage_4() {  # rerunning resumes from $exp_dir/checkpoints/last.ckpt
  python "$repo/tools/yaml_get.py" "$config" --section train "$exp_dir/train.yaml"
  asr-train --config "$exp_dir/train.yaml" \
    --trainer.default_root_dir "$exp_dir" \
    --data.train_manifest "$corpus/train.jsonl" --data.val_manifest "$corpus/dev.jsonl" \
    --data.tokenizer_path "$data_dir/tokenizer.json" --data.cmvn_path "$data_dir/cmvn.json" \
    --data.feature_cache_dir "$data_dir/fbank_cache"  # computed in epoch 1, read back after
}

splits="dev test test_unseen"
stale() {  # stale OUT IN...: OUT is missing or older than one of its inputs
  local out=$1; shift
  [ -f "$out" ] || return 0
  local f
  for f in "$@"; do [ "$f" -nt "$out" ] && return 0; done
  return 1
}

stage_5() {  # lexicon, LM and the decode: section go into the package: `asr-decode MODEL audio` gives words
  local model=$exp_dir/model.safetensors lexicon=$data_dir/lm/lexicon.txt lm=$data_dir/lm/lm.arpa
  local options=$exp_dir/decode.yaml  # replaced only when the section changes
  python "$repo/tools/yaml_get.py" "$config" --section decode "$options.new" 2>/dev/null \
    || echo "{}" > "$options.new"
  if cmp -s "$options.new" "$options"; then rm "$options.new"; else mv "$options.new" "$options"; fi
  local tuning=()
  if [ "$(cfg tune.enabled false)" = true ]; then  # pick lm_weight x word_score on dev first
    # shellcheck disable=SC2046  # the grids are space-separated lists
    python "$repo/tools/tune_decoding.py" "$model" "$corpus/dev.jsonl" --lexicon "$lexicon" --lm "$lm" \
      --config "$options" --lm-weights $(cfg tune.lm_weights) --word-scores $(cfg tune.word_scores) \
      --out "$exp_dir/tune.json" --reuse
    tuning=(--tuning "$exp_dir/tune.json")
  fi
  python -m asr.bundle add "$model" --lexicon "$lexicon" --lm "$lm" --options "$options" "${tuning[@]}"
}

stage_6() {  # beam_lm is `asr-decode MODEL` as a user runs it (the bundle's search); greedy for comparison
  local model=$exp_dir/model.safetensors
  local greedy_words=(--lexicon none --lm none)  # phoneme models spell words in phones:
  if [ "$(cfg tokenizer.kind)" = phoneme ]; then greedy_words=(); fi  # the bundle's lexicon maps them
  local split
  for split in $splits; do
    mkdir -p "$exp_dir/decode/$split"
    decode "$split" greedy --search greedy "${greedy_words[@]}"
    decode "$split" beam_lm
  done
}

decode() {  # decode SPLIT NAME ASR-DECODE-OPTIONS...: stage 6's asr-decode of one split
  local split=$1 name=$2; shift 2
  local manifest=$corpus/$split.jsonl out=$exp_dir/decode/$split/$name.jsonl
  # Older than the package (weights or bundle) or the manifest: decoded afresh. Otherwise one
  # line per utterance means whole; fewer (an interrupted run, or an utterance that failed)
  # are completed by --resume.
  if stale "$out" "$model" "$manifest"; then
    rm -f "$out"
  elif [ "$(grep -c . "$out")" = "$(grep -c . "$manifest")" ]; then
    log 6 "$out is up to date"
    return
  fi
  asr-decode "$model" "$manifest" "$@" --format jsonl -o "$out" --resume
}

stage_7() {  # scores hypotheses newer than their summary; RESULTS.md is rewritten every time
  local split search hyp score
  for split in $splits; do
    for search in greedy beam_lm; do
      hyp=$exp_dir/decode/$split/$search.jsonl score=$exp_dir/score/$split/$search
      stale "$score/summary.json" "$corpus/$split.jsonl" "$hyp" || continue
      asr-score "$corpus/$split.jsonl" "$hyp" --out-dir "$score"
    done
  done
  python "$repo/tools/write_results.py" --exp-dir "$exp_dir" --config "$config" --data-dir "$data_dir" \
    --splits $splits --searches greedy beam_lm
  cat "$exp_dir/RESULTS.md"
}

run_stage 0 "synthesise the corpus with espeak-ng"
run_stage 1 "validate manifests, global CMVN statistics"
run_stage 2 "train the tokenizer"
run_stage 3 "n-gram LM and lexicon from text disjoint from dev/test"
run_stage 4 "train the model"
run_stage 5 "decoding bundle: lexicon, LM and decoding options into the package"
run_stage 6 "decode dev/test/test_unseen (greedy and beam+LM)"
run_stage 7 "score and write RESULTS.md"
