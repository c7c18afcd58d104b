#!/usr/bin/env bash
# One-shot check of the GPU path on a machine with one CUDA GPU that has nothing but its image (torch,
# transformers, accelerate...; no registry, no ../shared), this checkout and the git-ignored folder
# gpu_assets/ (benchmarks/write_gpu_assets.py writes it here; PYTHON-SETUP.md gives the device call):
#   preflight     packages, this checkout's modelzoo, CUDA, the assets: seconds; the run stops if it fails
#   parity        our model against Hugging Face's (gpu_parity.py: float32 and bfloat16 logits)
#   model_step_*  training-step speed and MFU in bfloat16, ours against HF (model_step.py), a step a model
#   data          BC5CDR-chem as CSV for MiniLM's vocab (write_csv_ner.py)
#   weights       the bfloat16-stored MiniLM as a 7-label token classifier (convert_checkpoint)
#   finetune      a packed bfloat16 `run.py GPU` fine-tune, runconfig.compile: true: loss and dev entity F1
#   torchrun      `torchrun --nproc_per_node 1 run.py GPU`, a few steps (a process group of one, NCCL)
# Every step has its own time limit and runs whatever happened before it: a timeout or a failure is
# that step's row in the table, never the end of the script. All steps share a deadline
# (GPU_CHECK_BUDGET_S, 430 s), so the script ends within 8 minutes. Big files (CSV, checkpoints) go
# to --work (a new temporary folder); --out gets table.txt, report.json and logs.txt, rewritten
# after every step, so that a run cut short still reports.
#
#   bash benchmarks/gpu_check.sh --out DIR             # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry-run --out DIR   # the same commands on CPU at tiny sizes
# Options: --work DIR; --steps A,B (only these steps after the preflight); --limit STEP=SECONDS (that
# step's time limit). Environment: PYTHON (default python3), GPU_ASSETS (default gpu_assets/ here).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

usage() {
    echo "usage: bash benchmarks/gpu_check.sh [--dry-run] [--out DIR] [--work DIR] [--steps A,B] [--limit STEP=SECONDS]" >&2
    exit 2
}
DRY_RUN=0 REPORT="" WORK="" ONLY=""
declare -A LIMITS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --out) [[ $# -ge 2 ]] || usage; REPORT=$2; shift ;;
        --work) [[ $# -ge 2 ]] || usage; WORK=$2; shift ;;
        --steps) [[ $# -ge 2 ]] || usage; ONLY=",$2,"; shift ;;
        --limit) [[ $# -ge 2 && $2 =~ ^([A-Za-z0-9_-]+)=([0-9]+)$ ]] || usage
                 LIMITS[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}; shift ;;
        *) usage ;;
    esac
    shift
done
PYTHON=${PYTHON:-python3}
ASSETS=${GPU_ASSETS:-$ROOT/gpu_assets}
REPORT=${REPORT:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_report.XXXXXX")}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_work.XXXXXX")}
mkdir -p "$REPORT" "$WORK" || exit 2
REPORT=$(cd "$REPORT" && pwd) WORK=$(cd "$WORK" && pwd)
rm -rf "$WORK/steps" "$WORK/results" "$WORK/csv" "$WORK/weights" "$WORK/finetune" "$WORK/torchrun"  # a reused --work
mkdir -p "$WORK/steps" "$WORK/results"

if [[ $DRY_RUN == 1 ]]; then
    DEVICE=cpu TARGET=CPU MODELS="tiny" SEQ_LEN=32 STEP_OPTIONS="--batch_size 4 --repeats 1 --warmup 1 --skip_hf_compiled"
    COMPILE=false  # inductor's C++ build would dominate a CPU dry run; the GPU run compiles
    PRECISION=auto  # float32 on a CPU without bfloat16 arithmetic: emulated bfloat16 would make MiniLM crawl
    MAX_LENGTH=64 BATCH=4 MAX_STEPS=8 WARMUP=1 PEAK_LR=1.0e-3 LOG_STEPS=1 TORCHRUN_STEPS=2
    SCALE=6  # time limits x6: a shared CPU, MiniLM in the rehearsal; no 8-minute promise
else
    DEVICE=cuda TARGET=GPU MODELS="minilm-l6 bert-base" SEQ_LEN=128 STEP_OPTIONS="--batch_size 64 --repeats 20 --warmup 3"
    COMPILE=true PRECISION=bfloat16
    MAX_LENGTH=128 BATCH=32 MAX_STEPS=150 WARMUP=15 PEAK_LR=1.0e-4 LOG_STEPS=10 TORCHRUN_STEPS=5
    SCALE=1
fi
declare -A MODEL_STEP_LIMIT=([tiny]=60 [minilm-l6]=110 [bert-base]=140)  # seconds; the two torch.compile builds are most of it
BUDGET=$((${GPU_CHECK_BUDGET_S:-430} * SCALE)) MIN_STEP_S=10
DEADLINE=$((SECONDS + BUDGET)) INDEX=0

record() {  # record NAME EXIT_CODE|null SECONDS LIMIT_S NOTE: the step's JSON, written as it finishes
    printf '{"step": "%s", "index": %d, "exit_code": %s, "seconds": %d, "limit_s": %d, "note": "%s"}\n' \
        "$1" "$INDEX" "$2" "$3" "$4" "$5" > "$WORK/steps/$1.json"
}
refresh() {  # the report folder after every step: a run cut short still reports
    "$PYTHON" benchmarks/gpu_summary.py "$WORK" --report "$REPORT" --quiet
}
step() {  # step NAME LIMIT_S [--needs FILE]... COMMAND...: COMMAND under its limit, output to WORK/steps/NAME.log
    local name=$1 limit=$(($2 * SCALE)) started=$SECONDS left code needed
    shift 2
    local needs=()
    while [[ ${1:-} == --needs ]]; do needs+=("$2"); shift 2; done
    [[ -z $ONLY || $ONLY == *",$name,"* || $name == preflight ]] || return 0
    INDEX=$((INDEX + 1))
    limit=${LIMITS[$name]:-$limit}
    left=$((DEADLINE - SECONDS))
    for needed in ${needs[@]+"${needs[@]}"}; do
        if [[ ! -e $needed ]]; then
            record "$name" null 0 "$limit" "needs $needed, which an earlier step did not write"; refresh; return 1
        fi
    done
    if ((left < MIN_STEP_S)); then
        record "$name" null 0 "$limit" "no time left of the $BUDGET s budget"; refresh; return 1
    fi
    ((limit > left)) && limit=$left
    echo "== $name (limit $limit s): $*"
    { printf '$'; printf ' %q' "$@"; printf '\n'; } > "$WORK/steps/$name.log"
    timeout --kill-after=5 "$limit" "$@" >> "$WORK/steps/$name.log" 2>&1
    code=$?
    record "$name" "$code" $((SECONDS - started)) "$limit" ""
    tr '\r' '\n' < "$WORK/steps/$name.log" | grep -v '^[[:space:]]*$' | tail -n 3
    refresh
    return $code
}

if ! step preflight 20 "$PYTHON" benchmarks/gpu_preflight.py --device $DEVICE --assets "$ASSETS" --work "$WORK" \
        --json "$WORK/results/preflight.json"; then
    "$PYTHON" benchmarks/gpu_summary.py "$WORK" --report "$REPORT"
    echo "error: the preflight failed (above): nothing else was started" >&2
    exit 2
fi
# The fine-tune's model is the carried one's shape (MiniLM, or the dry run's tiny stand-in).
MODEL_SHAPE=$("$PYTHON" -c 'import json, sys; print("{hidden_size: %(hidden_size)d, num_hidden_layers: %(num_hidden_layers)d, '\
'num_heads: %(num_attention_heads)d, filter_size: %(intermediate_size)d, vocab_size: %(vocab_size)d, '\
'max_position_embeddings: %(max_position_embeddings)d, num_classes: 7}" % json.load(open(sys.argv[1])))' \
    "$ASSETS/model/config.json")

# shellcheck disable=SC2086  # MODELS is words on purpose
step parity 35 "$PYTHON" benchmarks/gpu_parity.py --device $DEVICE --models $MODELS --seq-len $SEQ_LEN \
    --json "$WORK/results/parity.json"
for model in $MODELS; do
    # shellcheck disable=SC2086
    step "model_step_$model" "${MODEL_STEP_LIMIT[$model]}" "$PYTHON" benchmarks/model_step.py --device $DEVICE \
        --dtype bfloat16 --models "$model" --seq-len $SEQ_LEN $STEP_OPTIONS --json "$WORK/results/model_step_$model.json"
done
# Entity types stripped: 7 labels whatever the corpus.
step data 25 "$PYTHON" data_processing/write_csv_ner.py --data_dir "$ASSETS/ner" --vocab_file "$ASSETS/model/vocab.txt" \
    --output_dir "$WORK/csv" --do_lower_case --strip_entity_types --max_seq_length $MAX_LENGTH
step weights 20 "$PYTHON" -m modelzoo.tools.convert_checkpoint convert "$ASSETS/model" --src-fmt hf --tgt-fmt modelzoo \
    --output-dir "$WORK/weights" --num-labels 7 --drop-unmatched-keys

write_params() {  # write_params FILE MAX_STEPS WARMUP_STEPS COMPILE: the packed fine-tune's params
    cat > "$1" <<EOF
# Written by benchmarks/gpu_check.sh: packed $PRECISION fine-tune, torch.compile $4.
train_input: {data_dir: $WORK/csv/train, vocab_file: $ASSETS/model/vocab.txt, max_sequence_length: $MAX_LENGTH,
              batch_size: $BATCH, shuffle: true, shuffle_seed: 1, drop_last: true, packing: true, max_sequences_per_pack: 6}
eval_input: {data_dir: $WORK/csv/dev, vocab_file: $ASSETS/model/vocab.txt, max_sequence_length: $MAX_LENGTH,
             batch_size: 64, shuffle: false, packing: true, max_sequences_per_pack: 6}
model: $MODEL_SHAPE
optimizer:
  optimizer_type: adamw
  weight_decay: 0.01
  max_gradient_norm: 1.0
  learning_rate:
    - {scheduler: Linear, initial_learning_rate: 0.0, end_learning_rate: $PEAK_LR, total_iters: $3}
    - {scheduler: Linear, initial_learning_rate: $PEAK_LR, end_learning_rate: 0.0, total_iters: $(($2 - $3))}
runconfig: {max_steps: $2, log_steps: $LOG_STEPS, save_checkpoints_steps: 0, keep_checkpoint_max: 1, seed: 1,
            precision: $PRECISION, compile: $4}
EOF
}
write_params "$WORK/finetune.yaml" $MAX_STEPS $WARMUP $COMPILE
step finetune 150 --needs "$WORK/csv/train" --needs "$WORK/weights/model.mdl" \
    "$PYTHON" run.py $TARGET --mode train_and_eval --params "$WORK/finetune.yaml" --model_dir "$WORK/finetune" \
    --checkpoint_path "$WORK/weights/model.mdl" --load_checkpoint_states model
write_params "$WORK/torchrun.yaml" $TORCHRUN_STEPS 1 false  # the launch path from random weights, not compilation
step torchrun 45 --needs "$WORK/csv/train" \
    "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node 1 run.py $TARGET --mode train \
    --params "$WORK/torchrun.yaml" --model_dir "$WORK/torchrun"

"$PYTHON" benchmarks/gpu_summary.py "$WORK" --report "$REPORT"
