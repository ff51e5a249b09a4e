#!/usr/bin/env bash
# Evaluate a checkpoint on the AudioSet eval clips heard through the mp3d_reverb eval rooms.
#   CKPT=path/to/finetuned.pth bash scripts/inf.sh [binaural|mono|ambisonics]
# Environment: as scripts/finetune-2m.sh, with CKPT ($DATA_ROOT/SpatialAST/finetuned.pth, the
#   published model) and OUTPUT_DIR (outputs/eval/<reverb type>). Writes metrics.json and the report.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CKPT="${CKPT:-$DATA_ROOT/SpatialAST/finetuned.pth}"
OUTPUT_DIR="${OUTPUT_DIR:-$REPO/outputs/eval/$REVERB_TYPE}"
for f in "$EVAL_JSON:AudioSet eval clip list" "$LABEL_CSV:355-class csv" "$REVERB_VAL:mp3d_reverb eval json" \
         "$CKPT:checkpoint to evaluate"; do require "${f%%:*}" "${f#*:}"; done

launch --model build_AST --eval --finetune "$CKPT" --batch_size 64 --audio_normalize
