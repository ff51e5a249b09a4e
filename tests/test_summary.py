"""util.summary: the demo's closing table (model beside chance) and its training curves."""
import json

import pytest

from util import summary


def write_run(folder, with_log=True):
    metrics = {"mAP": 25.0, "ER20": 80.0, "MAE": 46.0, "DER": 52.5, "lateral_MAE": 12.0, "elevation_MAE": 15.0,
               "front_back_accuracy": 75.0,
               "MAE_front_back_resolved": 23.0, "num_clips": 400, "reverb_type": "binaural",
               "chance": {"mAP": 12.5, "ER20": 99.0, "MAE": 92.0, "DER": 75.0, "lateral_MAE": 40.0, "elevation_MAE": 20.0,
                          "front_back_accuracy": 50.0, "MAE_front_back_resolved": 46.0}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    if with_log:
        records = [{"epoch": e, "train_loss": 40.0 - e, "test_mAP": 15.0 + e, "test_ER20": 90.0 - e,
                    "test_MAE": 70.0 - e, "test_DER": 74.0, "test_lateral_MAE": 30.0 - e, "test_elevation_MAE": 19.0 - e,
                    "test_front_back_accuracy": 50.0 + e, "test_MAE_front_back_resolved": 35.0 - e}
                   for e in range(3)]
        (folder / "log.txt").write_text("\n".join(json.dumps(r) for r in records) + "\n")


def test_table_gives_each_metric_as_a_factor_of_chance(tmp_path, capsys):
    write_run(tmp_path)
    assert summary.main([str(tmp_path)]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if "(" in line}
    assert rows["mAP"][2:5] == ["25.00", "12.50", "2.00"]  # 25 / 12.5
    assert rows["MAE"][2:5] == ["46.00", "92.00", "0.50"]
    assert rows["DER"][2:5] == ["52.50", "75.00", "0.70"]
    assert rows["lateral_MAE"][2:5] == ["12.00", "40.00", "0.30"]
    assert rows["elevation_MAE"][2:5] == ["15.00", "20.00", "0.75"]
    assert rows["front_back_accuracy"][2:5] == ["75.00", "50.00", "1.50"]
    assert rows["MAE_front_back_resolved"][2:5] == ["23.00", "46.00", "0.50"]
    assert (tmp_path / "training_curves.png").stat().st_size > 0


def test_curves_mark_chance_on_each_metric_panel(tmp_path, monkeypatch):
    write_run(tmp_path)
    records = summary.read_log(tmp_path / "log.txt")
    chance = json.loads((tmp_path / "metrics.json").read_text())["chance"]
    drawn = {}
    monkeypatch.setattr(summary, "save_figure", lambda fig, path: drawn.setdefault("figure", fig) and path)
    summary.plot_training_curves(records, str(tmp_path / "curves.png"), chance)
    loss_panel, *metric_panels = drawn["figure"].axes
    assert len(loss_panel.get_lines()) == 1  # the loss has no chance level
    for ax, (name, _, _) in zip(metric_panels, summary.METRICS):
        model_line, chance_line = ax.get_lines()
        assert list(model_line.get_ydata()) == [r[f"test_{name}"] for r in records]
        assert set(chance_line.get_ydata()) == {chance[name]}, name


def test_an_older_metrics_file_without_the_lateral_angle_still_prints(tmp_path, capsys):
    write_run(tmp_path, with_log=False)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    del metrics["lateral_MAE"], metrics["front_back_accuracy"]
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert summary.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "MAE (deg)" in out and "lateral_MAE" not in out


def test_a_run_without_metrics_is_one_clear_error(tmp_path, capsys):
    assert summary.main([str(tmp_path)]) == 2
    assert "metrics.json not found" in capsys.readouterr().err


def test_a_metric_with_nothing_to_score_is_null_in_strict_json_and_a_dash_in_the_table(tmp_path, capsys):
    from util.metrics import json_ready
    record = {"mAP": 25.0, "front_back_accuracy": float("nan"), "chance": {"front_back_accuracy": float("inf")}}
    strict = json.dumps(json_ready(record), allow_nan=False)  # what main_finetune.py writes
    assert json.loads(strict) == {"mAP": 25.0, "front_back_accuracy": None, "chance": {"front_back_accuracy": None}}
    write_run(tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    metrics["front_back_accuracy"] = None
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    log = [json.loads(line) for line in (tmp_path / "log.txt").read_text().splitlines()]
    log[1]["test_front_back_accuracy"] = None
    (tmp_path / "log.txt").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    assert summary.main([str(tmp_path)]) == 0
    row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("front_back"))
    assert row[2:5] == ["-", "50.00", "-"]


def test_a_truncated_metrics_file_is_one_clear_error(tmp_path):
    write_run(tmp_path)
    (tmp_path / "metrics.json").write_text('{"mAP": 25.0, "MAE"')
    with pytest.raises(SystemExit, match=r"metrics.json: not valid json .*interrupted"):
        summary.main([str(tmp_path)])
