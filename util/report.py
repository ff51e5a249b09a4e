"""The evaluation report: per-class AP, per-clip predictions, a few figures, TensorBoard scalars.

Written from `engine_finetune.evaluate`'s outputs; the headline metrics json is written by
main_finetune.py, not here. Everything is vectorised so that 20k clips take about a second.
"""
import csv
import logging
import os

import numpy as np

from dataset.spatial import DISTANCE_BIN_M, class_to_degrees
from util.metrics import lateral_degrees, predicted_classes, spatial_metrics

log = logging.getLogger(__name__)

DIRECTION_THRESHOLD_DEG = 20.0
SCALARS = ("mAP", "ER20", "MAE", "DER", "lateral_MAE", "elevation_MAE", "front_back_accuracy",
           "MAE_front_back_resolved")
TOP_CLASSES = 3
RANKED_CLASSES = 10  # best and worst classes drawn


def write_eval_report(output_dir, result, class_ap, predictions, dataset, log_writer=None, epoch=None):
    """Write the report files into `output_dir`; returns the paths written.

    result: `evaluate`'s metrics dict; class_ap: per-class AP [K] in 0..1 (NaN: no positive);
    predictions: `evaluate`'s arrays, one row per clip; dataset: the evaluation
    SpatialSoundDataset (clip ids, RIR file names, class names).
    """
    os.makedirs(output_dir, exist_ok=True)
    spatial = per_clip_spatial(predictions)
    paths = [
        write_class_ap(os.path.join(output_dir, "class_ap.csv"), class_ap, predictions["labels"], dataset.classes),
        write_predictions(os.path.join(output_dir, "predictions.csv"), predictions, spatial, dataset),
    ]
    paths += write_figures(output_dir, spatial, class_ap, dataset.classes)
    if log_writer is not None:
        step = 0 if epoch is None else epoch
        for name in SCALARS:
            if name in result:
                log_writer.add_scalar(f"eval/{name}", float(result[name]), step)
        log_writer.flush()
    log.info("evaluation report: %d files in %s", len(paths), output_dir)
    return paths


def per_clip_spatial(predictions):
    """Predicted and true directions and lateral angles (degrees) and distances (metres), and the
    errors, per clip."""
    pred = predicted_classes(predictions)
    true = {"distance": predictions["spatial"][:, 0], "azimuth": predictions["spatial"][:, 1],
            "elevation": predictions["spatial"][:, 2]}
    _, angular_error, distance_error = spatial_metrics(
        pred["azimuth"], pred["elevation"], true["azimuth"], true["elevation"], pred["distance"], true["distance"],
        threshold_deg=DIRECTION_THRESHOLD_DEG, per_clip=True)
    out = {"angular_error_deg": angular_error, "distance_error_m": distance_error,
           "pred_lateral_deg": pred["lateral_deg"]}  # the model's lateral estimate (util.metrics.predicted_classes)
    for name, classes in (("true", true), ("pred", pred)):
        azimuth, elevation = class_to_degrees(classes["azimuth"], classes["elevation"])
        out[f"{name}_azimuth_deg"] = azimuth
        out[f"{name}_elevation_deg"] = elevation
        out[f"{name}_distance_m"] = np.asarray(classes["distance"], dtype=np.float64) * DISTANCE_BIN_M
    out["true_lateral_deg"] = lateral_degrees(out["true_azimuth_deg"], out["true_elevation_deg"])
    return out


def write_class_ap(path, class_ap, labels, classes):
    positives = (np.asarray(labels) > 0.5).sum(axis=0)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "mid", "display_name", "positives", "ap"])
        for i, (mid, name) in enumerate(zip(classes.mids, classes.names)):
            ap = "" if np.isnan(class_ap[i]) else f"{class_ap[i]:.6f}"
            writer.writerow([i, mid, name, int(positives[i]), ap])
    return path


def top_classes_column(scores, mids, k=TOP_CLASSES):
    """"mid:0.91;mid:0.40" per clip, best first."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable"), 1)
    return [";".join(f"{mids[j]}:{row_scores[j]:.2f}" for j in row) for row, row_scores in zip(top, scores)]


def write_predictions(path, predictions, spatial, dataset):
    clip_ids = [dataset.clips[i].id for i in predictions["clip_index"]]
    rir_names = [dataset.rirs[j].fname for j in predictions["rir_index"]]
    mids = dataset.classes.mids
    true_labels = [";".join(mids[j] for j in np.flatnonzero(row > 0.5)) for row in predictions["labels"]]
    exact = ["true_azimuth_deg", "pred_azimuth_deg", "true_elevation_deg", "pred_elevation_deg",
             "true_distance_m", "pred_distance_m"]
    rounded = ["true_lateral_deg", "pred_lateral_deg", "angular_error_deg"]
    # Class grids make the class columns exact with %g; the angles computed from them are written to 1e-4 degrees.
    top = top_classes_column(predictions["scores"], mids)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip_id", "rir_fname", *exact, *rounded, "distance_error_m", "top3", "labels"])
        for i in range(len(clip_ids)):
            writer.writerow([clip_ids[i], rir_names[i], *(f"{spatial[c][i]:g}" for c in exact),
                             *(f"{spatial[c][i]:.4f}" for c in rounded), f"{spatial['distance_error_m'][i]:g}",
                             top[i], true_labels[i]])
    return path


# ---------------------------------------------------------------- figures

def new_figure(figsize):
    # A bare Figure with an Agg canvas: no pyplot global state, nothing shown, any backend setting.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path, dpi=100):
    fig.savefig(path, dpi=dpi)
    return path


def write_figures(output_dir, spatial, class_ap, classes):
    return [
        plot_azimuth_scatter(os.path.join(output_dir, "azimuth_scatter.png"), spatial),
        plot_lateral_scatter(os.path.join(output_dir, "lateral_scatter.png"), spatial),
        plot_error_histogram(os.path.join(output_dir, "direction_error_hist.png"), spatial),
        plot_error_by_distance(os.path.join(output_dir, "direction_error_by_distance.png"), spatial),
        plot_class_ap(os.path.join(output_dir, "class_ap_best_worst.png"), class_ap, classes),
    ]


def plot_azimuth_scatter(path, spatial):
    fig = new_figure((6, 6))
    ax = fig.add_subplot()
    ax.scatter(spatial["true_azimuth_deg"], spatial["pred_azimuth_deg"], s=3, alpha=0.3, linewidths=0,
               rasterized=True)
    ax.plot([0, 360], [0, 360], color="grey", linewidth=0.8)
    ticks = [0, 90, 180, 270, 360]
    ax.set(xlim=(0, 360), ylim=(0, 360), xticks=ticks, yticks=ticks, xlabel="true azimuth (deg, 0 = right, 90 = front)",
           ylabel="predicted azimuth (deg)", title=f"azimuth, {len(spatial['true_azimuth_deg'])} clips")
    return save_figure(fig, path)


def plot_lateral_scatter(path, spatial):
    """Predicted against true lateral angle: what the interaural cues give, blind to front/back."""
    true, pred = spatial["true_lateral_deg"], spatial["pred_lateral_deg"]
    fig = new_figure((6, 6))
    ax = fig.add_subplot()
    ax.scatter(true, pred, s=4, alpha=0.4, linewidths=0, rasterized=True)
    ax.plot([-90, 90], [-90, 90], color="grey", linewidth=0.8)
    ticks = [-90, -45, 0, 45, 90]
    ax.set(xlim=(-92, 92), ylim=(-92, 92), xticks=ticks, yticks=ticks,
           xlabel="true lateral angle (deg, -90 = left, +90 = right)", ylabel="predicted lateral angle (deg)",
           title=f"lateral angle, {len(true)} clips, MAE {np.abs(pred - true).mean():.1f} deg")
    return save_figure(fig, path)


def plot_error_histogram(path, spatial):
    errors = spatial["angular_error_deg"]
    fig = new_figure((7, 4.5))
    ax = fig.add_subplot()
    ax.hist(errors, bins=np.arange(0, 182, 2))
    share_above = 100.0 * np.mean(errors > DIRECTION_THRESHOLD_DEG + 1e-9)
    ax.axvline(DIRECTION_THRESHOLD_DEG, color="tab:red", linestyle="--",
               label=f"{DIRECTION_THRESHOLD_DEG:g} deg (ER{DIRECTION_THRESHOLD_DEG:g} = {share_above:.1f}% of clips)")
    ax.set(xlim=(0, 180), xlabel="great-circle direction error (deg)", ylabel="clips",
           title=f"direction error, mean {errors.mean():.1f} deg")
    ax.legend()
    return save_figure(fig, path)


def plot_error_by_distance(path, spatial):
    distance, errors = spatial["true_distance_m"], spatial["angular_error_deg"]
    jitter = np.random.default_rng(0).uniform(-0.1, 0.1, len(distance))  # the distances lie on a 0.5 m grid
    fig = new_figure((7, 4.5))
    ax = fig.add_subplot()
    ax.scatter(distance + jitter, errors, s=3, alpha=0.3, linewidths=0, rasterized=True)
    bins = np.unique(distance)
    ax.plot(bins, [np.median(errors[distance == d]) for d in bins], color="black", marker="o", label="median")
    ax.axhline(DIRECTION_THRESHOLD_DEG, color="tab:red", linestyle="--", label=f"{DIRECTION_THRESHOLD_DEG:g} deg")
    ax.set(xlabel="true distance (m)", ylabel="direction error (deg)", ylim=(0, 180),
           title="direction error against source distance")
    ax.legend()
    return save_figure(fig, path)


def plot_class_ap(path, class_ap, classes, count=RANKED_CLASSES):
    """The `count` best and `count` worst classes by AP (one list when there are few classes)."""
    valid = np.flatnonzero(~np.isnan(class_ap))
    ranked = valid[np.argsort(-class_ap[valid], kind="stable")]
    panels = [("classes by AP", ranked)] if len(ranked) <= 2 * count else [
        (f"{count} best classes", ranked[:count]), (f"{count} worst classes", ranked[-count:])]
    rows = sum(len(p[1]) for p in panels)
    fig = new_figure((8, 1.5 + 0.25 * max(rows, 4)))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (title, indices) in zip(axes, panels):
        y = np.arange(len(indices))[::-1]  # best at the top
        ax.barh(y, class_ap[indices])
        ax.set_yticks(y, [classes.names[i] for i in indices], fontsize=8)
        ax.set(xlim=(0, 1), xlabel="average precision", title=title)
    return save_figure(fig, path)
