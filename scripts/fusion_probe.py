"""Does a from-scratch Spatial-AST hear direction? A side-by-side probe of the fusion conv.

    python scripts/fusion_probe.py [--data data/embedded] [--epochs 3] [--starts 1:random 1:interaural 4:interaural]
        [--audio_normalize]

Spatial-AST fuses left/right log-mel and IPD cos/sin into ONE channel with a 3x3 conv
before the patch embedding. From AudioMAE weights (upstream) the encoder already reads
log-mel images and 2M clips teach the conv the rest; from scratch on a small dataset,
level and interaural cues are confounded in that single channel. This probe measures
it (run by hand, minutes on a CPU): it computes the front-end features of fixed
(clip, RIR) pairs once, then trains the same tiny model on them once per start, side by
side, and prints held-out metrics after every epoch beside chance. A start is
FUSED_CHANNELS:INIT:
- `1:random`: the paper's one fused channel, default initialisation;
- `1:interaural`: one channel starting as left minus right log-mel, the interaural level
  difference alone (the sound's own spectrum cancels in it);
- `4:interaural`: four fused channels starting as level difference, level, IPD sin and
  cos (`SpatialAST.init_fusion_interaural`);
- `7:interaural`: those four plus their signed ones negated (right minus left, -sin, -cos),
  as the demo trains (the GELU after the fusion passes one sign of each channel).
Further fields: `:mean` reads the events from the mean of the patch tokens instead of their CLS
token (`--event_pool mean`), and `:prior` starts the event head at the training clips' class rates
(`--event_head_init prior`), e.g. `7:interaural:mean` or `7:interaural:prior`.
The loss is the demo's (soft direction/distance targets by default; `--direction_label_sigma 0
--distance_label_sigma 0` gives upstream's one-hot one). `--audio_normalize` scales every
source to the paper's -14 dBFS first, as the demo's training does. Each row also gives the
lateral-angle error of the direction heads' modes beside that of the posterior-mean
lateral angle the metrics use, and how many distinct azimuths the modes take.
"""
import argparse
import math
import os
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset.metadata import load_class_table  # noqa: E402
from dataset.spatial_dataset import SpatialSoundDataset  # noqa: E402
from engine_finetune import compute_loss, score  # noqa: E402
from main_finetune import patch_size_arg  # noqa: E402
from models import create_model, frontend  # noqa: E402
from util import metrics  # noqa: E402



def load_split(data, split, classes, train, normalize):
    return SpatialSoundDataset(f"{data}/{split}.json", f"{data}/audio", classes, f"{data}/{split}_reverberation.json",
                               data, "binaural", train=train, normalize=normalize)


@torch.no_grad()
def front_end_features(model, dataset, batch_size=16):
    """Features of one pass over `dataset` (train: random RIRs; eval: the fixed pairing), float16."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=1)
    columns = {"x": [], "labels": [], "spatial": []}
    for waveforms, rirs, labels, spatial, *_ in loader:
        columns["x"].append(model.features(frontend.fft_convolve(waveforms, rirs)).half())
        columns["labels"].append(labels)
        columns["spatial"].append(spatial)
    return {name: torch.cat(parts) for name, parts in columns.items()}


@torch.no_grad()
def held_out_metrics(model, data, batch_size=50):
    model.eval()
    outputs = [model.forward_features(data["x"][i:i + batch_size].float()) for i in range(0, len(data["x"]), batch_size)]
    model.train()
    events, distance, azimuth, elevation = (torch.cat(parts) for parts in zip(*outputs))
    predictions = {"scores": torch.sigmoid(events).numpy(), "labels": data["labels"].numpy(),
                   "distance_prob": distance.softmax(-1).numpy(), "azimuth_prob": azimuth.softmax(-1).numpy(),
                   "elevation_prob": elevation.softmax(-1).numpy(), "spatial": data["spatial"].numpy()}
    result, _ = score(predictions)
    spatial = predictions["spatial"]
    mode = metrics.spatial_metrics(azimuth.argmax(1).numpy(), elevation.argmax(1).numpy(), spatial[:, 1],
                                   spatial[:, 2], distance.argmax(1).numpy(), spatial[:, 0])
    result["argmax_lateral_MAE"] = mode["lateral_MAE"]
    result["argmax_distinct_azimuths"] = len(np.unique(azimuth.argmax(1).numpy()))
    return result


def parse_start(start):
    """FUSED_CHANNELS:INIT[:mean][:prior] -> (channels, init, events pool, event head init); SystemExit
    naming it if malformed."""
    parts = start.split(":")
    options = parts[2:]
    if (len(parts) < 2 or not parts[0].isdigit() or not 1 <= int(parts[0]) <= 8 or parts[1] not in ("random", "interaural")
            or len(set(options)) != len(options) or not set(options) <= {"cls", "mean", "prior"}
            or {"cls", "mean"} <= set(options)):
        raise SystemExit(f"error: --starts takes FUSED_CHANNELS:INIT[:mean][:prior] with FUSED_CHANNELS 1..8 and "
                         f"INIT random or interaural, got {start!r}")
    return (int(parts[0]), parts[1], "mean" if "mean" in options else "cls",
            "prior" if "prior" in options else "zero")


def train(start, train_data, eval_data, args):
    fused_channels, init, event_pool, event_head_init = parse_start(start)
    torch.manual_seed(args.seed)
    model = create_model("build_AST_tiny", num_classes=train_data["labels"].shape[1], patch_size=args.patch_size,
                         drop_path_rate=0.0, freqm=0, timem=0, fusion_channels=fused_channels,
                         event_pool=event_pool)
    if init == "interaural":
        model.init_fusion_interaural()
    if event_head_init == "prior":
        model.init_event_head_at_prior(train_data["labels"].double().mean(0))
    loss_args = SimpleNamespace(event_loss_weight=50.0, distance_loss_weight=1.0, direction_loss_weight=2.0,  # the demo's
                                direction_label_sigma=args.direction_label_sigma,
                                distance_label_sigma=args.distance_label_sigma)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.05)
    n = len(train_data["x"])
    steps_per_epoch = n // args.batch_size
    total, warmup, step = args.epochs * steps_per_epoch, max(1, args.epochs * steps_per_epoch // 20), 0
    began = time.time()
    for epoch in range(args.epochs):
        order = torch.randperm(n)
        for i in range(steps_per_epoch):
            lr = args.lr * min((step + 1) / warmup, 0.5 * (1 + math.cos(math.pi * step / total)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = order[i * args.batch_size:(i + 1) * args.batch_size]
            outputs = model.forward_features(train_data["x"][batch].float())
            loss, _ = compute_loss(outputs, train_data["labels"][batch], train_data["spatial"][batch], loss_args)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        print(f"{start:>12} epoch {epoch + 1}  {format_row(held_out_metrics(model, eval_data))}  "
              f"({time.time() - began:.0f} s)", flush=True)


ROW = ("mAP", "ER20", "MAE", "DER", "lateral_MAE", "front_back_accuracy")


def format_row(result):
    row = "  ".join(f"{key} {result[key]:6.2f}" for key in ROW)
    if "argmax_lateral_MAE" in result:
        row += (f"  | mode's lateral_MAE {result['argmax_lateral_MAE']:6.2f}, "
                f"{result['argmax_distinct_azimuths']} distinct azimuths")
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/embedded", help="an embedded dataset (python -m dataset.synthetic.generate)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--starts", nargs="+", default=["1:random", "1:interaural", "4:interaural"],
                   help="FUSED_CHANNELS:INIT[:mean][:prior], INIT random or interaural")
    p.add_argument("--patch_size", type=patch_size_arg, default=32,
                   help="N or TIMExFREQ; 32 (or 8x128): 128 tokens, 4x cheaper than the model's 16")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--direction_label_sigma", type=float, default=8.0, help="degrees, as the demo (0: one-hot)")
    p.add_argument("--distance_label_sigma", type=float, default=0.5, help="metres, as the demo (0: one-hot)")
    p.add_argument("--audio_normalize", action="store_true", help="scale every source to -14 dBFS, as the demo")
    args = p.parse_args()

    for start in args.starts:  # before minutes of feature extraction
        parse_start(start)
    classes = load_class_table(f"{args.data}/class_labels_indices.csv")
    train_set = load_split(args.data, "train", classes, True, args.audio_normalize)
    eval_set = load_split(args.data, "eval", classes, False, args.audio_normalize)
    torch.manual_seed(args.seed)
    feature_model = create_model("build_AST_tiny", num_classes=len(classes)).train()  # BN takes batch statistics
    # and averages them over the whole pass for the held-out features: the default momentum would
    # leave 0.9^k of the (0, 1) start after k batches, which a small dataset's k does not wash out
    feature_model.bn.momentum = None
    train_data = front_end_features(feature_model, train_set)
    eval_data = front_end_features(feature_model.eval(), eval_set)  # BN's running statistics from the pass above
    chance = metrics.chance_metrics(train_data["labels"].numpy(), *train_data["spatial"][:, [1, 2, 0]].numpy().T,
                                    eval_data["labels"].numpy(), *eval_data["spatial"][:, [1, 2, 0]].numpy().T)
    print(f"{'chance':>12}         {format_row(chance)}", flush=True)
    print(f"eval labels: {len(np.unique(eval_data['spatial'][:, 1].numpy()))} distinct azimuths", flush=True)
    for start in args.starts:
        train(start, train_data, eval_data, args)


if __name__ == "__main__":
    main()
