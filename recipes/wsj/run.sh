#!/usr/bin/env bash
# WSJ recipe: LDC discs -> manifests + LM (asr-data wsj) -> CMVN -> units + lexicon -> train
# (asr-train) -> decode dev93/eval92 (asr-decode, greedy and beam + the LDC trigram) -> score
# (asr-score) -> RESULTS.md. No Kaldi, no sph2pipe: the .wv1 files are read natively.
#
# Usage: ./run.sh --wsj0 DIR --wsj1 DIR [--config conf/paper.yaml] [--stage N] [--stop-stage N]
#                 [--data-dir DIR] [--exp-dir DIR]
#   --wsj0: the folder holding the LDC93S6B (CSR-I, WSJ0) discs 11-1.1 ... 11-13.1
#   --wsj1: the folder holding the LDC94S13B (CSR-II, WSJ1) discs 13-1.1 ... 13-34.1
#   (disc folders spelled 11-1.1 or 11_1_1, or all discs merged into one folder, are all found)
# Every stage is idempotent: it skips work whose output already exists (delete it to redo).
set -euo pipefail
cd "$(dirname "$0")"

config=conf/paper.yaml
stage=0
stop_stage=5
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
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
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

train=$(cfg data.train train_si284)
dev=$(cfg data.dev test_dev93)
test=$(cfg data.test test_eval92)
kind=$(cfg tokenizer.kind)
mel_bins=$(cfg train.data.init_args.fbank.num_mel_bins 80)

stage_0() {  # everything read from the discs: manifests, Kaldi dirs, the LDC's trigram
  if [ ! -f "$data_dir/$test.jsonl" ]; then
    [ -n "$wsj0" ] && [ -n "$wsj1" ] || { echo "stage 0 needs --wsj0 DIR --wsj1 DIR (see --help)" >&2; exit 2; }
    asr-data wsj prepare --wsj0 "$wsj0" --wsj1 "$wsj1" --out-dir "$data_dir" \
      --splits "$train" "$dev" "$test" --jobs "$(cfg data.jobs 2)" \
      --verbalized-punctuation "$(cfg data.verbalized_punctuation keep)"
  fi
  [ -f "$data_dir/lm/lm.arpa" ] || asr-data wsj lm --wsj1 "$wsj1" --name "$(cfg lm.name tcb20onp)" \
    --out "$data_dir/lm/lm.arpa"
  # a corpus made by tools/wsj_mini_corpus.py says so; RESULTS.md then labels its numbers
  if [ -n "$wsj0" ] && [ -f "$wsj0/MINIATURE_CORPUS" ]; then touch "$data_dir/MINIATURE_CORPUS"; fi
}

stage_1() {  # the audio: every manifest row checked, CMVN from .wv1 decoded on the fly
  asr-data validate "$data_dir"/{"$train","$dev","$test"}.jsonl
  asr-data info "$data_dir"/{"$train","$dev","$test"}.jsonl | tee "$data_dir/info.md"
  [ -f "$data_dir/cmvn.json" ] || asr-data cmvn --manifest "$data_dir/$train.jsonl" \
    --num-mel-bins "$mel_bins" --out "$data_dir/cmvn.json"
}

lexicon=$data_dir/lm/lexicon.txt
stage_2() {  # units (phonemes, characters or BPE), the lexicon in them, phone references
  [ -f "$data_dir/tokenizer.json" ] || asr-data tokenizer --kind "$kind" \
    --vocab-size "$(cfg tokenizer.vocab_size 0)" --manifest "$data_dir/$train.jsonl" \
    --out "$data_dir/tokenizer.json"
  local open_vocab=()  # open: also every CMUdict word the LM lacks (KenLM scores it as <unk>)
  [ "$(cfg lm.vocabulary closed)" = open ] && open_vocab=(--with-dictionary)
  [ -f "$lexicon" ] || asr-lm lexicon --tokenizer "$data_dir/tokenizer.json" \
    --words "$data_dir/lm/words.txt" --out "$lexicon" "${open_vocab[@]}"
  if [ "$kind" = phoneme ]; then  # references for the phoneme error rate (the paper's metric)
    for split in "$dev" "$test"; do
      python local/phone_references.py --tokenizer "$data_dir/tokenizer.json" \
        --manifest "$data_dir/$split.jsonl" --out "$data_dir/$split.phones.jsonl"
    done
  fi
}

stage_3() {  # rerunning resumes from $exp_dir/checkpoints/last.ckpt
  python "$repo/tools/yaml_get.py" "$config" --section train "$exp_dir/train.yaml"
  asr-train --config "$exp_dir/train.yaml" \
    --trainer.default_root_dir "$exp_dir" --model.encoder.input_dim "$mel_bins" \
    --data.train_manifest "$data_dir/$train.jsonl" --data.val_manifest "$data_dir/$dev.jsonl" \
    --data.tokenizer_path "$data_dir/tokenizer.json" --data.cmvn_path "$data_dir/cmvn.json" \
    --data.feature_cache_dir "$data_dir/fbank_cache"  # computed in epoch 1, read back after
}

searches="greedy beam_lm"
[ "$kind" = phoneme ] && searches="greedy_phones $searches"
stage_4() {
  local model=$exp_dir/model.safetensors
  local greedy_words=()  # phoneme models spell words in phones: map them through the lexicon
  [ "$kind" = phoneme ] && greedy_words=(--lexicon "$lexicon" --lm "$data_dir/lm/lm.arpa")
  for split in "$dev" "$test"; do
    local out=$exp_dir/decode/$split
    mkdir -p "$out"
    rm -f "$out"/{greedy_phones,greedy,beam_lm}.jsonl  # outputs are appended per utterance
    if [ "$kind" = phoneme ]; then  # the phones themselves, for the phoneme error rate
      asr-decode "$model" "$data_dir/$split.jsonl" --search greedy --format jsonl \
        -o "$out/greedy_phones.jsonl"
    fi
    asr-decode "$model" "$data_dir/$split.jsonl" --search greedy --format jsonl \
      "${greedy_words[@]}" -o "$out/greedy.jsonl"
    asr-decode "$model" "$data_dir/$split.jsonl" --search beam --format jsonl \
      --lexicon "$lexicon" --lm "$data_dir/lm/lm.arpa" \
      --beam-size "$(cfg decode.beam_size 100)" --lm-weight "$(cfg decode.lm_weight 1.0)" \
      --word-score "$(cfg decode.word_score 0.0)" -o "$out/beam_lm.jsonl"
  done
}

stage_5() {  # asr-score drops <NOISE>, <SPOKEN_NOISE> and <UNK> on both sides, as Kaldi does
  for split in "$dev" "$test"; do
    for search in $searches; do
      local ref=$data_dir/$split.jsonl
      [ "$search" = greedy_phones ] && ref=$data_dir/$split.phones.jsonl
      asr-score "$ref" "$exp_dir/decode/$split/$search.jsonl" \
        --out-dir "$exp_dir/score/$split/$search"
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
run_stage 4 "decode $dev and $test (greedy and beam + LM)"
run_stage 5 "score and write RESULTS.md"
