#!/usr/bin/env bash
# Synthetic-speech recipe: espeak-ng + flite + festival corpus -> manifests + CMVN -> tokenizer ->
# n-gram LM + lexicon -> train (asr-train) -> decoding bundle in the package (asr-bundle) -> decode
# (asr-decode, greedy and beam+LM) -> score (asr-score) -> RESULTS.md.
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
    -h|--help) sed -n 2,9p "$(basename "$0")"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

name=$(basename "$config" .yaml)
data_dir=${data_dir:-data/$name}
exp_dir=${exp_dir:-exp/$name}
corpus=$data_dir/corpus
mkdir -p "$data_dir" "$exp_dir"
source ../common.sh  # cfg, log, run_stage, and the up-to-date rules of decode and score

stage_0() {  # the corpus section of the config holds asr.data.synth.SynthConfig fields
  python "$repo/tools/yaml_get.py" "$config" --section corpus "$data_dir/synth.yaml"
  asr-synth-corpus --out-dir "$corpus" --config "$data_dir/synth.yaml"
}

# Evaluation splits: dev, test, test_unseen (a held-out voice), test_unseen_engine (a held-out
# engine family); a split the corpus left empty (its engine not installed) is skipped.
eval_splits() {
  local split
  for split in dev test test_unseen test_unseen_engine; do
    [ -s "$corpus/$split.jsonl" ] && printf '%s ' "$split"
  done
  return 0
}

stage_1() {  # CMVN of the features training uses: the config's train.data.init_args.fbank
  local split manifests=("$corpus/train.jsonl")
  for split in $(eval_splits); do manifests+=("$corpus/$split.jsonl"); done
  asr-data validate "${manifests[@]}"
  asr-data info "$corpus/train.jsonl"
  python "$repo/tools/yaml_get.py" "$config" --section train.data.init_args.fbank "$data_dir/fbank.yaml"
  [ -f "$data_dir/cmvn.json" ] || asr-data cmvn --manifest "$corpus/train.jsonl" \
    --fbank-config "$data_dir/fbank.yaml" --out "$data_dir/cmvn.json" \
    --cache-dir "$data_dir/fbank_cache"  # the features too: training's first epoch reads them
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
    --data.feature_cache_dir "$data_dir/fbank_cache"  # filled by stage 1
}

stage_5() {  # lexicon, LM and the decode: section go into the package: `asr-decode MODEL audio` gives words
  write_bundle "$exp_dir/model.safetensors" "$data_dir/lm/lexicon.txt" "$data_dir/lm/lm.arpa" \
    "$corpus/dev.jsonl"
}

stage_6() {  # beam_lm is `asr-decode MODEL` as a user runs it (the bundle's search); greedy for comparison
  local model=$exp_dir/model.safetensors
  local greedy_words=(--lexicon none --lm none)  # phoneme models spell words in phones:
  if [ "$(cfg tokenizer.kind)" = phoneme ]; then greedy_words=(); fi  # the bundle's lexicon maps them
  local split out
  for split in $(eval_splits); do
    out=$exp_dir/decode/$split
    decode "$out/greedy.jsonl" "$model" "$corpus/$split.jsonl" --search greedy "${greedy_words[@]}"
    decode "$out/beam_lm.jsonl" "$model" "$corpus/$split.jsonl"
  done
}

stage_7() {  # scores hypotheses newer than their summary; RESULTS.md is rewritten every time
  local split search splits
  splits=$(eval_splits)
  for split in $splits; do
    for search in greedy beam_lm; do
      score "$exp_dir/score/$split/$search" "$corpus/$split.jsonl" \
        "$exp_dir/decode/$split/$search.jsonl"
    done
  done
  python "$repo/tools/write_results.py" --exp-dir "$exp_dir" --config "$config" --data-dir "$data_dir" \
    --splits $splits --searches greedy beam_lm
  cat "$exp_dir/RESULTS.md"
}

run_stage 0 "synthesise the corpus (the config's engines and voices)"
run_stage 1 "validate manifests, global CMVN statistics"
run_stage 2 "train the tokenizer"
run_stage 3 "n-gram LM and lexicon from text disjoint from dev/test"
run_stage 4 "train the model"
run_stage 5 "decoding bundle: lexicon, LM and decoding options into the package"
run_stage 6 "decode the evaluation splits (greedy and beam+LM)"
run_stage 7 "score and write RESULTS.md"
