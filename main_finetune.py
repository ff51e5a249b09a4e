"""Fine-tune or evaluate Spatial-AST.

One process:   python main_finetune.py --audioset_train ... [--eval]
Many:          torchrun --nproc_per_node N main_finetune.py ...
See scripts/ for the paper's recipes and README.md for the data layout.
"""
import argparse
import datetime
import json
import logging
import os
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

import engine_finetune as engine
from dataset.ambisonics import ORDER_OF_CHANNELS as AMBISONIC_CHANNELS, order_of as ambisonic_order
from dataset.audio import RIR_CHANNELS, DataError
from dataset.metadata import load_class_table, load_clip_weights, load_room_impulses
from dataset.samplers import WeightedDistributedSampler
from dataset.spatial_dataset import SpatialSoundDataset
from models import MODELS, create_model
from models.spatial_ast import EVENT_POOLS, FEATURE_MAPS, patch_size_name, token_grid
from util import dist, metrics
from util.checkpoint import (CheckpointError, checkpoint_args, describe_error, load_checkpoint, load_pretrained,
                              load_weights_strictly, save_checkpoint)
from util.lr import param_groups_layer_decay
from util.report import write_eval_report

log = logging.getLogger("spatial_ast")


def patch_size_arg(text):
    try:
        return patch_size_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def get_args_parser():
    p = argparse.ArgumentParser("Spatial-AST fine-tuning and evaluation")
    # optimisation
    p.add_argument("--batch_size", type=int, default=4, help="batch size per process")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--accum_iter", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--lr", type=float, default=None, help="absolute learning rate (default: blr * batch / 256)")
    p.add_argument("--blr", type=float, default=2e-3, help="base lr: lr = blr * effective batch / 256")
    p.add_argument("--min_lr", type=float, default=1e-6, help="lr at the end of the cosine")
    p.add_argument("--warmup_epochs", type=float, default=4)
    p.add_argument("--layer_decay", type=float, default=0.75, help="layer-wise lr decay (BEiT)")
    p.add_argument("--head_lr_scale", type=float, default=1.0,
                   help="the four linear heads' lr as a multiple of the top layer's (1: upstream's; "
                        "docs/demo.md section 4 measures 10 on the demo)")
    p.add_argument("--weight_decay", type=float, default=5e-4)
    p.add_argument("--clip_grad", type=float, default=None, help="gradient norm clip (default: off)")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none",
                   help="autocast precision; fp16 adds a GradScaler")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the training model (off by default until measured on a GPU: docs/gpu.md)")
    p.add_argument("--event_loss_weight", type=float, default=1250.0)
    p.add_argument("--distance_loss_weight", type=float, default=1.0)
    p.add_argument("--direction_loss_weight", type=float, default=2.0, help="weight of azimuth + elevation CE")
    p.add_argument("--elevation_loss_weight", type=float, default=None,
                   help="weight of the elevation CE alone (default: --direction_loss_weight); the demo's "
                        "elevation is learnt at 8 in both measured seeds (docs/demo.md section 4)")
    p.add_argument("--direction_label_sigma", type=float, default=0.0,
                   help="degrees: Gaussian soft targets over azimuth (circular) and elevation classes "
                        "(0: one-hot, as upstream)")
    p.add_argument("--distance_label_sigma", type=float, default=0.0,
                   help="metres: Gaussian soft targets over distance classes (0: one-hot, as upstream)")
    # model
    p.add_argument("--model", default="build_AST", choices=sorted(MODELS))
    p.add_argument("--nb_classes", type=int, default=355, help="must match the class csv")
    p.add_argument("--patch_size", type=patch_size_arg, default=16,
                   help="N (square) or TIMExFREQ (frames x mel bins): 16 is the paper's 512 tokens; 32 and "
                        "8x128 give 128 tokens, ~4x cheaper, for small runs")
    p.add_argument("--drop_path", type=float, default=0.1)
    p.add_argument("--freqm", type=int, default=48, help="SpecAugment frequency mask width (0: off)")
    p.add_argument("--timem", type=int, default=192, help="SpecAugment time mask width (0: off)")
    p.add_argument("--mask_t_prob", type=float, default=0.0, help="share of time rows of tokens dropped")
    p.add_argument("--mask_f_prob", type=float, default=0.0, help="share of frequency columns of tokens dropped")
    p.add_argument("--mask_2d", action=argparse.BooleanOptionalAction, default=True,
                   help="drop whole token rows/columns (default) or, with --no-mask_2d, "
                        "random tokens at rate mask_t_prob")
    p.add_argument("--fusion_channels", type=int, default=1,
                   help="channels the 3x3 conv fuses the feature maps into: 1 (the paper's model, needed for "
                        "its checkpoints) up to 8 binaural / 2 mono / 7 or 12 ambisonics (first or second order); "
                        "more keep level and spatial cues apart")
    p.add_argument("--fusion_init", choices=["random", "interaural", "intensity"], default="random",
                   help="start of the fusion conv when training from scratch: random (upstream), interaural "
                        "(level difference, then level, IPD sin and cos, then right minus left, -sin, -cos, -level, "
                        "one per fused channel; binaural only) or intensity (W level, then intensity x, y, z, -x, -y, "
                        "-z; ambisonics only)")
    p.add_argument("--event_pool", choices=list(EVENT_POOLS), default="cls",
                   help="what the events head reads: its CLS token (cls, the paper's model) or the mean of the "
                        "patch tokens (mean, AudioMAE's fine-tuning pool), which every token feeds from the start; "
                        "the same weights either way")
    p.add_argument("--event_head_init", choices=["zero", "prior"], default="zero",
                   help="start of the event head's bias when training: zero (upstream; every class at p = 0.5) "
                        "or prior (each class's rate among the training clips, which a short run from scratch "
                        "otherwise spends its first epochs learning; docs/demo.md); a loaded head replaces it")
    p.add_argument("--finetune", default="", help="initialise from an AudioMAE or Spatial-AST checkpoint")
    p.add_argument("--resume", default="", help="continue a run from its checkpoint-last.pth")
    p.add_argument("--start_epoch", type=int, default=0)
    # data
    p.add_argument("--dataset", default="audioset", help="dataset name, recorded with the results")
    p.add_argument("--audio_path_root", default="", help="folder holding <folder>/<id>.wav")
    p.add_argument("--audioset_train", default="", help="training clip json")
    p.add_argument("--audioset_eval", default="", help="evaluation clip json")
    p.add_argument("--label_csv", default="", help="class csv: index,mid,display_name")
    p.add_argument("--weight_csv", default="", help="per-clip sampling weights (with --weight_sampler)")
    p.add_argument("--reverb_path_root", default="", help="folder holding <reverb_type>/<fname>")
    p.add_argument("--reverb_type", default="binaural", choices=["binaural", "mono", "ambisonics"],
                   help="ambisonics: ACN/SN3D impulse responses of 4 or 9 channels (docs/ambisonics.md)")
    p.add_argument("--reverb_train", "--reverb_train_json", dest="reverb_train", default="")
    p.add_argument("--reverb_val", "--reverb_val_json", dest="reverb_val", default="")
    p.add_argument("--check_files", choices=["all", "none"], default="all",
                   help="check at start-up that every clip's audio and every RIR exists (none: trust the "
                        "lists, e.g. on a slow network file system)")
    p.add_argument("--missing_audio", choices=["error", "skip"], default="error",
                   help="a clip whose audio file is missing stops the run at start-up (error) or is dropped "
                        "and listed in <output_dir>/missing_clips.txt (skip)")
    p.add_argument("--audio_normalize", action="store_true", help="scale every clip to -14 dBFS RMS")
    p.add_argument("--mixup", type=float, default=0.0, help="probability of mixing a second clip in")
    p.add_argument("--roll_mag_aug", action="store_true", help="random circular shift and gain")
    p.add_argument("--weight_sampler", action="store_true", help="sample clips by --weight_csv")
    p.add_argument("--epoch_len", type=int, default=200000, help="clips per epoch with --distributed_wrapper")
    p.add_argument("--distributed_wrapper", action="store_true",
                   help="weighted sampling: epochs of --epoch_len draws (default: as many as clips)")
    p.add_argument("--replacement", action="store_true", help="weighted sampling with replacement")
    p.add_argument("--num_workers", type=int, default=8)
    p.add_argument("--pin_mem", action=argparse.BooleanOptionalAction, default=True,
                   help="pin host memory for faster copies to the GPU (CUDA only)")
    # run
    p.add_argument("--output_dir", default="./outputs")
    p.add_argument("--log_dir", default=None, help="TensorBoard folder (default: output_dir)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval", action="store_true", help="evaluate --finetune/--resume weights and exit")
    p.add_argument("--dist_eval", action="store_true", help="split evaluation across processes")
    p.add_argument("--first_eval_ep", type=int, default=0, help="first epoch that is evaluated")
    p.add_argument("--log_interval", type=int, default=20,
                   help="steps between reads of the loss from the device (logging and the non-finite check)")
    return p


def max_fusion_channels(reverb_type, input_channels):
    """How many channels the fusion conv may fuse the feature maps into: binaural and mono each map
    with either sign (--fusion_init's mirrored halves), ambisonics its maps (7 or 12)."""
    maps = FEATURE_MAPS[input_channels]
    return maps if reverb_type == "ambisonics" else 2 * maps


def check_args(args):
    """Refuse bad flag combinations before anything expensive starts."""
    needed = ["audio_path_root", "audioset_eval", "label_csv", "reverb_path_root", "reverb_val"]
    if not args.eval:
        needed += ["audioset_train", "reverb_train"] + (["weight_csv"] if args.weight_sampler else [])
    missing = [f"--{name}" for name in needed if not getattr(args, name)]
    if missing:
        raise SystemExit(f"error: missing {', '.join(missing)} (see README.md, 'Data')")
    if args.eval and not (args.finetune or args.resume):
        raise SystemExit("error: --eval needs weights: pass --finetune CKPT (or --resume CKPT)")
    earlier = os.path.join(args.output_dir, "checkpoint-last.pth")
    if not (args.eval or args.resume) and os.path.exists(earlier):  # a new run would overwrite it
        raise SystemExit(f"error: {earlier} holds an earlier run: continue it with --resume {earlier}, "
                         f"or give this run another --output_dir")
    for name in ("mask_t_prob", "mask_f_prob"):  # dropping every token row would leave none
        if not 0.0 <= getattr(args, name) < 1.0:
            raise SystemExit(f"error: --{name} must be in [0, 1), got {getattr(args, name)}")
    grid = token_grid(args.patch_size)
    if args.mask_2d:  # a coarse grid can still lose every row or column: 8x128 patches make one column
        for name, axis, size in (("mask_t_prob", "time rows", grid[0]), ("mask_f_prob", "frequency columns", grid[1])):
            if int(size * (1 - getattr(args, name))) < 1:
                raise SystemExit(f"error: --{name} {getattr(args, name)} drops all {size} {axis} of tokens of "
                                 f"--patch_size {args.patch_size}")
    else:  # random tokens at one rate, --mask_t_prob's
        if args.mask_f_prob > 0:
            raise SystemExit(f"error: --mask_f_prob {args.mask_f_prob} has no effect with --no-mask_2d, which drops "
                             f"random tokens at --mask_t_prob; leave it at 0")
        if int(grid[0] * grid[1] * (1 - args.mask_t_prob)) < 1:
            raise SystemExit(f"error: --mask_t_prob {args.mask_t_prob} drops all {grid[0] * grid[1]} tokens of "
                             f"--patch_size {args.patch_size}")
    # before any data is read, so ambisonics at second order; the run's own order is checked once the data says it
    channels = RIR_CHANNELS.get(args.reverb_type, max(AMBISONIC_CHANNELS))
    max_fusion = max_fusion_channels(args.reverb_type, channels)
    if not 1 <= args.fusion_channels <= max_fusion:
        raise SystemExit(f"error: --fusion_channels must be 1..{max_fusion} with --reverb_type {args.reverb_type}, "
                         f"got {args.fusion_channels}")
    if args.fusion_init == "interaural" and args.reverb_type != "binaural":
        raise SystemExit("error: --fusion_init interaural needs --reverb_type binaural (two ears)")
    if args.fusion_init == "intensity" and args.reverb_type != "ambisonics":
        raise SystemExit("error: --fusion_init intensity needs --reverb_type ambisonics")
    for name in ("direction_label_sigma", "distance_label_sigma"):
        if not getattr(args, name) >= 0.0:
            raise SystemExit(f"error: --{name} must be >= 0 (0 gives one-hot targets), got {getattr(args, name)}")
    if not 0.0 <= args.mixup <= 1.0:
        raise SystemExit(f"error: --mixup is a probability in [0, 1], got {args.mixup}")
    if args.batch_size < 1 or args.accum_iter < 1 or args.epochs < 1 or args.log_interval < 1:
        raise SystemExit("error: --batch_size, --accum_iter, --epochs and --log_interval must be positive")
    # a negative value here would train in reverse (a negative rate, decay or clip norm flips the
    # step) or fail deep in torch or numpy
    for name in ("lr", "blr", "min_lr", "warmup_epochs", "layer_decay", "head_lr_scale", "weight_decay",
                 "num_workers", "seed"):
        value = getattr(args, name)
        if value is not None and not value >= 0:
            raise SystemExit(f"error: --{name} must be >= 0, got {value}")
    if (args.distributed_wrapper or args.replacement) and not args.weight_sampler:
        raise SystemExit("error: --distributed_wrapper and --replacement shape weighted sampling: they need "
                         "--weight_sampler (and --weight_csv)")
    if args.epoch_len < 1:
        raise SystemExit(f"error: --epoch_len must be positive, got {args.epoch_len}")
    if args.clip_grad is not None and not args.clip_grad > 0:
        raise SystemExit(f"error: --clip_grad is a gradient norm and must be > 0 (leave it out for no clipping), "
                         f"got {args.clip_grad}")


def build_datasets(args, classes):
    common = dict(audio_root=args.audio_path_root, classes=classes, reverb_root=args.reverb_path_root,
                  reverb_type=args.reverb_type, normalize=args.audio_normalize,
                  check_files=args.check_files == "all", missing_audio=args.missing_audio)
    val = SpatialSoundDataset(args.audioset_eval, reverb_json=args.reverb_val, train=False, **common)
    train = None
    if not args.eval:
        train = SpatialSoundDataset(args.audioset_train, reverb_json=args.reverb_train, train=True,
                                    mixup=args.mixup, roll_mag_aug=args.roll_mag_aug, **common)
    if dist.is_main_process():
        write_missing_clips(args.output_dir, [d for d in (train, val) if d is not None])
    for dataset in (val, train):  # decode one item now rather than fail inside a worker later
        if dataset is not None:
            dataset[0]
    if train is not None:
        train.take_decode_failures()  # count from the first step on
    return train, val


def write_missing_clips(output_dir, datasets):
    """<output_dir>/missing_clips.txt: the ids that --missing_audio skip dropped, one per line."""
    path = os.path.join(output_dir, "missing_clips.txt")
    missing = [(d.clip_json, d.clips.missing) for d in datasets if len(d.clips.missing)]
    if not missing:
        if os.path.exists(path):
            os.remove(path)  # left by an earlier run: it would describe other data
        return
    with open(path, "w") as f:
        for clip_json, ids in missing:
            f.writelines(clip_id + "\n" for clip_id in ids)
            log.warning("%s: %d clips without audio skipped, their ids are in %s", clip_json, len(ids), path)


def build_loaders(args, train_set, val_set, device):
    world, rank = dist.get_world_size(), dist.get_rank()
    loader = dict(batch_size=args.batch_size, num_workers=args.num_workers,
                  pin_memory=args.pin_mem and device.type == "cuda",
                  persistent_workers=args.num_workers > 0)
    if args.dist_eval and world > 1:
        val_sampler = DistributedSampler(val_set, world, rank, shuffle=False)
    else:
        val_sampler = torch.utils.data.SequentialSampler(val_set)
    # its own generator: starting its workers draws nothing from the training's RNG
    val_loader = DataLoader(val_set, sampler=val_sampler, drop_last=False, generator=torch.Generator(), **loader)
    if train_set is None:
        return None, val_loader
    if args.weight_sampler:
        weights = load_clip_weights(args.weight_csv, train_set.clips)
        epoch_len = args.epoch_len if args.distributed_wrapper else len(train_set)
        sampler = WeightedDistributedSampler(weights, epoch_len, world, rank, args.replacement, seed=args.seed)
    else:
        sampler = DistributedSampler(train_set, world, rank, shuffle=True, seed=args.seed)
    train_loader = DataLoader(train_set, sampler=sampler, drop_last=True, **loader)
    if len(train_loader) == 0:
        raise SystemExit(f"error: {len(sampler)} training clips per process is less than one batch "
                         f"of {args.batch_size}")
    return train_loader, val_loader


def build_model(args, num_channels):
    model = create_model(args.model, num_classes=args.nb_classes, drop_path_rate=args.drop_path,
                         patch_size=args.patch_size, num_channels=num_channels, freqm=args.freqm,
                         timem=args.timem, mask_2d=args.mask_2d, fusion_channels=args.fusion_channels,
                         event_pool=args.event_pool)
    if args.fusion_init == "interaural":
        model.init_fusion_interaural()
    elif args.fusion_init == "intensity":
        model.init_fusion_intensity()
    return model


def build_optimizer(args, model, device):
    """AdamW over the layer-decay groups: one fused kernel on CUDA, multi-tensor (foreach) elsewhere."""
    groups = param_groups_layer_decay(model, args.weight_decay, args.layer_decay, model.no_weight_decay(),
                                      args.head_lr_scale, model.HEADS)
    return torch.optim.AdamW(groups, lr=args.lr, **adamw_kernel(device))


def adamw_kernel(device):
    return {"fused": True} if device.type == "cuda" else {"foreach": True}


def chance_levels(args, train_set, val_set):
    """Metrics of the best constant prediction, by counting; None without training RIRs.

    A constant score ties every eval clip, so the chance mAP needs only the eval class
    counts. Training pairs clips with RIRs at random, so the direction/distance prior is
    the training RIR list's: --eval reads that list, never the training clips.
    """
    if train_set is not None:
        train_rirs = train_set.rirs
    elif args.reverb_train:
        try:
            train_rirs = load_room_impulses(args.reverb_train, args.reverb_path_root, args.reverb_type,
                                            check_files=False)
        except DataError as error:
            log.warning("no chance levels: %s", error)
            return None
    else:
        return None
    train_spatial = train_rirs.targets
    eval_spatial = val_set.spatial_targets()[val_set.eval_rir_index]
    return metrics.chance_metrics_from_counts(val_set.class_counts(), train_spatial[:, 1], train_spatial[:, 2],
                                              train_spatial[:, 0], eval_spatial[:, 1], eval_spatial[:, 2],
                                              eval_spatial[:, 0])


def replaced_clips(train_set, device):
    """Clips that failed to decode this epoch and were replaced by another draw, over all ranks."""
    count = torch.tensor([train_set.take_decode_failures()], dtype=torch.int64, device=device)
    count = int(dist.all_reduce_sum(count).item())
    if count:
        log.warning("%d clips failed to decode this epoch and were replaced by other draws", count)
    return count


def format_metrics(result):
    return (f"mAP {result['mAP']:.2f}  ER20 {result['ER20']:.2f}%  MAE {result['MAE']:.2f} deg  "
            f"DER {result['DER']:.2f}%  lateral MAE {result['lateral_MAE']:.2f} deg  "
            f"elevation MAE {result['elevation_MAE']:.2f} deg  front/back {result['front_back_accuracy']:.1f}%")


def run_evaluation(args, model, val_loader, device, chance, report=False, epoch=None):
    """Evaluate; rank 0 logs the metrics, writes metrics.json and, with `report`, the full report
    (its TensorBoard scalars at `epoch`, the training's step; none for --eval)."""
    result, class_ap, predictions = engine.evaluate(model, val_loader, device, args.amp,
                                                    gather=args.dist_eval and dist.get_world_size() > 1)
    if dist.is_main_process():
        log.info("evaluation on %d clips: %s", result["num_clips"], format_metrics(result))
        if chance:
            log.info("chance (best constant prediction): %s", format_metrics(chance))
        summary = {**result, "dataset": args.dataset, "reverb_type": args.reverb_type}
        if chance:
            summary["chance"] = chance
        with open(os.path.join(args.output_dir, "metrics.json"), "w") as f:
            json.dump(metrics.json_ready(summary), f, indent=2, allow_nan=False)
        if report:
            from torch.utils.tensorboard import SummaryWriter  # slow import; rank 0 only
            with SummaryWriter(log_dir=args.log_dir or args.output_dir) as writer:
                written = write_eval_report(args.output_dir, result, class_ap, predictions, val_loader.dataset, writer,
                                            epoch)
            log.info("report: %s", ", ".join(os.path.basename(p) for p in written))
    return result


def checkpoint_state(model, optimizer, scaler, epoch, args, classes, best_map, rng_states):
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
            "scaler": scaler.state_dict(), "args": {**vars(args), "world_size": dist.get_world_size()},
            "classes": classes.as_records(), "best_mAP": best_map, "rng": rng_states}


# Stored arguments that define the model (its tensor shapes, or what it reads them as): another
# value cannot continue the checkpoint's run.
MODEL_ARGS = ("model", "nb_classes", "patch_size", "fusion_channels", "event_pool", "reverb_type", "ambisonic_order")
# Stored arguments that change what the run computes: another value makes a different experiment.
RUN_ARGS = ("lr", "blr", "min_lr", "warmup_epochs", "epochs", "layer_decay", "weight_decay", "clip_grad",
             "batch_size", "accum_iter", "world_size", "amp", "event_loss_weight", "distance_loss_weight",
             "direction_loss_weight", "elevation_loss_weight", "direction_label_sigma", "distance_label_sigma",
             "mixup", "roll_mag_aug", "audio_normalize", "freqm", "timem", "mask_t_prob", "mask_f_prob", "mask_2d", "drop_path",
             "weight_sampler", "epoch_len", "distributed_wrapper", "replacement", "seed", "audio_path_root",
             "audioset_train", "audioset_eval", "label_csv", "weight_csv", "reverb_path_root", "reverb_train",
             "reverb_val")


def compare_resumed_args(stored, args, path):
    """Refuse shape- and optimizer-changing differences from the checkpoint's run; warn on run-changing ones."""
    current = {**vars(args), "world_size": dist.get_world_size()}
    changed = {n for n in MODEL_ARGS + RUN_ARGS if n in stored and stored[n] != current.get(n)}
    model_changes = [n for n in MODEL_ARGS if n in changed]
    if model_changes:
        raise CheckpointError(f"{path}: cannot resume with another model: " + ", ".join(
            f"--{n} {current.get(n)} (the run used {stored[n]})" for n in model_changes))
    # The optimizer's state holds the run's parameter groups and their lr scales, so the heads'
    # scale cannot change on resume; checkpoints from before the option ran at 1.
    stored_head_scale = stored.get("head_lr_scale", 1.0)
    if stored_head_scale != args.head_lr_scale:
        raise CheckpointError(f"{path}: cannot resume with another optimizer: --head_lr_scale {args.head_lr_scale} "
                              f"(the run used {stored_head_scale})")
    for name in (n for n in RUN_ARGS if n in changed):
        log.warning("resuming with --%s %s; the run in %s used %s", name, current.get(name), path, stored[name])


# What a checkpoint's weights do not show, so that a model built from another command line would
# load them strictly and be scored as another model: the token the events head reads, and the level
# its sources were trained at. --eval takes them from the stored arguments, as inference.py does.
TRAINED_SETTINGS = ("event_pool", "audio_normalize")


def adopt_trained_settings(args, stored, path):
    for name in TRAINED_SETTINGS:
        if name in stored and stored[name] != getattr(args, name):
            log.warning("--eval: %s was trained with --%s %s; evaluated so, not with the command line's %s",
                        path, name, stored[name], getattr(args, name))
            setattr(args, name, stored[name])


def rng_states():
    """Every rank's torch RNG states (CPU, and CUDA when present), gathered on every rank."""
    state = {"cpu": torch.get_rng_state(),
             "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    if not dist.is_distributed():
        return [state]
    states = [None] * dist.get_world_size()
    torch.distributed.all_gather_object(states, state)
    return states


def restore_rng_states(states, path):
    """Continue each rank's random stream where the checkpoint left it (same world size only)."""
    if not isinstance(states, list) or len(states) != dist.get_world_size():
        log.warning("%s: no RNG state for %d processes; random streams restart from --seed", path,
                    dist.get_world_size())
        return
    state = states[dist.get_rank()]
    torch.set_rng_state(state["cpu"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def resume(args, model, optimizer, scaler):
    """Restore model, optimizer, scaler, epoch and RNG states; returns the best mAP seen so far."""
    checkpoint = load_checkpoint(args.resume)
    compare_resumed_args(checkpoint_args(checkpoint), args, args.resume)
    load_weights_strictly(model, checkpoint, args.resume)
    if "optimizer" not in checkpoint or "epoch" not in checkpoint:
        raise CheckpointError(f"{args.resume}: holds no optimizer state or epoch; "
                              f"use --finetune to start a new run from its weights")
    saved_groups = checkpoint["optimizer"].get("param_groups") if isinstance(checkpoint["optimizer"], dict) else None
    if isinstance(saved_groups, list) and len(saved_groups) != len(optimizer.param_groups):
        # e.g. written before the groups stopped depending on --weight_decay's value, with 0
        raise CheckpointError(f"{args.resume}: its optimizer state has {len(saved_groups)} parameter groups where "
                              f"this run's has {len(optimizer.param_groups)}, so its moments cannot be matched to "
                              f"the parameters; use --finetune to start a new run from its weights")
    try:
        # The checkpoint holds each group's lr scale and weight decay as well as its moments; the
        # command line's values win (compare_resumed_args warned of any change), the moments stay.
        settings = [(group["lr_scale"], group["weight_decay"]) for group in optimizer.param_groups]
        optimizer.load_state_dict(checkpoint["optimizer"])
        for group, (lr_scale, weight_decay) in zip(optimizer.param_groups, settings):
            group.update(lr_scale=lr_scale, weight_decay=weight_decay)
        if checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
        args.start_epoch = int(checkpoint["epoch"]) + 1
        best_map = float(checkpoint.get("best_mAP", 0.0))
        restore_rng_states(checkpoint.get("rng"), args.resume)
    except Exception as error:  # a damaged file can fail anywhere in its contents: one line, not a traceback
        raise CheckpointError(f"{args.resume}: damaged training state ({describe_error(error)})") from None
    log.info("resumed from %s at epoch %d", args.resume, args.start_epoch)
    if args.num_workers > 0:  # persistent workers seed their streams once, when the run's first epoch starts
        log.info("the %d loader workers draw RIR pairings and augmentations anew from here: the run continues "
                 "alike but not bit for bit (--num_workers 0 resumes exactly)", args.num_workers)
    return best_map


def main(args):
    """Train (or with --eval, evaluate); returns the model, unwrapped from DDP."""
    try:
        device = dist.resolve_device(args.device)
    except RuntimeError as error:
        raise SystemExit(f"error: --device {args.device}: {error}") from None
    dist.init_distributed(device)
    logging.basicConfig(level=logging.INFO if dist.is_main_process() else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    torch.manual_seed(args.seed + dist.get_rank())
    np.random.seed(args.seed + dist.get_rank())
    os.makedirs(args.output_dir, exist_ok=True)
    # --eval reads its weights (--resume's, else --finetune's) first: a bad file stops before the data
    # is checked, and the settings the weights do not show come from the run that trained them
    evaluated_path = (args.resume or args.finetune) if args.eval else None
    evaluated = load_checkpoint(evaluated_path) if evaluated_path else None
    if evaluated is not None:
        adopt_trained_settings(args, checkpoint_args(evaluated), evaluated_path)

    classes = load_class_table(args.label_csv)
    if len(classes) != args.nb_classes:
        raise SystemExit(f"error: --nb_classes {args.nb_classes} but {args.label_csv} lists {len(classes)} classes")
    train_set, val_set = build_datasets(args, classes)
    train_loader, val_loader = build_loaders(args, train_set, val_set, device)
    chance = chance_levels(args, train_set, val_set) if dist.is_main_process() else None

    if args.reverb_type == "ambisonics":  # recorded in the checkpoints' args
        if train_set is not None and train_set.channels != val_set.channels:
            raise SystemExit(f"error: the training impulse responses have {train_set.channels} channels and the "
                             f"evaluation ones {val_set.channels}; one ambisonic order is needed")
        args.ambisonic_order = ambisonic_order(val_set.channels)
        if args.fusion_channels > max_fusion_channels(args.reverb_type, val_set.channels):
            raise SystemExit(f"error: --fusion_channels {args.fusion_channels}: order-{args.ambisonic_order} "
                             f"ambisonics gives {FEATURE_MAPS[val_set.channels]} feature maps to fuse")
    model = build_model(args, num_channels=val_set.channels)
    if args.event_head_init == "prior" and train_set is not None:
        model.init_event_head_at_prior(train_set.class_counts() / len(train_set))
    if evaluated is not None:
        load_weights_strictly(model, evaluated, evaluated_path)
        del evaluated  # its weights are in the model now (a ViT-B checkpoint with optimizer state is ~1 GB)
    elif args.finetune:
        load_pretrained(model, args.finetune)
    model.to(device)
    log.info("model %s: %.2f M trainable parameters", args.model,
             sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6)

    effective_batch = args.batch_size * args.accum_iter * dist.get_world_size()
    if args.lr is None:
        args.lr = args.blr * effective_batch / 256
    optimizer = build_optimizer(args, model, device)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")
    best_map = resume(args, model, optimizer, scaler) if args.resume and not args.eval else 0.0

    ddp_model = model
    if dist.is_distributed():
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if args.compile:  # training only: checkpoints and evaluation use the plain module
        ddp_model = torch.compile(ddp_model)

    if args.eval:
        run_evaluation(args, model, val_loader, device, chance, report=True)
        return model

    log_writer = None
    if dist.is_main_process():
        from torch.utils.tensorboard import SummaryWriter  # slow import; rank 0 only
        log_writer = SummaryWriter(log_dir=args.log_dir or args.output_dir)
    log.info("lr %.2e (blr %.2e x effective batch %d / 256), %d steps per epoch",
             args.lr, args.lr * 256 / effective_batch, effective_batch, len(train_loader))
    start = time.time()
    for epoch in range(args.start_epoch, args.epochs):
        train_loader.sampler.set_epoch(epoch)
        try:
            train_stats = engine.train_one_epoch(ddp_model, train_loader, optimizer, scaler, device, epoch, args,
                                                 log_writer)
        except engine.NonFiniteLossError as error:
            last = os.path.join(args.output_dir, "checkpoint-last.pth")
            kept = f"the last good checkpoint is {last}" if os.path.exists(last) else "no checkpoint was written yet"
            raise SystemExit(f"error: {error}; training stopped, {kept}. "
                             f"Try a lower --blr, --clip_grad, or --amp bf16 instead of fp16.") from None
        record = {"epoch": epoch, **{f"train_{k}": v for k, v in train_stats.items()},
                  "train_replaced_clips": replaced_clips(train_loader.dataset, device)}
        if epoch >= args.first_eval_ep or epoch == args.epochs - 1:
            # the last epoch's evaluation writes the full report, so no second run is needed for it
            result = run_evaluation(args, model, val_loader, device, chance, report=epoch == args.epochs - 1,
                                    epoch=epoch)
            record.update({f"test_{k}": v for k, v in result.items()})
            is_best = result["mAP"] > best_map
            best_map = max(best_map, result["mAP"])
        else:
            is_best = False
        rng = rng_states()  # a collective: every rank takes part
        if dist.is_main_process():
            state = checkpoint_state(model, optimizer, scaler, epoch, args, classes, best_map, rng)
            save_checkpoint(os.path.join(args.output_dir, "checkpoint-last.pth"), state)
            if is_best:
                save_checkpoint(os.path.join(args.output_dir, "checkpoint-best.pth"), state)
            for name, value in record.items():
                if name != "epoch" and isinstance(value, (int, float)):
                    log_writer.add_scalar(name.replace("_", "/", 1), value, epoch)
            log_writer.flush()
            with open(os.path.join(args.output_dir, "log.txt"), "a") as f:
                f.write(json.dumps(metrics.json_ready(record), allow_nan=False) + "\n")
        dist.barrier()
    if log_writer is not None:
        log_writer.close()
    log.info("training done in %s, best mAP %.2f", datetime.timedelta(seconds=int(time.time() - start)), best_map)
    return model


def run(argv=None):
    args = get_args_parser().parse_args(argv)
    check_args(args)
    try:
        main(args)
        return 0
    except (DataError, CheckpointError) as error:
        # A DataLoader worker's error arrives with its traceback in the message: keep the last line.
        raise SystemExit(f"error: {str(error).strip().splitlines()[-1]}") from None
    finally:
        dist.cleanup()


if __name__ == "__main__":
    sys.exit(run())
