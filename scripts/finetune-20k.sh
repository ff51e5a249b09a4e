#!/usr/bin/env bash
# Fine-tune AudioMAE on AudioSet-20K (balanced) heard through mp3d_reverb rooms.
#   bash scripts/finetune-20k.sh [binaural|mono|ambisonics]
# Environment: as scripts/finetune-2m.sh, with TRAIN_JSON ($METADATA/balanced.json) and
#   OUTPUT_DIR (outputs/finetune-20k/<reverb type>); no sampling weights.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
TRAIN_JSON="${TRAIN_JSON:-$METADATA/balanced.json}"
CKPT="${CKPT:-$DATA_ROOT/pretrained/pretrained.pth}"
OUTPUT_DIR="${OUTPUT_DIR:-$REPO/outputs/finetune-20k/$REVERB_TYPE}"
for f in "$TRAIN_JSON:AudioSet-20K clip list" "$EVAL_JSON:AudioSet eval clip list" "$LABEL_CSV:355-class csv" \
         "$REVERB_TRAIN:mp3d_reverb train json" "$CKPT:AudioMAE pretrained checkpoint"; do
    require "${f%%:*}" "${f#*:}"
done

resume_args

# Upstream's hyper-parameters: blr 1e-3 at 64 clips per GPU, 50 epochs, 5 warm-up, -14 dBFS clips.
# Clips without audio (a partial download) are skipped and listed in OUTPUT_DIR/missing_clips.txt.
launch --model build_AST --finetune "$CKPT" --audioset_train "$TRAIN_JSON" \
    --blr 1e-3 --batch_size 64 --epochs 50 --warmup_epochs 5 --first_eval_ep 0 \
    --mixup 0.5 --roll_mag_aug --mask_t_prob 0.25 --mask_f_prob 0.25 --mask_2d --audio_normalize \
    --missing_audio skip "${RESUME[@]}"
