#!/usr/bin/env bash
# WSJ recipe: LDC discs -> manifests + LM (asr-data wsj) -> CMVN -> units + lexicon -> train
# (asr-train) -> decoding bundle in the package (asr-bundle) -> decode dev93/eval92 (asr-decode,
# greedy and beam + the LDC trigram) -> score (asr-score) -> RESULTS.md. No Kaldi, no sph2pipe:
# the .wv1 files are read natively.
#
# Usage: ./run.sh --wsj0 DIR --wsj1 DIR [--config conf/paper.yaml] [--stage N] [--stop-stage N]
#                 [--data-dir DIR] [--exp-dir DIR]
#   --wsj0: the folder holding the LDC93S6B (CSR-I, WSJ0) discs 11-1.1 ... 11-13.1
#   --wsj1: the folder holding the LDC94S13B (CSR-II, WSJ1) discs 13-1.1 ... 13-34.1
#   (disc folders spelled 11-1.1 or 11_1_1, or all discs merged into one folder, are all found)
# Every stage can be rerun: stages 0-2 skip work whose output exists (delete it to redo), stage 3
# resumes training from its last checkpoint, stage 4 rewrites the package only when its bundle
# changes, stages 5-6 redo only outputs older than their inputs.
# README.md beside this script says what is read from the discs and what each stage does.
set -euo pipefail
cd "$(dirname "$0")"

config=conf/paper.yaml
stage=0
stop_stage=6
wsj0=
wsj1=
data_dir=
exp_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --wsj0) wsj0=$2; shift 2 ;;
    --wsj1) wsj1=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --exp-dir) exp_dir=$2; shift 2 ;;
    -h|--help) sed -n 2,15p "$(basename "$0")"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

name=$(basename "$config" .yaml)
data_dir=${data_dir:-data/$name}
exp_dir=${exp_dir:-exp/$name}
mkdir -p "$data_dir" "$exp_dir"
source ../common.sh  # cfg, log, run_stage, and the up-to-date rules of decode and score

train=$(cfg data.train)
dev=$(cfg data.dev)
test=$(cfg data.test)
kind=$(cfg tokenizer.kind)
lexicon=$data_dir/lm/lexicon.txt
lm=$data_dir/lm/lm.arpa

# exists FILE: FILE is there (and the log says it is kept); stages 0-2 then skip what makes it
exists() {
  [ -f "$1" ] || return 1
  log "$1 exists: kept (delete it to redo)"
}

stage_0() {  # everything read from the discs: manifests, Kaldi dirs, the LDC's trigram
  if ! exists "$data_dir/$test.jsonl"; then
    [ -n "$wsj0" ] && [ -n "$wsj1" ] || { echo "stage 0 needs --wsj0 DIR --wsj1 DIR (see --help)" >&2; exit 2; }
    asr-data wsj prepare --wsj0 "$wsj0" --wsj1 "$wsj1" --out-dir "$data_dir" \
      --splits "$train" "$dev" "$test" --jobs "$(cfg data.jobs)" \
      --verbalized-punctuation "$(cfg data.verbalized_punctuation)"
  fi
  exists "$lm" || asr-data wsj lm --wsj1 "$wsj1" --name "$(cfg lm.name)" --out "$lm"
  # a corpus made by tools/wsj_mini_corpus.py says so; RESULTS.md then labels its numbers
  if [ -n "$wsj0" ] && [ -f "$wsj0/MINIATURE_CORPUS" ]; then touch "$data_dir/MINIATURE_CORPUS"; fi
}

stage_1() {  # every manifest row checked; CMVN of the features training uses, the config's
  # train.data.init_args.fbank, from the .wv1 files decoded on the fly
  asr-data validate "$data_dir"/{"$train","$dev","$test"}.jsonl
  asr-data info "$data_dir"/{"$train","$dev","$test"}.jsonl | tee "$data_dir/info.md"
  python "$repo/tools/yaml_get.py" "$config" --section train.data.init_args.fbank "$data_dir/fbank.yaml"
  exists "$data_dir/cmvn.json" || asr-data cmvn --manifest "$data_dir/$train.jsonl" \
    --fbank-config "$data_dir/fbank.yaml" --out "$data_dir/cmvn.json" \
    --cache-dir "$data_dir/fbank_cache"  # the features too: training's first epoch reads them
}

stage_2() {  # units (phonemes, characters or BPE), the lexicon in them, phone references
  exists "$data_dir/tokenizer.json" || asr-data tokenizer --kind "$kind" \
    --vocab-size "$(cfg tokenizer.vocab_size)" --manifest "$data_dir/$train.jsonl" \
    --out "$data_dir/tokenizer.json"
  local open_vocab=()  # open: also every CMUdict word the LM lacks (KenLM scores it as <unk>)
  [ "$(cfg lm.vocabulary)" = open ] && open_vocab=(--with-dictionary)
  exists "$lexicon" || asr-lm lexicon --tokenizer "$data_dir/tokenizer.json" \
    --words "$data_dir/lm/words.txt" --out "$lexicon" "${open_vocab[@]}"
  [ "$kind" = phoneme ] || return 0
  local split refs  # references for the phoneme error rate (the paper's metric)
  for split in "$dev" "$test"; do
    refs=$data_dir/$split.phones.jsonl
    if stale "$refs" "$data_dir/tokenizer.json" "$data_dir/$split.jsonl"; then
      python local/phone_references.py --tokenizer "$data_dir/tokenizer.json" \
        --manifest "$data_dir/$split.jsonl" --out "$refs"
    else
      log "$refs is up to date"
    fi
  done
}

stage_3() {  # rerunning resumes from $exp_dir/checkpoints/last.ckpt
  python "$repo/tools/yaml_get.py" "$config" --section train "$exp_dir/train.yaml"
  asr-train --config "$exp_dir/train.yaml" \
    --trainer.default_root_dir "$exp_dir" \
    --data.train_manifest "$data_dir/$train.jsonl" --data.val_manifest "$data_dir/$dev.jsonl" \
    --data.tokenizer_path "$data_dir/tokenizer.json" --data.cmvn_path "$data_dir/cmvn.json" \
    --data.feature_cache_dir "$data_dir/fbank_cache"  # filled by stage 1
}

searches="greedy beam_lm"
[ "$kind" = phoneme ] && searches="greedy_phones $searches"

stage_4() {  # lexicon, LM and the decode: section go into the package: `asr-decode MODEL audio` gives words
  write_bundle "$exp_dir/model.safetensors" "$lexicon" "$lm" "$data_dir/$dev.jsonl"
}

stage_5() {  # beam_lm is `asr-decode MODEL` as a user runs it (the bundle's search); greedy for comparison
  local model=$exp_dir/model.safetensors
  local greedy_words=(--lexicon none --lm none)  # phoneme models spell words in phones:
  if [ "$kind" = phoneme ]; then greedy_words=(); fi  # the bundle's lexicon maps them
  local split manifest out
  for split in "$dev" "$test"; do
    manifest=$data_dir/$split.jsonl out=$exp_dir/decode/$split
    if [ "$kind" = phoneme ]; then  # the phones themselves, for the phoneme error rate
      decode "$out/greedy_phones.jsonl" "$model" "$manifest" --search greedy --units
    fi
    decode "$out/greedy.jsonl" "$model" "$manifest" --search greedy "${greedy_words[@]}"
    decode "$out/beam_lm.jsonl" "$model" "$manifest"
  done
}

stage_6() {  # asr-score drops <NOISE>, <SPOKEN_NOISE> and <UNK> on both sides, as Kaldi does
  local split search ref
  for split in "$dev" "$test"; do
    for search in $searches; do
      ref=$data_dir/$split.jsonl
      [ "$search" = greedy_phones ] && ref=$data_dir/$split.phones.jsonl
      score "$exp_dir/score/$split/$search" "$ref" "$exp_dir/decode/$split/$search.jsonl"
    done
  done
  local corpus=wsj
  [ -f "$data_dir/MINIATURE_CORPUS" ] && corpus=miniature
  python local/write_results.py --exp-dir "$exp_dir" --data-dir "$data_dir" --config "$config" \
    --corpus "$corpus" --splits "$dev" "$test" --searches $searches --wsj0 "$wsj0" --wsj1 "$wsj1"
  cat "$exp_dir/RESULTS.md"
}

run_stage 0 "data preparation from the LDC discs (manifests, Kaldi dirs, LDC trigram)"
run_stage 1 "audio: validate manifests, global CMVN"
run_stage 2 "units: tokenizer, lexicon, phone references"
run_stage 3 "train the model"
run_stage 4 "decoding bundle: lexicon, LM and decoding options into the package"
run_stage 5 "decode $dev and $test (greedy and beam + LM)"
run_stage 6 "score and write RESULTS.md"
