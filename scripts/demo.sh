#!/usr/bin/env bash
# The embedded demo, no downloads: generate a small binaural dataset, train a tiny Spatial-AST on it
# through torchrun, evaluate it on held-out rooms and print the metrics beside chance.
#   bash scripts/demo.sh [binaural|mono|ambisonics] [main_finetune.py flags...]
# Flags after the reverb type go to main_finetune.py after the recipe's, so they override it, e.g.
# `DEMO_OUT=outputs/demo-mixup bash scripts/demo.sh binaural --mixup 0.5` (docs/demo.md section 4).
# Re-running skips what is done: the environment, the dataset, and finished training (an interrupted
# run continues from its last checkpoint). Environment (defaults): DEMO_DATA (data/embedded),
# DEMO_OUT (outputs/demo, outputs/demo-mono, outputs/demo-ambisonics), DEMO_EPOCHS (7), DEMO_SEED (0; the
# training seed, the data stays the same), DEMO_PATCH (32; or TIMExFREQ, e.g. 8x128),
# NPROC_PER_NODE (GPUs, else CPU cores). DEMO_PATCH=8x128 [DEMO_EPOCHS=14] reruns docs/demo.md
# section 4's patch and training-length runs. The same rooms,
# positions, clips and recipe for all three; only the input and its fusion start differ. Binaural and
# mono share data/embedded; ambisonics generates data/embedded-ambisonics with the same seed (the same
# data plus ambisonics/), so that the binaural demo does not pay for ambisonic RIRs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"

REVERB_TYPE="${1:-binaural}"
EXTRA_FLAGS=("${@:2}")
DEFAULT_DATA="$REPO/data/embedded"; GENERATE=()
case "$REVERB_TYPE" in
    binaural) DEFAULT_OUT="$REPO/outputs/demo"; FUSION=(--fusion_channels 7 --fusion_init interaural) ;;
    mono) DEFAULT_OUT="$REPO/outputs/demo-mono"; FUSION=(--fusion_channels 1 --fusion_init random) ;;
    # second-order ambisonics: seven fused channels, W's level, the intensity's x, y, z and their negatives
    ambisonics) DEFAULT_OUT="$REPO/outputs/demo-ambisonics"; FUSION=(--fusion_channels 7 --fusion_init intensity)
                DEFAULT_DATA="$REPO/data/embedded-ambisonics"; GENERATE=(--ambisonic_order 2) ;;
    *) echo "error: the argument is the reverb type, 'binaural', 'mono' or 'ambisonics' (got '$REVERB_TYPE')" >&2
       exit 2 ;;
esac
DATA="${DEMO_DATA:-$DEFAULT_DATA}"
OUT="${DEMO_OUT:-$DEFAULT_OUT}"
EPOCHS="${DEMO_EPOCHS:-7}"
SEED="${DEMO_SEED:-0}"
PATCH="${DEMO_PATCH:-32}"

# 1. Data: free field to reverberant rooms, random heads; ~40 s on 2 cores (binaural and mono; several
#    times that with ambisonics), skipped when DATA already holds it.
"$PY" -m dataset.synthetic.generate --out "$DATA" "${GENERATE[@]}"

# 2. Processes: one per GPU, else one single-threaded process per CPU core. bf16 only on
#    GPUs: on CPUs without native bf16 matrix units it is several times slower than fp32.
GPUS="$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || true)"  # CUDA_VISIBLE_DEVICES applies
if [ "${GPUS:-0}" -gt 0 ]; then
    NPROC="${NPROC_PER_NODE:-$GPUS}"; AMP=bf16
else
    NPROC="${NPROC_PER_NODE:-$(nproc)}"; AMP=none; export OMP_NUM_THREADS=1
fi
DATA_FLAGS=(--audio_path_root "$DATA/audio" --label_csv "$DATA/class_labels_indices.csv" --nb_classes 14
            --audioset_train "$DATA/train.json" --audioset_eval "$DATA/eval.json"
            --reverb_path_root "$DATA" --reverb_type "$REVERB_TYPE"
            --reverb_train "$DATA/train_reverberation.json" --reverb_val "$DATA/eval_reverberation.json")

# 3. Train from scratch, a small configuration that learns within minutes (scripts/fusion_probe.py
#    and the README's demo section give the measurements behind each choice):
#    - tiny encoder on 32x32 patches (128 tokens): ~4x cheaper than the paper's 512 tokens;
#    - binaural: seven fused channels that start as level difference, level, IPD sin and cos, then
#      the negatives of the signed ones (ambisonics: W's level, intensity x, y, z, -x, -y, -z); the
#      paper's single channel confounds level and interaural cues when trained from scratch, and the
#      GELU after the fusion squashes negative values, so each sign of a cue gets its own channel;
#    - Gaussian soft targets over neighbouring direction and distance bins;
#    - every source at the paper's -14 dBFS (--audio_normalize), so that the level reaching the ears
#      is a distance cue: side by side on fixed features it learnt distance, events and the lateral
#      angle faster (docs/demo.md);
#    - 8 clips per process: the input BatchNorm normalises each ear with its own batch statistics,
#      and over fewer clips the batch's mean level difference, i.e. direction, is subtracted away;
#    - the events weight is upstream's 1250 rescaled from 355 to 14 classes (the BCE is a mean
#      over classes), so events do not drown the spatial losses; no SpecAugment; lr 1.5e-3;
#    - the event head starts at the training clips' class rates (--event_head_init prior): from
#      p = 0.5 it spends the run's first epochs learning "less of every class" (docs/demo.md);
#    - 7 epochs: about 12-14 minutes of training on 2 CPU cores; over three seeds their medians beat
#      6 epochs' on events, lateral angle and distance (docs/demo.md);
#    - held-out evaluation after epochs 3-7 only (--first_eval_ep 2): each costs ~12 s on 2 cores, and
#      evaluation draws nothing from the training's random numbers, so the run trains the same.
MODEL_FLAGS=(--model build_AST_tiny --patch_size "$PATCH" --amp "$AMP")
RESUME=()
[ -f "$OUT/checkpoint-last.pth" ] && RESUME=(--resume "$OUT/checkpoint-last.pth")
"$PY" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" main_finetune.py "${DATA_FLAGS[@]}" \
    "${MODEL_FLAGS[@]}" "${FUSION[@]}" --direction_label_sigma 8 --distance_label_sigma 0.5 --audio_normalize \
    --batch_size 8 --epochs "$EPOCHS" --warmup_epochs 0.3 \
    --blr 2.4e-2 --freqm 0 --timem 0 --layer_decay 1.0 --weight_decay 0.05 --drop_path 0 \
    --event_loss_weight 50 --event_head_init prior \
    --num_workers 1 --dist_eval --first_eval_ep 2 --dataset embedded --seed "$SEED" --output_dir "$OUT" \
    "${RESUME[@]}" "${EXTRA_FLAGS[@]}"

# 4. The last epoch's evaluation, on the held-out rooms, wrote metrics.json (with chance) and the
#    report: the final model's, not checkpoint-best.pth's (that epoch was chosen by mAP on these same
#    rooms). The table and the training curves:
"$PY" -m util.summary "$OUT"
