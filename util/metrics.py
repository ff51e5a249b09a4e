"""Evaluation metrics for Spatial-AST: event mAP and the spatial errors of the BAT paper.

Spatial inputs are CLASS INDICES in the conventions of `dataset.spatial`:
azimuth class a = a degrees (0 = right, 90 = front), elevation class e = e - 90
degrees, distance class d = d * 0.5 metres. Everything is numpy and vectorised
over clips.
"""
import math

import numpy as np

from dataset.spatial import (
    DISTANCE_BIN_M,
    NUM_AZIMUTH_CLASSES,
    NUM_DISTANCE_CLASSES,
    NUM_ELEVATION_CLASSES,
    class_to_degrees,
)

# Class directions lie on a whole-degree grid, so an error of exactly the threshold
# must not be pushed over it by trigonometric round-off (~1e-13 degrees).
_ANGLE_TOLERANCE_DEG = 1e-9
# Front and back meet in the frontal plane (through both ears and the vertical); front/back
# accuracy is scored on sources at least this far in front of or behind it.
FRONT_BACK_MARGIN_DEG = 15.0


# ---------------------------------------------------------------- sound events

def _event_arrays(scores, targets):
    """Validate [N, C] scores and targets; return float scores and boolean positives."""
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets)
    if scores.ndim != 2 or scores.shape != targets.shape:
        raise ValueError(f"scores and targets must both be [N, C] arrays of the same shape, "
                         f"got scores {scores.shape} and targets {targets.shape}")
    if scores.shape[0] == 0:
        raise ValueError("scores and targets are empty: need at least one clip")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinite values")
    return scores, targets > 0.5  # soft labels count as positive above one half


def average_precision(scores, targets):
    """Per-class average precision (0..1) of scores [N, C] against targets [N, C].

    Same step-wise definition as sklearn's `average_precision_score`:
    AP = sum_k (R_k - R_{k-1}) P_k over distinct score thresholds, so tied scores
    form one threshold. Targets > 0.5 are positive. Returns float [C], NaN for a
    class without positives.
    """
    scores, positive = _event_arrays(scores, targets)
    n = scores.shape[0]
    order = np.argsort(-scores, axis=0, kind="stable")
    ranked = np.take_along_axis(scores, order, axis=0)
    hits = np.take_along_axis(positive, order, axis=0).astype(np.float64)
    rows = np.arange(n)[:, None]
    precision = np.cumsum(hits, axis=0) / (rows + 1)
    # A run of tied scores is one threshold: every row takes the precision at the
    # last row of its run, found as the nearest run end at or below it.
    run_end = np.ones(ranked.shape, dtype=bool)
    run_end[:-1] = ranked[:-1] != ranked[1:]
    end_row = np.minimum.accumulate(np.where(run_end, rows, n - 1)[::-1], axis=0)[::-1]
    # Each positive adds 1/P recall at its threshold, weighted by that precision.
    weighted = np.sum(hits * np.take_along_axis(precision, end_row, axis=0), axis=0)
    num_positive = hits.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(num_positive > 0, weighted / num_positive, np.nan)


def mean_average_precision(scores, targets):
    """(mAP in percent, number of classes used, per-class AP [C] in 0..1).

    The mean runs over classes with at least one positive target.
    """
    ap = average_precision(scores, targets)
    valid = ~np.isnan(ap)
    if not valid.any():
        raise ValueError("mean_average_precision: no class has a positive target, mAP is undefined")
    return float(100.0 * ap[valid].mean()), int(valid.sum()), ap


# ---------------------------------------------------------------- directions

def great_circle_degrees(az1, el1, az2, el2):
    """Great-circle angle in degrees (0..180) between directions given in degrees.

    Azimuths may be any real number; elevations are in -90..90. Uses the atan2
    (Vincenty) form, which stays exact near 0 and 180 degrees where arccos of a
    dot product loses precision.
    """
    lat1, lat2 = np.radians(el1), np.radians(el2)
    dlon = np.radians(np.remainder(np.asarray(az2, dtype=np.float64) - az1, 360.0))
    sin1, cos1, sin2, cos2 = np.sin(lat1), np.cos(lat1), np.sin(lat2), np.cos(lat2)
    across = np.hypot(cos2 * np.sin(dlon), cos1 * sin2 - sin1 * cos2 * np.cos(dlon))
    along = sin1 * sin2 + cos1 * cos2 * np.cos(dlon)
    return np.degrees(np.arctan2(across, along))


def lateral_degrees(azimuth_deg, elevation_deg):
    """Lateral angle in degrees, -90 (left) .. +90 (right): the angle off the median plane.

    It is what interaural time and level differences give: the same for a source and its
    mirror image behind the ears (the cone of confusion). In the frame of `dataset.spatial`
    (azimuth 0 = right), sin(lateral) = cos(elevation) cos(azimuth).
    """
    elevation = np.radians(elevation_deg)
    return np.degrees(np.arcsin(np.clip(np.cos(elevation) * np.cos(np.radians(azimuth_deg)), -1.0, 1.0)))


def frontal_degrees(azimuth_deg, elevation_deg):
    """Angle in degrees off the frontal plane, +90 (straight ahead) .. -90 (straight behind)."""
    elevation = np.radians(elevation_deg)
    return np.degrees(np.arcsin(np.clip(np.cos(elevation) * np.sin(np.radians(azimuth_deg)), -1.0, 1.0)))


def resolve_front_back(azimuth_pred_deg, elevation_pred_deg, azimuth_true_deg, elevation_true_deg):
    """Predicted directions with front/back confusions undone: a prediction on the other side of the
    frontal plane from the source is mirrored onto the source's side (azimuth -> -azimuth, which
    keeps the lateral angle and the elevation). What is left of the error is what the lateral
    angle and the elevation get wrong. Returns (azimuth, elevation) in degrees."""
    confused = _side(frontal_degrees(azimuth_pred_deg, elevation_pred_deg)) * _side(
        frontal_degrees(azimuth_true_deg, elevation_true_deg)) < 0
    azimuth = np.where(confused, np.remainder(-np.asarray(azimuth_pred_deg, dtype=np.float64), 360.0),
                       azimuth_pred_deg)
    return azimuth, np.asarray(elevation_pred_deg, dtype=np.float64)


def front_back_scored(frontal_deg):
    """Which sources front/back is scored on: at least FRONT_BACK_MARGIN_DEG (within round-off)
    in front of or behind the frontal plane, given their `frontal_degrees`."""
    return np.abs(frontal_deg) >= FRONT_BACK_MARGIN_DEG - _ANGLE_TOLERANCE_DEG


def _side(frontal_deg):
    """+1 in front, -1 behind, 0 within round-off of the frontal plane (sin 180 is not 0 in floats)."""
    return np.where(np.abs(frontal_deg) < _ANGLE_TOLERANCE_DEG, 0, np.sign(frontal_deg))


def lateral_metrics(azimuth_pred, elevation_pred, azimuth_true, elevation_true, lateral_pred_deg=None):
    """The direction error split into what two ears hear apart and what they confuse.

    Class indices as in `spatial_metrics`; `lateral_pred_deg` [N], if given, is the model's own
    lateral-angle estimate, else the predicted direction's lateral angle is scored. Returns
    "lateral_MAE" (mean absolute error of the lateral angle, degrees), "elevation_MAE" (of the
    predicted direction's elevation, degrees), "front_back_accuracy"
    (percent of the sources at least FRONT_BACK_MARGIN_DEG in front of or behind the frontal
    plane whose side is predicted right; a prediction within the plane counts as wrong; NaN if
    there is no such source) and "front_back_clips" (how many sources that is).
    """
    c = _class_arrays(azimuth_pred=(azimuth_pred, NUM_AZIMUTH_CLASSES),
                      elevation_pred=(elevation_pred, NUM_ELEVATION_CLASSES),
                      azimuth_true=(azimuth_true, NUM_AZIMUTH_CLASSES),
                      elevation_true=(elevation_true, NUM_ELEVATION_CLASSES))
    return _lateral_scores(class_to_degrees(c["azimuth_pred"], c["elevation_pred"]),
                           class_to_degrees(c["azimuth_true"], c["elevation_true"]), lateral_pred_deg)


def _lateral_scores(pred, true, lateral_pred_deg):
    """`lateral_metrics` of (azimuth, elevation) degree arrays already validated and converted."""
    n = len(pred[0])
    if lateral_pred_deg is None:
        lateral_pred_deg = lateral_degrees(*pred)
    elif np.shape(lateral_pred_deg) != (n,):
        raise ValueError(f"lateral_pred_deg must be [{n}] degrees, got shape {np.shape(lateral_pred_deg)}")
    lateral_error = np.abs(np.asarray(lateral_pred_deg, dtype=np.float64) - lateral_degrees(*true))
    true_side = frontal_degrees(*true)
    scored = front_back_scored(true_side)
    right_side = _side(frontal_degrees(*pred)[scored]) == _side(true_side[scored])
    return {"lateral_MAE": float(lateral_error.mean()),
            # what a pinna notch tells, the one cue to the elevation that two ears share
            "elevation_MAE": float(np.abs(pred[1] - true[1]).mean()),
            "front_back_accuracy": float(100.0 * right_side.mean()) if scored.any() else float("nan"),
            "front_back_clips": int(scored.sum())}


def _class_arrays(**named):
    """Validate named (values, num_classes) pairs as equal-length 1-D class-index arrays."""
    out = {}
    for name, (values, num_classes) in named.items():
        a = np.asarray(values)
        if a.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array of class indices, got shape {a.shape}")
        if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        if a.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} holds class indices outside 0..{num_classes - 1} "
                             f"(min {a.min()}, max {a.max()}); pass classes, not degrees or metres")
        out[name] = a.astype(np.int64)
    lengths = {name: len(a) for name, a in out.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays must have the same length, got {lengths}")
    if 0 in lengths.values():
        raise ValueError(f"arrays are empty: need at least one clip ({', '.join(lengths)})")
    return out


def spatial_metrics(azimuth_pred, elevation_pred, azimuth_true, elevation_true,
                    distance_pred, distance_true, threshold_deg=20.0, per_clip=False, lateral_pred_deg=None):
    """Direction and distance errors from class indices (int arrays [N]).

    Returns a dict: "ER20" (key named after threshold_deg) = percent of clips whose
    great-circle error is strictly above threshold_deg; "MAE" = mean great-circle
    error in degrees; "MAE_front_back_resolved" = the same after front/back confusions are
    resolved (`resolve_front_back`), as human localisation studies report it; "DER" = percent
    of clips whose distance class is off by more than one bin (> 0.5 m, upstream's
    definition); "distance_error_m" = mean
    absolute distance error in metres; "num_clips"; and `lateral_metrics`' keys (of
    `lateral_pred_deg` if given, else of the predicted direction). With
    per_clip=True returns (dict, angular errors in degrees [N], distance errors in metres [N]).
    """
    c = _class_arrays(
        azimuth_pred=(azimuth_pred, NUM_AZIMUTH_CLASSES), elevation_pred=(elevation_pred, NUM_ELEVATION_CLASSES),
        azimuth_true=(azimuth_true, NUM_AZIMUTH_CLASSES), elevation_true=(elevation_true, NUM_ELEVATION_CLASSES),
        distance_pred=(distance_pred, NUM_DISTANCE_CLASSES), distance_true=(distance_true, NUM_DISTANCE_CLASSES))
    pred = class_to_degrees(c["azimuth_pred"], c["elevation_pred"])
    true = class_to_degrees(c["azimuth_true"], c["elevation_true"])
    angles = great_circle_degrees(*pred, *true)
    bins_off = np.abs(c["distance_pred"] - c["distance_true"])
    metrics = {
        f"ER{threshold_deg:g}": float(100.0 * np.mean(angles > threshold_deg + _ANGLE_TOLERANCE_DEG)),
        "MAE": float(angles.mean()),
        "MAE_front_back_resolved": float(great_circle_degrees(*resolve_front_back(*pred, *true), *true).mean()),
        "DER": float(100.0 * np.mean(bins_off > 1)),
        "distance_error_m": float(bins_off.mean() * DISTANCE_BIN_M),
        "num_clips": int(len(angles)),
        **_lateral_scores(pred, true, lateral_pred_deg),
    }
    if per_clip:
        return metrics, angles, bins_off * DISTANCE_BIN_M
    return metrics


# ---------------------------------------------------------------- decoding

_AZIMUTH_GRID_DEG = np.arange(NUM_AZIMUTH_CLASSES, dtype=np.float64)
_ELEVATION_GRID_DEG = np.arange(NUM_ELEVATION_CLASSES, dtype=np.float64) - 90.0
_LATERAL_TABLE_DEG = lateral_degrees(_AZIMUTH_GRID_DEG[:, None], _ELEVATION_GRID_DEG[None, :])  # [360, 180]


def predicted_classes(predictions):
    """Answers from the heads' posteriors ("azimuth_prob" [N, 360], "elevation_prob" [N, 180],
    "distance_prob" [N, 21]): {"azimuth", "elevation", "distance"} classes [N] and "lateral_deg" [N].

    Direction and distance are each head's most probable class, upstream's rule; measured on
    the demo's posteriors it beats the posterior median (distance) and a mean-lateral-angle
    direction on DER, MAE and ER20 (docs/demo.md). The lateral angle is the posterior mean:
    a front/back-ambiguous posterior puts its mode on either mirror image and an under-trained
    one on the few peaks of its prior wherever the source is (the demo's "azimuth collapse"),
    while the mean follows the interaural evidence (docs/demo.md: 25 against 31 degrees).
    """
    azimuth_p = np.asarray(predictions["azimuth_prob"], dtype=np.float64)
    elevation_p = np.asarray(predictions["elevation_prob"], dtype=np.float64)
    return {"azimuth": azimuth_p.argmax(axis=1), "elevation": elevation_p.argmax(axis=1),
            "distance": np.asarray(predictions["distance_prob"]).argmax(axis=1),
            "lateral_deg": np.einsum("na,ae,ne->n", azimuth_p, _LATERAL_TABLE_DEG, elevation_p)}


# ---------------------------------------------------------------- chance level

def _best_constant_direction(azimuth, elevation, block=30):
    """(azimuth class, elevation class) minimising the mean great-circle error to the targets.

    Exact over all 360 x 180 class pairs. The error between two classes depends on
    the azimuth only through the difference, so for each candidate elevation the
    mean error over all azimuths is a circular convolution of the training
    histogram with an error kernel, done with FFTs instead of 360 x 180 x N angles.
    """
    weights = np.zeros((NUM_AZIMUTH_CLASSES, NUM_ELEVATION_CLASSES))
    np.add.at(weights, (azimuth, elevation), 1.0 / len(azimuth))
    present = np.flatnonzero(weights.any(axis=0))  # training elevation classes
    weights_fft = np.fft.rfft(weights[:, present], axis=0)  # [frequency, present]
    elevation_deg = class_to_degrees(0, np.arange(NUM_ELEVATION_CLASSES))[1]
    shift = np.arange(NUM_AZIMUTH_CLASSES)
    mean_error = np.empty((NUM_ELEVATION_CLASSES, NUM_AZIMUTH_CLASSES))
    for start in range(0, NUM_ELEVATION_CLASSES, block):  # blocks bound the kernel's memory
        candidate = elevation_deg[start:start + block, None, None]
        kernel = great_circle_degrees(shift, candidate, 0.0, elevation_deg[present][None, :, None])
        spectrum = np.einsum("ejf,fj->ef", np.fft.rfft(kernel, axis=-1), weights_fft)
        mean_error[start:start + block] = np.fft.irfft(spectrum, n=NUM_AZIMUTH_CLASSES, axis=-1)
    best_elevation, best_azimuth = np.unravel_index(np.argmin(mean_error), mean_error.shape)
    return int(best_azimuth), int(best_elevation)


def _best_constant_by_search(azimuth, elevation, error, coarse=5, block=64):
    """(azimuth class, elevation class) minimising the mean of `error(pred_az, pred_el, true_az, true_el)`
    (degrees in, [candidates, targets] out) over the targets: every `coarse` degrees, then every
    degree within `coarse` of the coarse best. For errors without `_best_constant_direction`'s
    azimuth symmetry (front/back resolution is not); the targets are counted once per direction."""
    pairs, counts = np.unique(np.stack([azimuth, elevation], axis=1), axis=0, return_counts=True)
    true = class_to_degrees(pairs[:, 0], pairs[:, 1])
    weights = counts / counts.sum()

    def mean_errors(candidate_azimuth, candidate_elevation):
        pred = class_to_degrees(candidate_azimuth, candidate_elevation)
        out = np.empty(len(candidate_azimuth))
        for start in range(0, len(out), block):  # blocks bound the [candidates, targets] memory
            part = slice(start, start + block)
            out[part] = error(pred[0][part, None], pred[1][part, None], true[0][None], true[1][None]) @ weights
        return out

    grid = np.stack(np.meshgrid(np.arange(0, NUM_AZIMUTH_CLASSES, coarse),
                                np.arange(0, NUM_ELEVATION_CLASSES, coarse), indexing="ij"), -1).reshape(-1, 2)
    azimuth0, elevation0 = grid[np.argmin(mean_errors(grid[:, 0], grid[:, 1]))]
    near = np.arange(-coarse, coarse + 1)
    fine = np.stack(np.meshgrid((azimuth0 + near) % NUM_AZIMUTH_CLASSES,
                                np.unique(np.clip(elevation0 + near, 0, NUM_ELEVATION_CLASSES - 1)),
                                indexing="ij"), -1).reshape(-1, 2)
    best = fine[np.argmin(mean_errors(fine[:, 0], fine[:, 1]))]
    return int(best[0]), int(best[1])


def _beyond_threshold(threshold_deg):
    """ER's error, plus a millionth of the angle: of the many constants that tie on the share beyond
    the threshold, the one nearest the targets, which new targets are likeliest to find near too."""
    def error(pa, pe, ta, te):
        angles = great_circle_degrees(pa, pe, ta, te)
        return (angles > threshold_deg + _ANGLE_TOLERANCE_DEG) + 1e-6 * angles / 180.0
    return error


def _resolved_error(pa, pe, ta, te):
    return great_circle_degrees(*resolve_front_back(pa, pe, ta, te), ta, te)


def chance_predictions(train_labels, train_azimuth, train_elevation, train_distance):
    """Best constant prediction learned from training targets.

    Labels come from the training clips and directions/distances from the training
    impulse responses (training pairs them at random), so their lengths may differ.

    Returns a dict: "event_scores" = per-class training frequency [C] (0..1);
    "azimuth", "elevation" = the class pair minimising the mean great-circle error
    over the training directions, and "ER20" and "MAE_front_back_resolved" = the pairs that
    minimise those metrics (each metric's own best constant); "distance" = the (lower) median
    training distance class, which minimises the mean absolute bin error, and "DER" = the class
    off by more than one bin from the fewest training sources; "lateral_deg" and
    "elevation_deg" = the (lower) median training lateral angle and elevation, the best
    constant guesses of each; "front" =
    whether more training sources lie in front of the frontal plane than behind it.
    """
    labels = np.asarray(train_labels)
    spatial = _constant_spatial_prediction(train_azimuth, train_elevation, train_distance)
    if labels.ndim != 2 or labels.shape[0] == 0:
        raise ValueError(f"train_labels must be [clips, classes], got shape {labels.shape}")
    return {"event_scores": (labels > 0.5).mean(axis=0), **spatial}


def _constant_spatial_prediction(train_azimuth, train_elevation, train_distance):
    c = _class_arrays(train_azimuth=(train_azimuth, NUM_AZIMUTH_CLASSES),
                      train_elevation=(train_elevation, NUM_ELEVATION_CLASSES),
                      train_distance=(train_distance, NUM_DISTANCE_CLASSES))
    azimuth, elevation = _best_constant_direction(c["train_azimuth"], c["train_elevation"])
    distance = np.sort(c["train_distance"])[(len(c["train_distance"]) - 1) // 2]
    off = np.abs(np.arange(NUM_DISTANCE_CLASSES)[:, None] - c["train_distance"][None, :]) > 1  # DER's rule
    own = {"ER20": _best_constant_by_search(c["train_azimuth"], c["train_elevation"], _beyond_threshold(20.0)),
           "MAE_front_back_resolved": _best_constant_by_search(c["train_azimuth"], c["train_elevation"],
                                                               _resolved_error),
           "DER": int(np.argmin(off.sum(axis=1)))}
    directions = class_to_degrees(c["train_azimuth"], c["train_elevation"])
    median = (len(c["train_azimuth"]) - 1) // 2
    lateral = np.sort(lateral_degrees(*directions))[median]
    side = _side(frontal_degrees(*directions))
    return {"azimuth": azimuth, "elevation": elevation, "distance": int(distance), **own, "lateral_deg": float(lateral),
            "elevation_deg": float(np.sort(directions[1])[median]), "front": bool(np.sum(side > 0) >= np.sum(side < 0))}


def chance_metrics(train_labels, train_azimuth, train_elevation, train_distance,
                   eval_labels, eval_azimuth, eval_elevation, eval_distance):
    """Metrics of the best constant prediction (see `chance_predictions`) on the eval set.

    Returns the model metrics' keys: "mAP" (percent; each class's AP equals its eval
    prevalence since all clips tie), "ER20", "MAE" (degrees), "DER" (percent),
    "distance_error_m" (metres), "num_clips", and for the lateral angle, the elevation and
    the side their own best constants: "lateral_MAE" and "elevation_MAE" of the median
    training lateral angle and elevation, "front_back_accuracy" of always answering the more
    common training side.
    """
    constant = chance_predictions(train_labels, train_azimuth, train_elevation, train_distance)
    eval_labels = np.asarray(eval_labels)
    n = len(np.asarray(eval_azimuth))
    if eval_labels.ndim != 2 or eval_labels.shape != (n, len(constant["event_scores"])):
        raise ValueError(f"eval_labels must be [N, C] = [{n}, {len(constant['event_scores'])}] to match "
                         f"eval_azimuth and train_labels, got shape {eval_labels.shape}")
    scores = np.broadcast_to(constant["event_scores"], eval_labels.shape)
    mAP, _, _ = mean_average_precision(scores, eval_labels)
    return {"mAP": mAP, **_constant_spatial_metrics(constant, eval_azimuth, eval_elevation, eval_distance)}


def chance_metrics_from_counts(eval_class_counts, train_azimuth, train_elevation, train_distance,
                               eval_azimuth, eval_elevation, eval_distance):
    """`chance_metrics` from the eval set's per-class positive counts, without any label matrix.

    A constant score ties every clip, so a class's AP is its eval prevalence whatever
    the training labels: the mAP needs only how many eval clips carry each class. This is
    what a 2M-clip training list needs (its clips x classes matrix would take 2.8 GB).
    """
    counts = np.asarray(eval_class_counts, dtype=np.float64)
    n = len(np.asarray(eval_azimuth))
    if counts.ndim != 1 or not (counts > 0).any() or counts.max() > n:
        raise ValueError(f"eval_class_counts must be [classes] counts in 0..{n} with at least one positive")
    mAP = float(100.0 * np.mean(counts[counts > 0] / n))
    constant = _constant_spatial_prediction(train_azimuth, train_elevation, train_distance)
    return {"mAP": mAP, **_constant_spatial_metrics(constant, eval_azimuth, eval_elevation, eval_distance)}


def _constant_spatial_metrics(constant, eval_azimuth, eval_elevation, eval_distance):
    c = _class_arrays(eval_azimuth=(eval_azimuth, NUM_AZIMUTH_CLASSES),
                      eval_elevation=(eval_elevation, NUM_ELEVATION_CLASSES),
                      eval_distance=(eval_distance, NUM_DISTANCE_CLASSES))
    n = len(c["eval_azimuth"])
    spatial = spatial_metrics(np.full(n, constant["azimuth"]), np.full(n, constant["elevation"]),
                              c["eval_azimuth"], c["eval_elevation"],
                              np.full(n, constant["distance"]), c["eval_distance"])
    # ER20, the resolved MAE, DER, the lateral angle, the elevation and the side have their own best
    # constants: the MAE's is no constant's best at them (near the zenith, front/back resolution
    # does nothing to it)
    for name in ("ER20", "MAE_front_back_resolved"):
        azimuth, elevation = constant[name]
        spatial[name] = spatial_metrics(np.full(n, azimuth), np.full(n, elevation), c["eval_azimuth"],
                                        c["eval_elevation"], np.full(n, constant["DER"]), c["eval_distance"])[name]
    spatial["DER"] = float(100.0 * np.mean(np.abs(constant["DER"] - c["eval_distance"]) > 1))
    true = class_to_degrees(c["eval_azimuth"], c["eval_elevation"])
    spatial["lateral_MAE"] = float(np.abs(lateral_degrees(*true) - constant["lateral_deg"]).mean())
    spatial["elevation_MAE"] = float(np.abs(true[1] - constant["elevation_deg"]).mean())
    side = frontal_degrees(*true)
    scored = front_back_scored(side)
    spatial["front_back_accuracy"] = (float(100.0 * np.mean((side[scored] > 0) == constant["front"]))
                                      if scored.any() else float("nan"))
    return spatial


# ---------------------------------------------------------------- writing

def json_ready(value):
    """`value` with NaN and infinities (a metric with nothing to score, e.g. front/back with no source
    off the median plane) as None: json writes them as NaN, which strict JSON readers refuse."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value
