#!/usr/bin/env bash
# The paper's recipe: fine-tune AudioMAE on AudioSet-2M (unbalanced) heard through mp3d_reverb rooms.
#   bash scripts/finetune-2m.sh [binaural|mono|ambisonics]
# Environment (defaults): DATA_ROOT (./data/SpatialAudio), AUDIO_PATH_ROOT, LABEL_CSV, EVAL_JSON,
#   REVERB_ROOT and the reverb jsons (see scripts/common.sh), TRAIN_JSON ($METADATA/unbalanced.json),
#   WEIGHT_CSV ($METADATA/weights/unbalanced_weight.csv), CKPT (AudioMAE pretrained.pth,
#   $DATA_ROOT/pretrained/pretrained.pth), OUTPUT_DIR (outputs/finetune-2m/<reverb type>),
#   NPROC_PER_NODE (GPUs on this node), NNODES (1), NODE_RANK, MASTER_ADDR, MASTER_PORT,
#   AMP (bf16), NUM_WORKERS (4), CHECK_FILES (all; none skips the start-up file checks).
#   Re-running continues from OUTPUT_DIR/checkpoint-last.pth.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
TRAIN_JSON="${TRAIN_JSON:-$METADATA/unbalanced.json}"
WEIGHT_CSV="${WEIGHT_CSV:-$METADATA/weights/unbalanced_weight.csv}"
CKPT="${CKPT:-$DATA_ROOT/pretrained/pretrained.pth}"
OUTPUT_DIR="${OUTPUT_DIR:-$REPO/outputs/finetune-2m/$REVERB_TYPE}"
for f in "$TRAIN_JSON:AudioSet-2M clip list" "$EVAL_JSON:AudioSet eval clip list" "$LABEL_CSV:355-class csv" \
         "$WEIGHT_CSV:AudioSet-2M sampling weights" "$REVERB_TRAIN:mp3d_reverb train json" \
         "$CKPT:AudioMAE pretrained checkpoint"; do require "${f%%:*}" "${f#*:}"; done

resume_args

# Upstream's hyper-parameters: blr 1e-3 at 64 clips per GPU, 100 epochs of 200k weighted draws,
# 10 warm-up epochs, mixup 0.5, 25 % of token rows and columns dropped, -14 dBFS clips. Every AudioSet download is
# partial: clips without audio are skipped and listed in OUTPUT_DIR/missing_clips.txt.
launch --model build_AST --finetune "$CKPT" --audioset_train "$TRAIN_JSON" --weight_csv "$WEIGHT_CSV" \
    --blr 1e-3 --batch_size 64 --epochs 100 --warmup_epochs 10 --first_eval_ep 0 \
    --mixup 0.5 --roll_mag_aug --mask_t_prob 0.25 --mask_f_prob 0.25 --mask_2d --audio_normalize \
    --weight_sampler --distributed_wrapper --epoch_len 200000 --missing_audio skip "${RESUME[@]}"
