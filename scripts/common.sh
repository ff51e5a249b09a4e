# Shared by the recipe scripts: reverb type argument, data paths, checks and the torchrun launch.
# Every path is an environment variable with a default below; override any of them.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$REPO/.venv/bin/python" ]; then PY="${PY:-$REPO/.venv/bin/python}"; else PY="${PY:-python}"; fi
source "$REPO/scripts/allocator.sh"

REVERB_TYPE="${1:-binaural}"
case "$REVERB_TYPE" in
    binaural|mono|ambisonics) ;;  # ambisonics: $REVERB_ROOT/ambisonics/<fname>, ACN/SN3D (docs/ambisonics.md)
    *) echo "error: the first argument is the reverb type, 'binaural', 'mono' or 'ambisonics' (got '$REVERB_TYPE')" >&2
       [ -f "$REVERB_TYPE" ] && echo "       a checkpoint goes in the environment: CKPT=$REVERB_TYPE bash $0 binaural" >&2
       exit 2 ;;
esac

# Layout of the SpatialAudio dataset on the Hugging Face hub (zhisheng01/SpatialAudio), unzipped.
DATA_ROOT="${DATA_ROOT:-$REPO/data/SpatialAudio}"
AUDIO_PATH_ROOT="${AUDIO_PATH_ROOT:-$DATA_ROOT/SpatialSoundQA/AudioSet}"
METADATA="${METADATA:-$AUDIO_PATH_ROOT/metadata}"
LABEL_CSV="${LABEL_CSV:-$METADATA/class_labels_indices_subset.csv}"
EVAL_JSON="${EVAL_JSON:-$METADATA/eval.json}"
REVERB_ROOT="${REVERB_ROOT:-$DATA_ROOT/SpatialSoundQA/mp3d_reverb}"
REVERB_TRAIN="${REVERB_TRAIN:-$REVERB_ROOT/train_reverberation.json}"
REVERB_VAL="${REVERB_VAL:-$REVERB_ROOT/eval_reverberation.json}"

# Processes: one per visible GPU on this node (torch counts them, so CUDA_VISIBLE_DEVICES applies;
# one process on a CPU-only machine); NNODES > 1 needs NODE_RANK and MASTER_ADDR on every node
# (torchrun's static rendezvous).
if [ -z "${NPROC_PER_NODE:-}" ]; then
    NPROC_PER_NODE="$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || true)"
    [ "$NPROC_PER_NODE" -gt 0 ] 2>/dev/null || NPROC_PER_NODE=1
fi
NNODES="${NNODES:-1}"
AMP="${AMP:-bf16}"
NUM_WORKERS="${NUM_WORKERS:-4}"
CHECK_FILES="${CHECK_FILES:-all}"  # none: skip the start-up existence checks (slow network file systems)

require() {  # require PATH WHAT: stop with one message saying what to download and where
    if [ ! -e "$1" ]; then
        echo "error: $2 not found at $1" >&2
        echo "       Download it as described in README.md ('Data'), or set the variable named at the top of $0." >&2
        exit 2
    fi
}

launch() {  # launch ARGS...: main_finetune.py under torchrun with this script's node settings
    # One process needs no torchrun, whose own traceback would follow a one-line error.
    local runner=("$PY" -m torch.distributed.run --standalone --nproc_per_node "$NPROC_PER_NODE")
    if [ "$NNODES" -gt 1 ]; then
        runner=("$PY" -m torch.distributed.run --nproc_per_node "$NPROC_PER_NODE"
                --nnodes "$NNODES" --node_rank "${NODE_RANK:?set NODE_RANK on every node}"
                --master_addr "${MASTER_ADDR:?set MASTER_ADDR to node 0}" --master_port "${MASTER_PORT:-29500}")
    elif [ "$NPROC_PER_NODE" -eq 1 ]; then
        runner=("$PY")
    fi
    mkdir -p "$OUTPUT_DIR"
    set -x
    "${runner[@]}" "$REPO/main_finetune.py" \
        --audio_path_root "$AUDIO_PATH_ROOT" --label_csv "$LABEL_CSV" --audioset_eval "$EVAL_JSON" \
        --reverb_path_root "$REVERB_ROOT" --reverb_type "$REVERB_TYPE" \
        --reverb_train "$REVERB_TRAIN" --reverb_val "$REVERB_VAL" \
        --output_dir "$OUTPUT_DIR" --log_dir "$OUTPUT_DIR/tensorboard" \
        --amp "$AMP" --num_workers "$NUM_WORKERS" --check_files "$CHECK_FILES" --nb_classes 355 --dist_eval "$@"
}

resume_args() {  # sets RESUME: continue an interrupted run in OUTPUT_DIR instead of starting over
    RESUME=()
    if [ -f "$OUTPUT_DIR/checkpoint-last.pth" ]; then RESUME=(--resume "$OUTPUT_DIR/checkpoint-last.pth"); fi
}
