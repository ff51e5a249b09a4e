"""One training epoch and one evaluation pass (MAE/AudioMAE's engine, device-agnostic)."""
import contextlib
import logging
import math
import sys
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from dataset.spatial import DISTANCE_BIN_M
from util import dist, metrics
from util.lr import set_learning_rate

log = logging.getLogger(__name__)

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(RuntimeError):
    pass


def progress(iterable, desc):
    """A tqdm bar on rank 0; sparse updates when stderr is a log file rather than a terminal."""
    return tqdm(iterable, desc=desc, disable=not dist.is_main_process(), dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 60)


def autocast(device, amp):
    dtype = AMP_DTYPES[amp]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def gaussian_targets(classes, num_classes, sigma, circular=False):
    """Soft targets [B, num_classes]: a Gaussian of `sigma` classes around each true class.

    Neighbouring bins of a direction or distance are near misses, not unrelated classes;
    spreading the target over them lets every example teach the bins around its own,
    which matters when each of 360 azimuth bins sees a handful of examples. sigma = 0
    gives one-hot targets. `circular` wraps the distance around (azimuth: 359 is next to 0).
    """
    if sigma <= 0:
        return F.one_hot(classes, num_classes).float()
    offset = (torch.arange(num_classes, device=classes.device)[None, :] - classes[:, None]).abs().float()
    if circular:
        offset = torch.minimum(offset, num_classes - offset)
    weights = torch.exp(-0.5 * (offset / sigma) ** 2)
    return weights / weights.sum(dim=1, keepdim=True)


def compute_loss(outputs, labels, spatial, args):
    """Weighted sum of event BCE and distance/azimuth/elevation cross-entropies (upstream's 1250/1/2/2).

    With `args.direction_label_sigma` (degrees) or `args.distance_label_sigma` (metres) the
    cross-entropies take Gaussian soft targets; at 0 they are upstream's one-hot losses.
    """
    events, distance, azimuth, elevation = (o.float() for o in outputs)
    direction_sigma = args.direction_label_sigma  # degrees = classes: the bins are 1 degree wide
    distance_sigma = args.distance_label_sigma / DISTANCE_BIN_M
    parts = {
        "loss_events": F.binary_cross_entropy_with_logits(events, labels),
        "loss_distance": F.cross_entropy(distance, gaussian_targets(spatial[:, 0], distance.shape[1], distance_sigma)),
        "loss_azimuth": F.cross_entropy(azimuth, gaussian_targets(spatial[:, 1], azimuth.shape[1], direction_sigma,
                                                                   circular=True)),
        "loss_elevation": F.cross_entropy(elevation, gaussian_targets(spatial[:, 2], elevation.shape[1],
                                                                       direction_sigma)),
    }
    # the scripts' and tests' own loss namespaces (fusion_probe, benchmark_gpu) leave it out: None too
    elevation_weight = getattr(args, "elevation_loss_weight", None)
    if elevation_weight is None:
        elevation_weight = args.direction_loss_weight
    loss = (args.event_loss_weight * parts["loss_events"]
            + args.distance_loss_weight * parts["loss_distance"]
            + args.direction_loss_weight * parts["loss_azimuth"]
            + elevation_weight * parts["loss_elevation"])
    return loss, parts


def train_one_epoch(model, data_loader, optimizer, scaler, device, epoch, args, log_writer=None):
    """Train for one epoch; returns the epoch's mean losses and last learning rate.

    The learning rate follows the per-iteration schedule; gradients are accumulated
    over `args.accum_iter` batches (without DDP synchronisation in between).

    The step never waits for the device: the losses stay on it, averaged over ranks,
    and are read back once per `args.log_interval` steps (and at the epoch's end). That
    read checks them, so a non-finite loss stops every rank at the same step, before
    the epoch returns and before any checkpoint is written.
    """
    model.train()
    optimizer.zero_grad(set_to_none=True)
    steps = len(data_loader)
    sums, lr = defaultdict(float), 0.0
    window = []  # per step: [loss, *parts] on the device, not yet read back
    bar = progress(data_loader, f"epoch {epoch}")
    for step, (waveforms, rirs, labels, spatial, *_) in enumerate(bar):
        if step % args.accum_iter == 0:
            lr = set_learning_rate(optimizer, epoch + step / steps, args)
            # the epoch's last group may be short: its gradient is still the mean over its batches
            group_size = min(args.accum_iter, steps - step)
        waveforms, rirs = waveforms.to(device, non_blocking=True), rirs.to(device, non_blocking=True)
        labels, spatial = labels.to(device, non_blocking=True), spatial.to(device, non_blocking=True)
        update = (step + 1) % args.accum_iter == 0 or step + 1 == steps
        # DDP decides in the forward whether the backward all-reduces: both go inside no_sync
        sync = contextlib.nullcontext() if update or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with autocast(device, args.amp):
                outputs = model(waveforms, rirs, mask_t_prob=args.mask_t_prob, mask_f_prob=args.mask_f_prob)
            loss, parts = compute_loss(outputs, labels, spatial, args)
            scaler.scale(loss / group_size).backward()
        # Averaged over ranks, so that every rank reads the same values and stops together.
        window.append(dist.all_reduce_sum(torch.stack([loss.detach(), *parts.values()]).float())
                      / dist.get_world_size())
        if update:
            if args.clip_grad:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)

        if (step + 1) % args.log_interval == 0 or step + 1 == steps:
            rows = read_losses(window, epoch, step + 1 - len(window))
            window.clear()
            for row in rows:
                for name, value in zip(["loss", *parts], row):
                    sums[name] += value
            mean_loss = sum(row[0] for row in rows) / len(rows)
            bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{lr:.2e}", refresh=False)
            if log_writer is not None:
                x = int((epoch + step / steps) * 1000)  # epoch_1000x: curves comparable across batch sizes
                log_writer.add_scalar("train/loss", mean_loss, x)
                log_writer.add_scalar("train/lr", lr, x)
    dist.average_buffers(model)
    stats = {name: total / max(steps, 1) for name, total in sums.items()}
    stats["lr"] = lr
    return stats


def read_losses(window, epoch, first_step):
    """Copy a window of per-step loss rows to the host (one sync); raise on the first non-finite loss."""
    rows = torch.stack(window).tolist()
    for offset, row in enumerate(rows):
        if not math.isfinite(row[0]):
            raise NonFiniteLossError(f"loss is {row[0]} at epoch {epoch}, step {first_step + offset}")
    return rows


@torch.no_grad()
def predict(model, data_loader, device, amp="none", gather=False):
    """Run the model over a loader; returns numpy arrays keyed by name, one row per clip.

    With `gather`, each rank's rows are collected on every rank and the padding
    duplicates of DistributedSampler are dropped (by clip index).
    """
    model.eval()
    rows = defaultdict(list)
    for waveforms, rirs, labels, spatial, clip_index, rir_index in progress(data_loader, "eval"):
        with autocast(device, amp):
            events, distance, azimuth, elevation = model(waveforms.to(device, non_blocking=True),
                                                         rirs.to(device, non_blocking=True))
        rows["scores"].append(torch.sigmoid(events.float()))
        rows["labels"].append(labels.to(device))
        rows["distance_prob"].append(distance.float().softmax(-1))
        rows["azimuth_prob"].append(azimuth.float().softmax(-1))
        rows["elevation_prob"].append(elevation.float().softmax(-1))
        rows["spatial"].append(spatial.to(device))
        rows["clip_index"].append(torch.as_tensor(clip_index, device=device))
        rows["rir_index"].append(torch.as_tensor(rir_index, device=device))
    if not rows:
        raise ValueError("the evaluation loader produced no batch; is the evaluation set empty?")
    merged = {name: torch.cat(parts) for name, parts in rows.items()}
    if gather:
        merged = {name: dist.all_gather_variable(tensor) for name, tensor in merged.items()}
    out = {name: tensor.cpu().numpy() for name, tensor in merged.items()}
    _, first = np.unique(out["clip_index"], return_index=True)
    return {name: array[first] for name, array in out.items()}


def score(predictions):
    """The paper's metrics (percent, degrees) from `predict`'s output."""
    mAP, num_classes, class_ap = metrics.mean_average_precision(predictions["scores"], predictions["labels"])
    spatial = predictions["spatial"]
    result = {"mAP": mAP}
    predicted = metrics.predicted_classes(predictions)
    result.update(metrics.spatial_metrics(predicted["azimuth"], predicted["elevation"], spatial[:, 1], spatial[:, 2],
                                          predicted["distance"], spatial[:, 0], lateral_pred_deg=predicted["lateral_deg"]))
    result["num_classes_evaluated"] = int(num_classes)
    return result, class_ap


def evaluate(model, data_loader, device, amp="none", gather=False):
    """Predict and score; returns (metrics dict, per-class AP, predictions)."""
    predictions = predict(model, data_loader, device, amp, gather)
    result, class_ap = score(predictions)
    return result, class_ap, predictions
