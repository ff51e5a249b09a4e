import os
import sys

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

# Let plain `pytest` (not only `python -m pytest`) import the repository's packages.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from util.metrics import (  # noqa: E402
    average_precision,
    chance_metrics,
    chance_metrics_from_counts,
    chance_predictions,
    frontal_degrees,
    great_circle_degrees,
    lateral_degrees,
    lateral_metrics,
    mean_average_precision,
    predicted_classes,
    resolve_front_back,
    spatial_metrics,
)

HORIZON = 90  # elevation class of 0 degrees


# ---------------------------------------------------------------- average precision

def _sklearn_ap(scores, targets):
    return np.array([average_precision_score(targets[:, c] > 0.5, scores[:, c])
                     if (targets[:, c] > 0.5).any() else np.nan for c in range(targets.shape[1])])


@pytest.mark.parametrize("decimals", [None, 1])
def test_ap_matches_sklearn_with_ties_soft_labels_and_empty_class(decimals):
    rng = np.random.default_rng(0)
    n, c = 400, 60
    scores = rng.random((n, c))
    if decimals is not None:
        scores = np.round(scores, decimals)  # many tied scores per class
    targets = (rng.random((n, c)) < rng.uniform(0.01, 0.5, c)).astype(float)
    targets[:, 7] = 0.0  # a class without positives
    targets[:, 9] = np.where(targets[:, 9] > 0, 0.8, 0.3)  # soft labels: > 0.5 is positive
    ap = average_precision(scores, targets)
    expected = _sklearn_ap(scores, targets)
    assert np.isnan(ap[7]) and np.isnan(expected).sum() == 1
    np.testing.assert_allclose(ap, expected, rtol=0, atol=1e-12)
    assert np.all((ap[~np.isnan(ap)] >= 0) & (ap[~np.isnan(ap)] <= 1))

    mAP, num_classes, per_class = mean_average_precision(scores, targets)
    assert num_classes == c - 1
    assert mAP == pytest.approx(100 * np.nanmean(expected), abs=1e-10)
    np.testing.assert_array_equal(per_class, ap)


def test_ap_hand_worked():
    # Class 0, distinct scores: ranking +, -, +, -.
    #   precision at the two positives: 1/1 and 2/3 -> AP = (1 + 2/3) / 2 = 5/6.
    # Class 1, with a tie: scores 0.9 (-), 0.8 (+), 0.8 (-), 0.1 (+).
    #   thresholds 0.9: R = 0,   P = 0
    #              0.8: R = 1/2, P = 1/3  (the tied pair is one threshold)
    #              0.1: R = 1,   P = 2/4
    #   AP = 1/2 * 1/3 + 1/2 * 1/2 = 5/12.
    scores = np.array([[0.9, 0.9], [0.8, 0.8], [0.7, 0.8], [0.6, 0.1]])
    targets = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
    np.testing.assert_allclose(average_precision(scores, targets), [5 / 6, 5 / 12], atol=1e-15)
    mAP, num_classes, _ = mean_average_precision(scores, targets)
    assert num_classes == 2 and mAP == pytest.approx(100 * (5 / 6 + 5 / 12) / 2)


def test_ap_errors():
    with pytest.raises(ValueError, match="same shape"):
        average_precision(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="same shape"):
        average_precision(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        average_precision(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="NaN"):
        average_precision(np.array([[np.nan], [0.5]]), np.array([[1], [0]]))
    with pytest.raises(ValueError, match="no class has a positive"):
        mean_average_precision(np.random.rand(5, 3), np.zeros((5, 3)))


# ---------------------------------------------------------------- great circle

@pytest.mark.parametrize("az1, el1, az2, el2, expected", [
    (37.0, 12.0, 37.0, 12.0, 0.0),     # same point
    (0.0, 0.0, 180.0, 0.0, 180.0),     # right vs left on the horizon
    (90.0, 0.0, 0.0, 0.0, 90.0),       # front vs right
    (123.0, 90.0, 0.0, 0.0, 90.0),     # straight up vs the horizon
    (0.0, 90.0, 250.0, 0.0, 90.0),
    (359.0, 0.0, 1.0, 0.0, 2.0),       # azimuth wrap-around
    (0.0, 45.0, 180.0, 45.0, 90.0),    # over the top
    (-90.0, 0.0, 270.0, 0.0, 0.0),     # azimuth any real number
    (10.0, -30.0, 10.0, 30.0, 60.0),   # along a meridian
])
def test_great_circle_hand_values(az1, el1, az2, el2, expected):
    assert great_circle_degrees(az1, el1, az2, el2) == pytest.approx(expected, abs=1e-12)


def test_great_circle_exact_at_extremes_and_matches_unit_vectors():
    assert great_circle_degrees(37.0, 12.0, 37.0, 12.0) == 0.0
    assert great_circle_degrees(0.0, 0.0, 180.0, 0.0) == 180.0
    assert great_circle_degrees(0.0, 0.0, 1e-7, 0.0) == pytest.approx(1e-7, rel=1e-6)

    rng = np.random.default_rng(1)
    az1, az2 = rng.uniform(-720, 720, (2, 1000))
    el1, el2 = rng.uniform(-89, 89, (2, 1000))

    def unit(az, el):
        az, el = np.radians(az), np.radians(el)
        return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1)

    dots = np.sum(unit(az1, el1) * unit(az2, el2), axis=-1)
    fine = np.abs(dots) < 0.999  # arccos is accurate away from 0 and 180 degrees
    expected = np.degrees(np.arccos(dots))
    got = great_circle_degrees(az1, el1, az2, el2)
    assert got.shape == (1000,)
    np.testing.assert_allclose(got[fine], expected[fine], atol=1e-9)
    assert np.all((got >= 0) & (got <= 180))


# ---------------------------------------------------------------- spatial metrics

def test_spatial_metrics_worked_example():
    # clip  predicted (az, el) true (az, el)  error  distance pred/true  bins off
    # 0     (90, 0)            (110, 0)       20     4 / 5               1 (not counted)
    # 1     (0, 0)             (180, 0)       180    2 / 4               2 (counted)
    # 2     (10, 0)            (31, 0)        21     6 / 6               0
    # 3     (0, 45)            (180, 45)      90     0 / 0               0
    # ER20 = 3/4 (20 exactly is not an error), MAE = (20 + 180 + 21 + 90) / 4 = 77.75,
    # DER = 1/4, distance error = (1 + 2) * 0.5 m / 4 = 0.375 m.
    az_pred, az_true = [90, 0, 10, 0], [110, 180, 31, 180]
    el_pred = el_true = [HORIZON, HORIZON, HORIZON, HORIZON + 45]
    d_pred, d_true = [4, 2, 6, 0], [5, 4, 6, 0]
    metrics, angles, metres = spatial_metrics(az_pred, el_pred, az_true, el_true, d_pred, d_true,
                                              per_clip=True)
    assert metrics["ER20"] == pytest.approx(75.0)
    assert metrics["MAE"] == pytest.approx(77.75)
    assert metrics["DER"] == pytest.approx(25.0)
    assert metrics["distance_error_m"] == pytest.approx(0.375)
    assert metrics["num_clips"] == 4
    np.testing.assert_allclose(angles, [20, 180, 21, 90], atol=1e-12)
    np.testing.assert_allclose(metres, [0.5, 1.0, 0.0, 0.0])
    assert spatial_metrics(az_pred, el_pred, az_true, el_true, d_pred, d_true) == metrics
    # every threshold-exact error, whatever the rounding of its trigonometry, is not counted
    a = np.arange(360)
    assert spatial_metrics(a, np.full(360, HORIZON), (a + 20) % 360, np.full(360, HORIZON),
                           np.zeros(360), np.zeros(360))["ER20"] == 0.0
    e = np.arange(0, 160)
    assert spatial_metrics(np.full(160, 7), e, np.full(160, 7), e + 20,
                           np.zeros(160), np.zeros(160))["ER20"] == 0.0


def test_spatial_metrics_errors():
    ok = np.zeros(3, dtype=int)
    with pytest.raises(ValueError, match="empty"):
        spatial_metrics([], [], [], [], [], [])
    with pytest.raises(ValueError, match="elevation_true"):
        spatial_metrics(ok, ok, ok, np.zeros(4, dtype=int), ok, ok)
    with pytest.raises(ValueError, match="azimuth_pred must be a 1-D"):
        spatial_metrics(np.zeros((3, 1), dtype=int), ok, ok, ok, ok, ok)
    with pytest.raises(ValueError, match="elevation_pred holds class indices outside 0..179"):
        spatial_metrics(ok, np.array([-10, 0, 0]), ok, ok, ok, ok)
    with pytest.raises(ValueError, match="distance_true must hold integer"):
        spatial_metrics(ok, ok, ok, ok, ok, np.array([0.5, 1.0, 2.0]))


# ---------------------------------------------------------------- lateral angle and front/back

def test_lateral_and_frontal_angles_against_the_angles_to_the_ear_and_nose_axes():
    # independent route: 90 degrees minus the great-circle angle to the right-ear axis
    # (azimuth 0) or to the nose (azimuth 90), both on the horizon
    rng = np.random.default_rng(5)
    az, el = rng.uniform(0, 360, 500), rng.uniform(-90, 90, 500)
    np.testing.assert_allclose(lateral_degrees(az, el), 90 - great_circle_degrees(az, el, 0, 0), atol=1e-9)
    np.testing.assert_allclose(frontal_degrees(az, el), 90 - great_circle_degrees(az, el, 90, 0), atol=1e-9)
    # worked values: right, front, left, behind-right, and up on the right
    np.testing.assert_allclose(lateral_degrees([0, 90, 180, 315, 0], [0, 0, 0, 0, 60]), [90, 0, -90, 45, 30],
                               atol=1e-12)


def test_lateral_metrics_worked_example():
    # clip  predicted (az, el)  true (az, el)  lateral pred/true  error  side pred/true  scored
    # 0     (45, 0)             (315, 0)       45 / 45            0      front / back    yes: wrong
    # 1     (90, 0)             (60, 0)        0 / 30             30     front / front   yes: right
    # 2     (0, 0)              (0, 0)         90 / 90            0      -   / (plane)   no
    # 3     (180, 0)            (100, 0)       -90 / -10          80     (plane) / front yes: wrong
    # 4     (270, 30)           (260, 0)       0 / -10            10     back / back     yes: right
    # lateral MAE = 120 / 5 = 24; front/back 2 right of 4 scored = 50 %; elevation MAE = 30 / 5 = 6
    az_pred, el_pred = [45, 90, 0, 180, 270], [HORIZON] * 4 + [HORIZON + 30]
    az_true, el_true = [315, 60, 0, 100, 260], [HORIZON] * 5
    result = lateral_metrics(az_pred, el_pred, az_true, el_true)
    assert result["lateral_MAE"] == pytest.approx(24.0)
    assert result["elevation_MAE"] == pytest.approx(6.0)
    assert result["front_back_accuracy"] == pytest.approx(50.0) and result["front_back_clips"] == 4
    full = spatial_metrics(az_pred, el_pred, az_true, el_true, [0] * 5, [0] * 5)
    assert {k: full[k] for k in result} == result
    # sources 14 degrees off the frontal plane are not scored, 15 degrees are
    assert lateral_metrics([90], [HORIZON], [14], [HORIZON])["front_back_clips"] == 0
    assert np.isnan(lateral_metrics([90], [HORIZON], [14], [HORIZON])["front_back_accuracy"])
    assert lateral_metrics([90], [HORIZON], [15], [HORIZON])["front_back_accuracy"] == 100.0


def test_front_back_resolved_mae_worked_example():
    # the lateral example's clips: only clip 0 is confused (front for back); mirrored to (315, 0) it is
    # exact, its 90 degrees drop out of the sum. Clip 3's prediction lies in the frontal plane, on
    # neither side, so it is not a confusion and keeps its 80 degrees; clip 4 is on the right side.
    az_pred, el_pred = [45, 90, 0, 180, 270], [HORIZON] * 4 + [HORIZON + 30]
    az_true, el_true = [315, 60, 0, 100, 260], [HORIZON] * 5
    clip4 = great_circle_degrees(270, 30, 260, 0)
    result = spatial_metrics(az_pred, el_pred, az_true, el_true, [0] * 5, [0] * 5)
    assert result["MAE"] == pytest.approx((90 + 30 + 0 + 80 + clip4) / 5)
    assert result["MAE_front_back_resolved"] == pytest.approx((0 + 30 + 0 + 80 + clip4) / 5)
    # mirroring keeps the elevation and the lateral angle: up and behind-left for up and front-left
    azimuth, elevation = resolve_front_back(np.array([200.0]), np.array([40.0]), np.array([150.0]), np.array([40.0]))
    assert (azimuth[0], elevation[0]) == (160.0, 40.0)
    assert lateral_degrees(160.0, 40.0) == pytest.approx(lateral_degrees(200.0, 40.0))


def test_chance_lateral_angle_and_side():
    # training: lateral angles 90, 60, 30, 0 (right to front) and one behind: median 30,
    # three sources in front against one behind (azimuth 0 lies in the frontal plane)
    train_az, train_el = [0, 30, 60, 90, 240], [HORIZON] * 5
    constant = chance_predictions(np.zeros((5, 1)), train_az, train_el, [0] * 5)
    assert constant["lateral_deg"] == pytest.approx(30.0) and constant["front"] is True
    # eval: laterals 90, -90, 0 (behind) -> errors 60, 120, 30; sides back, back scored (az 180
    # is in the plane) -> "front" is right for none of them
    metrics = chance_metrics(np.zeros((5, 1)), train_az, train_el, [0] * 5,
                             np.ones((3, 1)), [0, 180, 270], [HORIZON] * 3, [0] * 3)
    assert metrics["lateral_MAE"] == pytest.approx(70.0)
    assert metrics["front_back_accuracy"] == 0.0


def test_chance_elevation_is_the_median_training_elevation():
    # training elevations -40, -10, 0, 20, 50: the median 0 is the best constant for the mean absolute
    # error, whatever direction minimises the great-circle error (which also weighs the azimuths)
    train_az, train_el = [90, 90, 270, 0, 180], [HORIZON - 40, HORIZON - 10, HORIZON, HORIZON + 20, HORIZON + 50]
    constant = chance_predictions(np.zeros((5, 1)), train_az, train_el, [0] * 5)
    assert constant["elevation_deg"] == 0.0
    # eval elevations 30, -30, 10 -> errors 30, 30, 10
    metrics = chance_metrics(np.zeros((5, 1)), train_az, train_el, [0] * 5,
                             np.ones((3, 1)), [0, 90, 200], [HORIZON + 30, HORIZON - 30, HORIZON + 10], [0] * 3)
    assert metrics["elevation_MAE"] == pytest.approx(70.0 / 3)
    assert chance_metrics_from_counts([3], train_az, train_el, [0] * 5, [0, 90, 200],
                                      [HORIZON + 30, HORIZON - 30, HORIZON + 10], [0] * 3)["elevation_MAE"] == \
        pytest.approx(70.0 / 3)


# ---------------------------------------------------------------- decoding the heads

def _posteriors(azimuth, elevation, distance):
    return {"azimuth_prob": np.atleast_2d(azimuth), "elevation_prob": np.atleast_2d(elevation),
            "distance_prob": np.atleast_2d(distance)}


def test_decoding_takes_each_heads_mode_and_the_mean_lateral_angle():
    az = np.tile(np.arange(360), 3)
    el = np.repeat([HORIZON, HORIZON - 30, HORIZON + 50], 360)
    dist = np.arange(len(az)) % 21
    decoded = predicted_classes(_posteriors(np.eye(360)[az], np.eye(180)[el], np.eye(21)[dist]))
    np.testing.assert_array_equal(decoded["azimuth"], az)
    np.testing.assert_array_equal(decoded["elevation"], el)
    np.testing.assert_array_equal(decoded["distance"], dist)
    np.testing.assert_allclose(decoded["lateral_deg"], lateral_degrees(az, el - 90.0), atol=1e-9)
    # 30 and 60 degrees right of front (lateral 60 and 30), 0.7 and 0.3: the mode is 30 degrees
    # right of front, the lateral estimate 0.7 * 60 + 0.3 * 30 = 51 degrees
    azimuth = np.zeros(360)
    azimuth[[30, 60]] = [0.7, 0.3]
    decoded = predicted_classes(_posteriors(azimuth, np.eye(180)[HORIZON], np.eye(21)[4]))
    assert decoded["azimuth"][0] == 30 and decoded["lateral_deg"][0] == pytest.approx(51.0)


def test_lateral_estimate_is_scored_when_given():
    # true: 60 degrees right of front (lateral 30); direction predicted at the right ear
    # (lateral 90) but lateral estimate 40
    result = lateral_metrics([0], [HORIZON], [60], [HORIZON], lateral_pred_deg=[40.0])
    assert result["lateral_MAE"] == pytest.approx(10.0)
    assert lateral_metrics([0], [HORIZON], [60], [HORIZON])["lateral_MAE"] == pytest.approx(60.0)
    with pytest.raises(ValueError, match="lateral_pred_deg"):
        lateral_metrics([0, 0], [HORIZON] * 2, [60, 60], [HORIZON] * 2, lateral_pred_deg=[40.0])


def test_lateral_estimate_follows_weak_evidence_where_the_mode_follows_a_lumpy_prior():
    # An under-trained head: a prior with five sharp peaks times weak evidence (a broad bump
    # around the true lateral angle, on both sides of the frontal plane). Its mode piles onto
    # the prior's peaks; the posterior-mean lateral angle follows the source.
    grid, peaks = np.arange(360), np.array([0, 160, 210, 255, 330])
    prior = np.ones(360)
    for peak in peaks:
        prior += 4 * np.exp(-0.5 * (((grid - peak + 180) % 360 - 180) / 4.0) ** 2)
    true = np.arange(0, 360, 3)
    lateral = lateral_degrees(grid, 0.0)
    evidence = np.exp(-0.5 * ((lateral[None, :] - lateral_degrees(true, 0.0)[:, None]) / 25.0) ** 2)
    posterior = prior * evidence
    posterior /= posterior.sum(axis=1, keepdims=True)
    horizon = np.eye(180)[np.full(len(true), HORIZON)]
    decoded = predicted_classes(_posteriors(posterior, horizon, np.eye(21)[np.zeros(len(true), int)]))
    assert np.all(np.abs((decoded["azimuth"][:, None] - peaks[None, :] + 180) % 360 - 180).min(axis=1) <= 3)
    true_lateral = lateral_degrees(true, 0.0)
    mode_error = np.abs(lateral_degrees(decoded["azimuth"], 0.0) - true_lateral).mean()
    assert np.abs(decoded["lateral_deg"] - true_lateral).mean() < 0.5 * mode_error


# ---------------------------------------------------------------- chance level

def _brute_force_direction_error(azimuth, elevation):
    """Mean great-circle error of every one of the 360 x 180 classes, the slow way."""
    a, e = np.meshgrid(np.arange(360), np.arange(180), indexing="ij")
    errors = great_circle_degrees(a[..., None], e[..., None] - 90.0, azimuth, elevation - 90.0)
    return errors.mean(axis=-1)


def test_chance_direction_lands_on_cluster():
    rng = np.random.default_rng(2)
    # 60 % of the clips at (az 250, el +30), the rest within 3 degrees: a point holding
    # at least half the weight is the geometric median, so the constant lands exactly there.
    az = np.concatenate([np.full(60, 250), 250 + rng.integers(-3, 4, 40)])
    el = np.concatenate([np.full(60, HORIZON + 30), HORIZON + 30 + rng.integers(-3, 4, 40)])
    labels = np.zeros((100, 2))
    constant = chance_predictions(labels, az, el, np.full(100, 3))
    assert (constant["azimuth"], constant["elevation"]) == (250, HORIZON + 30)

    # near the wrap-around too, and against the brute-force minimum over all classes
    az = (rng.integers(-6, 7, 30)) % 360
    el = HORIZON - 10 + rng.integers(-6, 7, 30)
    constant = chance_predictions(np.zeros((30, 1)), az, el, np.zeros(30, dtype=int))
    brute = _brute_force_direction_error(az, el)
    assert brute[constant["azimuth"], constant["elevation"]] == pytest.approx(brute.min(), abs=1e-9)
    assert great_circle_degrees(constant["azimuth"], constant["elevation"] - 90, 0, -10) <= 6


def test_chance_direction_is_global_minimum_for_spread_targets():
    rng = np.random.default_rng(3)
    az, el = rng.integers(0, 360, 25), rng.integers(0, 180, 25)
    constant = chance_predictions(np.zeros((25, 1)), az, el, np.zeros(25, dtype=int))
    brute = _brute_force_direction_error(az, el)
    assert brute[constant["azimuth"], constant["elevation"]] == pytest.approx(brute.min(), abs=1e-9)


def test_er20_resolved_mae_and_der_each_have_their_own_best_constant():
    # Sources in front-left and back-left, as mirror images across the frontal plane: the MAE's
    # constant lies between them (it cannot pick a side), where front/back resolution does nothing;
    # a constant on one cluster is as good as any once resolved. Checked against brute force.
    rng = np.random.default_rng(5)
    front = np.stack([rng.integers(125, 145, 30), rng.integers(HORIZON - 5, HORIZON + 25, 30)], 1)
    az, el = np.concatenate([front[:, 0], 360 - front[:, 0]]), np.concatenate([front[:, 1], front[:, 1]])
    distance = np.array([0, 1, 5, 6, 6, 7] * 10)  # median 5, but class 6 leaves the fewest beyond one bin
    constant = chance_predictions(np.zeros((60, 1)), az, el, distance)
    metrics = chance_metrics(np.zeros((60, 1)), az, el, distance, np.ones((60, 1)), az, el, distance)
    grid_az, grid_el = np.meshgrid(np.arange(360), np.arange(180), indexing="ij")
    pa, pe = grid_az[..., None].astype(float), grid_el[..., None] - 90.0
    ta, te = az.astype(float), el - 90.0
    resolved = great_circle_degrees(*resolve_front_back(pa, pe, ta, te), ta, te).mean(-1)
    beyond = 100.0 * (great_circle_degrees(pa, pe, ta, te) > 20 + 1e-9).mean(-1)
    at_mae_constant = resolved[constant["azimuth"], constant["elevation"]]
    assert metrics["MAE_front_back_resolved"] <= resolved.min() + 0.5 < at_mae_constant - 10
    assert metrics["ER20"] == pytest.approx(beyond.min())
    assert constant["distance"] == 5 and constant["DER"] == 6
    assert metrics["DER"] == pytest.approx(100 * np.mean(np.abs(distance - 6) > 1))  # 1 in 3


def test_chance_events_and_distance():
    rng = np.random.default_rng(4)
    train_labels = (rng.random((200, 5)) < [0.1, 0.2, 0.3, 0.05, 0.5]).astype(float)
    eval_labels = (rng.random((80, 5)) < [0.1, 0.2, 0.3, 0.0, 0.5]).astype(float)
    train_labels[:, 1] *= 0.9  # soft labels
    train_dist = np.array([1, 2, 2, 3, 9] * 40)
    eval_dist = np.array([2, 3, 4, 6] * 20)
    train_az, train_el = np.full(200, 90), np.full(200, HORIZON)
    eval_az, eval_el = np.full(80, 90), np.full(80, HORIZON + 10)

    constant = chance_predictions(train_labels, train_az, train_el, train_dist)
    np.testing.assert_allclose(constant["event_scores"], (train_labels > 0.5).mean(axis=0))
    assert constant["distance"] == 2
    # an even count has two medians; the lower one is taken (both minimise the error)
    assert chance_predictions(np.zeros((4, 1)), np.zeros(4, int), np.zeros(4, int),
                              [1, 2, 3, 4])["distance"] == 2

    # every eval clip gets the same scores, so each class's AP is its eval prevalence
    scores = np.broadcast_to(constant["event_scores"], eval_labels.shape)
    ap = average_precision(scores, eval_labels)
    present = eval_labels.any(axis=0)
    np.testing.assert_allclose(ap[present], eval_labels.mean(axis=0)[present], atol=1e-12)

    metrics = chance_metrics(train_labels, train_az, train_el, train_dist,
                             eval_labels, eval_az, eval_el, eval_dist)
    assert set(metrics) >= {"mAP", "ER20", "MAE", "DER", "distance_error_m"}
    assert metrics["mAP"] == pytest.approx(100 * eval_labels.mean(axis=0)[present].mean())
    assert metrics["MAE"] == pytest.approx(10.0) and metrics["ER20"] == 0.0
    # eval distance bins off from 2: 0, 1, 2, 4 -> DER 50 %, mean 1.75 bins = 0.875 m
    assert metrics["DER"] == pytest.approx(50.0)
    assert metrics["distance_error_m"] == pytest.approx(0.875)


def test_chance_errors():
    with pytest.raises(ValueError, match="train_labels"):
        chance_predictions(np.zeros(3), [0, 0], [0, 0], [0, 0])
    # labels come from clips and directions from impulse responses: lengths may differ
    assert chance_predictions(np.zeros((3, 2)), [0, 0], [90, 90], [4, 4])["distance"] == 4
    with pytest.raises(ValueError, match="empty"):
        chance_predictions(np.zeros((0, 2)), [], [], [])
    with pytest.raises(ValueError, match="eval_labels"):
        chance_metrics(np.eye(3), [0, 1, 2], [90] * 3, [1] * 3, np.eye(2), [0, 1], [90] * 2, [1] * 2)
    with pytest.raises(ValueError, match="eval_distance"):
        chance_metrics(np.eye(3), [0, 1, 2], [90] * 3, [1] * 3, np.eye(3), [0, 1, 2], [90] * 3, [1] * 2)


def test_chance_from_class_counts_equals_the_label_matrix_computation():
    """The counting form (no clips x classes matrix) gives chance_metrics' numbers, mAP from mean_average_precision."""
    rng = np.random.default_rng(4)
    train_labels = (rng.random((50, 6)) < 0.3).astype(np.float32)
    eval_labels = (rng.random((40, 6)) < 0.2).astype(np.float32)
    eval_labels[:, 5] = 0  # a class absent from the eval set is left out of the mean
    train_spatial = [rng.integers(0, 360, 30), rng.integers(60, 120, 30), rng.integers(0, 21, 30)]
    eval_spatial = [rng.integers(0, 360, 40), rng.integers(60, 120, 40), rng.integers(0, 21, 40)]
    from_matrix = chance_metrics(train_labels, *train_spatial, eval_labels, *eval_spatial)
    from_counts = chance_metrics_from_counts(eval_labels.sum(0), *train_spatial, *eval_spatial)
    assert from_counts == pytest.approx(from_matrix)
    constant = np.broadcast_to(train_labels.mean(0), eval_labels.shape)
    assert from_counts["mAP"] == pytest.approx(mean_average_precision(constant, eval_labels)[0])
    with pytest.raises(ValueError, match="at least one positive"):
        chance_metrics_from_counts(np.zeros(6), *train_spatial, *eval_spatial)
