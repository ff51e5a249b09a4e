"""Where do the front/back and elevation cues get lost? Probes of the model's inputs and of a trained model.

    python scripts/cue_probe.py [--data data/embedded] [--ckpt outputs/demo/checkpoint-last.pth] [--fusion]

Run by hand (about 3 minutes on 2 cores, 2 more with --ckpt). `scripts/embedded_bounds.py` asks
what the impulse responses themselves allow; this asks what survives in what the model hears.
Every training clip is heard once through a random training response and every evaluation clip
through its fixed one, as training and evaluation pair them (sources at the paper's -14 dBFS, as
the demo trains, or as the checkpoint's training heard them). Gradient-boosted trees, fitted on
the training rooms and scored on the held-out ones, then read:

- the time-averaged front end, the log-mel and IPD maps the model's fusion conv reads: front/back
  from each mel bin's level difference and IPD cos/sin; elevation from the spectral shape (the
  two ears' mean log-mel minus its mean over the bins), where the pinna notch lies;
- with --ckpt, the trained model's direction token (its CLS token after the encoder and the norm
  the direction heads read): what the encoder has extracted of those cues; and the mean of its
  patch tokens after the encoder, which no head reads: a cue found there but not in the direction
  token is one the encoder holds and the direction token does not gather;
- with --fusion, an untrained model's fusion block at its interaural start (eight channels, BatchNorm
  on each batch's statistics, as at the first training step): its level channel before and after
  the GELU, and its minus-level channel after it. The GELU squashes values below the channel's mean,
  where the high bands, and the pinna notch in them, lie: what the level channel keeps after it is
  what a seven-channel start hands the encoder of the notch.

Each row is split into the free-field conditions (anechoic and outdoor; the held-out one is
anechoic) and the rooms. Front/back is scored on sources 15
degrees or more off the frontal plane (chance 50 %); elevation beside the best constant, the
median training elevation.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset.metadata import load_class_table  # noqa: E402
from dataset.spatial_dataset import SpatialSoundDataset  # noqa: E402
from inference import UsageError, load_model  # noqa: E402
from models import frontend  # noqa: E402
from models.spatial_ast import DOA_TOKEN, build_AST_tiny, mean_patch_token  # noqa: E402
from util import metrics  # noqa: E402


def time_averaged_features(spec, mel, blocks=None):
    """[B, 4 * n_mels] of a binaural STFT [B, 2, frames, 513]: the spectral shape (the ears' mean
    log-mel, less its mean over the bins), the level difference (left minus right log-mel) and the
    IPD cos and sin, each averaged over time."""
    log_mel = frontend.log_mel(spec, mel, blocks).mean(dim=2)  # [B, 2, n_mels]
    level = log_mel.mean(dim=1)
    shape = level - level.mean(dim=-1, keepdim=True)
    ipd = frontend.interaural_phase(spec, mel, blocks).mean(dim=2)  # [B, 2, n_mels]: cos, sin
    return torch.cat([shape, log_mel[:, 0] - log_mel[:, 1], ipd.flatten(1)], dim=1)


@torch.no_grad()
def encoder_readouts(model, audio):
    """What the trained model holds, each [B, D]: its direction CLS token, normalised as its direction
    heads read it, and the mean of its patch tokens after the encoder, which no head reads: where the
    second carries a cue that the first lacks, the encoder has it and the direction token does not
    gather it."""
    tokens = model.encode(model.features(audio))
    return model.doa_norm(tokens[:, DOA_TOKEN]), mean_patch_token(tokens)


@torch.no_grad()
def fused_level(model, audio):
    """The fusion block's level channel (1) before its GELU and after it, and its minus-level channel
    (7) after it, each averaged over time: [B, 3, n_mels]. `model` is at the interaural start with
    eight fused channels; in training mode its BatchNorms use the batch's statistics."""
    before = model.conv_downsample[:2](model.features(audio))
    after = model.conv_downsample[2](before)
    return torch.stack([before[:, 1], after[:, 1], after[:, 7]], dim=1).mean(dim=2)


@torch.no_grad()
def heard(data, split, model=None, normalize=True, seed=0, fusion_model=None):
    """One pass over a split as the model hears it: a dict of "features" (time-averaged, [N, 512]),
    "tokens" and "patches" ([N, D], None without `model`), "fused" ([N, 3, n_mels], None without
    `fusion_model`), "spatial" (targets [N, 3]) and "free_field" ([N])."""
    classes = load_class_table(os.path.join(data, "class_labels_indices.csv"))
    dataset = SpatialSoundDataset(os.path.join(data, f"{split}.json"), os.path.join(data, "audio"), classes,
                                  os.path.join(data, f"{split}_reverberation.json"), data, "binaural",
                                  train=split == "train", normalize=normalize)
    with open(os.path.join(data, f"{split}_reverberation.json")) as f:
        free_field = np.array([e.get("condition") in ("anechoic", "outdoor") for e in json.load(f)["data"]])
    mel = frontend.mel_matrix()
    blocks, window = frontend.mel_blocks(mel), torch.hann_window(frontend.N_FFT)
    torch.manual_seed(seed)  # the training pass's random responses
    columns = {"features": [], "tokens": [], "patches": [], "fused": [], "spatial": [], "free_field": []}
    for waveforms, rirs, _, spatial, _, rir_index in DataLoader(dataset, batch_size=16, num_workers=1):
        audio = frontend.fft_convolve(waveforms, rirs)
        columns["features"].append(time_averaged_features(frontend.stft(audio, window), mel, blocks))
        if model is not None:
            token, patches = encoder_readouts(model, audio)
            columns["tokens"].append(token)
            columns["patches"].append(patches)
        if fusion_model is not None:
            columns["fused"].append(fused_level(fusion_model, audio))
        columns["spatial"].append(spatial)
        columns["free_field"].append(torch.from_numpy(free_field[rir_index.numpy()]))
    return {name: torch.cat(parts).numpy() if parts else None for name, parts in columns.items()}


def probe(train_x, train_spatial, eval_x, eval_spatial, eval_free_field, train_elevation_median):
    """Held-out front/back accuracy (%) and elevation MAE (deg), over all conditions, the free-field
    ones and the rooms."""
    def front_and_scored(spatial):
        frontal = metrics.frontal_degrees(*metrics.class_to_degrees(spatial[:, 1], spatial[:, 2]))
        return frontal > 0, metrics.front_back_scored(frontal)
    front, scored = front_and_scored(train_spatial)
    classifier = HistGradientBoostingClassifier(max_iter=300, random_state=0)
    predicted_front = classifier.fit(train_x[scored], front[scored]).predict(eval_x)
    regressor = HistGradientBoostingRegressor(max_iter=300, loss="absolute_error", random_state=0)
    predicted_elevation = regressor.fit(train_x, train_spatial[:, 2]).predict(eval_x)
    front, scored = front_and_scored(eval_spatial)
    rows = {}
    for name, subset in (("all", np.ones(len(eval_x), bool)), ("free field", eval_free_field),
                         ("rooms", ~eval_free_field)):
        right = predicted_front[subset & scored] == front[subset & scored]
        rows[name] = (100 * right.mean(), np.abs(predicted_elevation[subset] - eval_spatial[subset, 2]).mean(),
                      np.abs(train_elevation_median - eval_spatial[subset, 2]).mean())
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/embedded", help="an embedded dataset (python -m dataset.synthetic.generate)")
    p.add_argument("--ckpt", default="", help="also probe this binaural checkpoint's direction token")
    p.add_argument("--fusion", action="store_true",
                   help="also probe an untrained fusion block's level channel before and after its GELU")
    args = p.parse_args()
    model, normalize = None, True
    if args.ckpt:
        try:
            model, _, hearing = load_model(args.ckpt)
            model, normalize = model.eval(), hearing.normalize
        except UsageError as error:
            raise SystemExit(f"error: {error}") from None
        if model.num_channels != 2:
            raise SystemExit(f"error: {args.ckpt} takes {model.num_channels} input channel(s); this probe needs a "
                             f"binaural model")
    fusion_model = None
    if args.fusion:
        fusion_model = build_AST_tiny(fusion_channels=8)
        fusion_model.init_fusion_interaural()
        fusion_model.train()  # the BatchNorms on each batch's statistics, as at the first training step
    train = heard(args.data, "train", model, normalize, fusion_model=fusion_model)
    held_out = heard(args.data, "eval", model, normalize, fusion_model=fusion_model)
    median = np.median(train["spatial"][:, 2])
    inputs = {"spectral shape, level difference, IPD": slice(None), "spectral shape alone": slice(0, frontend.N_MELS),
              "level difference and IPD": slice(frontend.N_MELS, None)}
    readouts = [(f"time-averaged input: {name}", train["features"][:, s], held_out["features"][:, s])
                for name, s in inputs.items()]
    if model is not None:
        readouts.append(("the trained model's direction token", train["tokens"], held_out["tokens"]))
        readouts.append(("the trained model's patch tokens, averaged", train["patches"], held_out["patches"]))
    if fusion_model is not None:
        for k, name in enumerate(("level channel before the GELU", "level channel after the GELU",
                                  "minus-level channel after the GELU")):
            readouts.append((f"untrained fusion: {name}", train["fused"][:, k], held_out["fused"][:, k]))
    print(f"{len(train['features'])} training clips, {len(held_out['features'])} held-out "
          f"({int(held_out['free_field'].sum())} in free field); front/back in % (chance 50), elevation MAE in deg "
          f"(constant {median - 90:g} deg in brackets)")
    print(f"{'read from':<58} {'all':>16} {'free field':>16} {'rooms':>16}")
    for name, train_x, eval_x in readouts:
        rows = probe(train_x, train["spatial"], eval_x, held_out["spatial"], held_out["free_field"], median)
        print(f"{name:<58}" + "".join(f" {rows[k][0]:5.1f}% {rows[k][1]:4.1f} ({rows[k][2]:4.1f})" for k in rows))


if __name__ == "__main__":
    main()
