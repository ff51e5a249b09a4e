"""The evaluation report: files, class AP table against the metrics, prediction rows against the arrays."""
import csv
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import engine_finetune
from dataset.metadata import ClassTable, RoomImpulse, load_class_table
from dataset.spatial_dataset import SpatialSoundDataset
from models.spatial_ast import build_AST_tiny
from util.metrics import great_circle_degrees, mean_average_precision, predicted_classes
from util.report import write_eval_report

FIGURES = ["azimuth_scatter.png", "lateral_scatter.png", "direction_error_hist.png", "direction_error_by_distance.png",
           "class_ap_best_worst.png"]


class ScalarLog:
    """Stands in for a SummaryWriter: records add_scalar calls."""

    def __init__(self):
        self.scalars = {}

    def add_scalar(self, tag, value, step):
        self.scalars[tag] = (value, step)

    def flush(self):
        pass


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def evaluation(tiny_data):
    """A real (untrained) tiny evaluation on the tiny dataset."""
    classes = load_class_table(tiny_data["label_csv"])
    dataset = SpatialSoundDataset(tiny_data["eval_json"], tiny_data["audio_root"], classes, tiny_data["reverb_eval"],
                                  tiny_data["root"], "binaural", train=False)
    torch.manual_seed(0)
    model = build_AST_tiny(num_classes=len(classes))
    loader = DataLoader(dataset, batch_size=2, num_workers=0)
    result, class_ap, predictions = engine_finetune.evaluate(model, loader, torch.device("cpu"))
    return result, class_ap, predictions, dataset


def test_report_files_and_tables(evaluation, tmp_path):
    result, class_ap, predictions, dataset = evaluation
    writer = ScalarLog()
    paths = write_eval_report(str(tmp_path), result, class_ap, predictions, dataset, log_writer=writer, epoch=7)
    expected = ["class_ap.csv", "predictions.csv", *FIGURES]
    assert sorted(os.path.basename(p) for p in paths) == sorted(expected)
    assert all(os.path.getsize(p) > 0 for p in paths)
    assert not os.path.exists(tmp_path / "metrics.json")
    assert writer.scalars == {f"eval/{k}": (pytest.approx(result[k]), 7)
                              for k in ("mAP", "ER20", "MAE", "DER", "lateral_MAE", "elevation_MAE",
                                        "front_back_accuracy", "MAE_front_back_resolved")}

    rows = read_csv(tmp_path / "class_ap.csv")
    assert [int(r["index"]) for r in rows] == list(range(len(dataset.classes)))
    assert [r["mid"] for r in rows] == dataset.classes.mids
    assert [r["display_name"] for r in rows] == dataset.classes.names  # "High, bright tone" survives quoting
    assert [int(r["positives"]) for r in rows] == (predictions["labels"] > 0.5).sum(0).tolist()
    aps = [float(r["ap"]) for r in rows if r["ap"]]
    assert len(aps) == result["num_classes_evaluated"]
    assert np.mean(aps) == pytest.approx(result["mAP"] / 100, abs=1e-6)

    check_prediction_rows(read_csv(tmp_path / "predictions.csv"), predictions, dataset)


def check_prediction_rows(rows, predictions, dataset):
    assert len(rows) == len(predictions["clip_index"])
    assert [r["clip_id"] for r in rows] == [dataset.clips[i].id for i in predictions["clip_index"]]
    assert [r["rir_fname"] for r in rows] == [dataset.rirs[j].fname for j in predictions["rir_index"]]
    column = {name: np.array([float(r[name]) for r in rows]) for name in rows[0]
              if name.endswith(("_deg", "_m"))}
    decoded = predicted_classes(predictions)
    np.testing.assert_allclose(column["pred_azimuth_deg"], decoded["azimuth"])
    np.testing.assert_allclose(column["pred_elevation_deg"], decoded["elevation"] - 90.0)
    np.testing.assert_allclose(column["true_azimuth_deg"], predictions["spatial"][:, 1])
    np.testing.assert_allclose(column["true_elevation_deg"], predictions["spatial"][:, 2] - 90.0)
    np.testing.assert_allclose(column["pred_distance_m"], decoded["distance"] * 0.5)
    angular = great_circle_degrees(column["pred_azimuth_deg"], column["pred_elevation_deg"],
                                   column["true_azimuth_deg"], column["true_elevation_deg"])
    np.testing.assert_allclose(column["angular_error_deg"], angular, atol=1e-4)
    # lateral angle: 90 degrees minus the angle to the right-ear axis (azimuth 0 on the horizon);
    # the predicted one is the model's own estimate
    lateral = 90 - great_circle_degrees(column["true_azimuth_deg"], column["true_elevation_deg"], 0, 0)
    np.testing.assert_allclose(column["true_lateral_deg"], lateral, atol=1e-4)
    np.testing.assert_allclose(column["pred_lateral_deg"], decoded["lateral_deg"], atol=1e-4)
    distance_error = np.abs(column["pred_distance_m"] - column["true_distance_m"])
    np.testing.assert_allclose(column["distance_error_m"], distance_error)
    for row, scores in zip(rows, predictions["scores"]):
        top = [item.split(":") for item in row["top3"].split(";")]
        assert len(top) == min(3, len(scores))
        assert [mid for mid, _ in top] == [dataset.classes.mids[j] for j in np.argsort(-scores, kind="stable")[:3]]
        assert [float(p) for _, p in top] == pytest.approx(np.sort(scores)[::-1][:3], abs=0.005)


def synthetic_evaluation(num_clips=300, num_classes=25, seed=0):
    """Random predictions over many classes, some without any positive."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((num_clips, num_classes)) < 0.1).astype(np.float32)
    labels[:, :3] = 0  # classes 0..2 never occur: empty AP
    predictions = {
        "scores": rng.random((num_clips, num_classes)).astype(np.float32),
        "labels": labels,
        "distance_prob": rng.dirichlet(np.ones(21), num_clips).astype(np.float32),
        "azimuth_prob": rng.dirichlet(np.ones(360), num_clips).astype(np.float32),
        "elevation_prob": rng.dirichlet(np.ones(180), num_clips).astype(np.float32),
        "spatial": np.stack([rng.integers(0, 21, num_clips), rng.integers(0, 360, num_clips),
                             rng.integers(0, 180, num_clips)], axis=1),
        "clip_index": np.arange(num_clips),
        "rir_index": rng.integers(0, 10, num_clips),
    }
    classes = ClassTable([f"/m/{i}" for i in range(num_classes)], [f"class {i}" for i in range(num_classes)])
    dataset = SimpleNamespace(classes=classes, clips=[SimpleNamespace(id=f"clip{i}") for i in range(num_clips)],
                              rirs=[RoomImpulse(f"room/{j}.npy", 0, 0, 0) for j in range(10)])
    return predictions, dataset


def test_report_with_absent_classes_and_many_classes(tmp_path):
    predictions, dataset = synthetic_evaluation()
    result, class_ap = engine_finetune.score(predictions)
    paths = write_eval_report(str(tmp_path), result, class_ap, predictions, dataset)
    assert len(paths) == 7
    rows = read_csv(tmp_path / "class_ap.csv")
    assert [r["ap"] for r in rows[:3]] == ["", "", ""] and all(r["ap"] for r in rows[3:])
    assert [int(r["positives"]) for r in rows] == predictions["labels"].sum(0).astype(int).tolist()
    mAP, _, _ = mean_average_precision(predictions["scores"], predictions["labels"])
    assert np.mean([float(r["ap"]) for r in rows[3:]]) == pytest.approx(mAP / 100, abs=1e-6)
    check_prediction_rows(read_csv(tmp_path / "predictions.csv"), predictions, dataset)
