"""main_finetune.py end to end in one process: train, resume, evaluate, fail cleanly."""
import csv
import json
import os

import pytest
import torch

import main_finetune
from conftest import train_args
from util.checkpoint import load_checkpoint
from util.lr import learning_rate


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main_finetune.run(train_args(tiny_data, out, "--epochs", "1", "--amp", "bf16")) == 0
    return out


def test_training_writes_checkpoints_logs_and_metrics(trained):
    for name in ("checkpoint-last.pth", "checkpoint-best.pth", "log.txt", "metrics.json"):
        assert (trained / name).exists(), name
    checkpoint = load_checkpoint(str(trained / "checkpoint-last.pth"))
    assert set(checkpoint) >= {"model", "optimizer", "epoch", "scaler", "args", "classes"}
    assert checkpoint["epoch"] == 0 and isinstance(checkpoint["args"], dict)
    assert [c["mid"] for c in checkpoint["classes"]] == ["/t/low", "/t/mid", "/t/high"]
    record = json.loads((trained / "log.txt").read_text().splitlines()[-1])
    assert record["epoch"] == 0 and record["train_loss"] > 0 and "test_mAP" in record
    # the last epoch's evaluation writes the report of the model that checkpoint-last.pth holds
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["mAP"] == pytest.approx(record["test_mAP"])
    for name in ("class_ap.csv", "predictions.csv", "azimuth_scatter.png", "lateral_scatter.png"):
        assert (trained / name).exists(), name


def test_resume_continues_from_the_next_epoch(trained, tiny_data, tmp_path):
    last = str(trained / "checkpoint-last.pth")
    before = load_checkpoint(last)
    out = tmp_path / "resumed"
    main_finetune.run(train_args(tiny_data, out, "--epochs", "2", "--resume", last))
    resumed = load_checkpoint(str(out / "checkpoint-last.pth"))
    assert resumed["epoch"] == 1
    log = [json.loads(line) for line in (out / "log.txt").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1]  # epoch 0 was not trained again
    # the optimizer state carried over: AdamW step counts keep growing
    step_before = before["optimizer"]["state"][0]["step"]
    assert resumed["optimizer"]["state"][0]["step"] > step_before
    # the learning rate follows the schedule of epoch 1 (cosine after the 1-epoch warm-up), not a fresh
    # warm-up: the epoch's last step, at epoch 1 + (steps - 1) / steps of 2
    steps = int(resumed["optimizer"]["state"][0]["step"] - step_before)
    expected = learning_rate(1 + (steps - 1) / steps, 2e-3 * 2 / 256, 1e-6, 1, 2)
    assert log[0]["train_lr"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("workers", ["0", "1"])
def test_how_often_a_run_evaluates_does_not_change_its_training(tiny_data, tmp_path, workers):
    weights = []
    for first_eval in ("0", "1"):  # evaluate after both epochs, or after the last one only
        out = tmp_path / f"eval-from-{first_eval}"
        assert main_finetune.run(train_args(tiny_data, out, "--first_eval_ep", first_eval,
                                            "--num_workers", workers)) == 0
        log = [json.loads(line) for line in (out / "log.txt").read_text().splitlines()]
        assert [("test_mAP" in r) for r in log] == [first_eval == "0", True]
        weights.append(load_checkpoint(str(out / "checkpoint-last.pth"))["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_eval_writes_the_four_metrics(trained, tiny_data, tmp_path):
    out = tmp_path / "eval"
    args = train_args(tiny_data, out, "--eval", "--finetune", str(trained / "checkpoint-best.pth"))
    model = main_finetune.main(_parse(args))
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"mAP", "ER20", "MAE", "DER"} <= set(metrics) and metrics["num_clips"] == 4
    assert 0 <= metrics["mAP"] <= 100 and 0 <= metrics["MAE"] <= 180
    assert set(metrics["chance"]) >= {"mAP", "ER20", "MAE", "DER"}
    trained_weights = load_checkpoint(str(trained / "checkpoint-best.pth"))["model"]
    assert torch.equal(model.head.weight, trained_weights["head.weight"])
    # the report agrees with the metrics: mean of the per-class APs is the mAP
    with open(out / "class_ap.csv") as f:
        aps = [float(row["ap"]) for row in csv.DictReader(f) if row["ap"]]
    assert 100 * sum(aps) / len(aps) == pytest.approx(metrics["mAP"])
    for name in ("predictions.csv", "azimuth_scatter.png", "direction_error_hist.png"):
        assert (out / name).exists(), name
    # deterministic pairing: a second evaluation gives identical numbers
    main_finetune.main(_parse(args))
    assert json.loads((out / "metrics.json").read_text()) == metrics


def test_eval_scores_the_model_as_trained_whatever_the_command_line_says(trained, tiny_data, tmp_path, caplog):
    # the events head's token and the sources' level leave no trace in the weights' shapes: taken
    # from the command line, they would load strictly and score another model without a word
    plain = tmp_path / "plain"
    main_finetune.main(_parse(train_args(tiny_data, plain, "--eval", "--finetune", str(trained / "checkpoint-best.pth"))))
    other = tmp_path / "other"
    args = _parse(train_args(tiny_data, other, "--eval", "--finetune", str(trained / "checkpoint-best.pth"),
                             "--event_pool", "mean", "--audio_normalize"))
    with caplog.at_level("WARNING", logger="spatial_ast"):
        main_finetune.main(args)
    assert (args.event_pool, args.audio_normalize) == ("cls", False)
    assert json.loads((other / "metrics.json").read_text()) == json.loads((plain / "metrics.json").read_text())
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "trained with --event_pool cls; evaluated so, not with the command line's mean" in warned
    assert "trained with --audio_normalize False" in warned


def test_non_finite_loss_stops_with_a_message_and_keeps_the_last_checkpoint(trained, tiny_data, tmp_path):
    out = tmp_path / "nan"
    out.mkdir()
    last = out / "checkpoint-last.pth"
    last.write_bytes((trained / "checkpoint-last.pth").read_bytes())
    with pytest.raises(SystemExit, match=r"loss is nan .*last good checkpoint is .*checkpoint-last.pth"):
        main_finetune.run(train_args(tiny_data, out, "--event_loss_weight", "nan", "--resume", str(last)))
    assert load_checkpoint(str(last))["epoch"] == 0


def test_a_new_run_does_not_overwrite_an_earlier_runs_checkpoint(trained, tiny_data, tmp_path):
    (tmp_path / "checkpoint-last.pth").write_bytes((trained / "checkpoint-last.pth").read_bytes())
    before = (tmp_path / "checkpoint-last.pth").read_bytes()
    with pytest.raises(SystemExit, match=r"checkpoint-last.pth holds an earlier run: continue it with --resume "):
        main_finetune.run(train_args(tiny_data, tmp_path, "--epochs", "1"))
    assert (tmp_path / "checkpoint-last.pth").read_bytes() == before


def test_bad_data_stops_before_training(tiny_data, tmp_path):
    with pytest.raises(SystemExit, match="missing --audioset_train"):
        main_finetune.run([a for a in train_args(tiny_data, tmp_path) if a != tiny_data["train_json"]
                           and a != "--audioset_train"])
    with pytest.raises(SystemExit, match="--nb_classes 355 but .* lists 3 classes"):
        main_finetune.run(train_args(tiny_data, tmp_path) + ["--nb_classes", "355"])
    with pytest.raises(SystemExit, match="nothing.json: clip list json not found"):
        main_finetune.run(train_args(tiny_data, tmp_path) + ["--audioset_train", str(tmp_path / "nothing.json")])
    assert not os.path.exists(tmp_path / "checkpoint-last.pth")


def _parse(argv):
    args = main_finetune.get_args_parser().parse_args(argv)
    main_finetune.check_args(args)
    return args


def test_evaluating_a_checkpoint_of_another_size_is_one_clear_error(trained, tiny_data, tmp_path):
    args = train_args(tiny_data, tmp_path, "--eval", "--finetune", str(trained / "checkpoint-best.pth"),
                      "--model", "build_AST_small")
    with pytest.raises(SystemExit, match=r"checkpoint-best.pth: does not fit this model .*Missing key"):
        main_finetune.run(args)


def test_small_run_flags_are_checked_before_anything_starts(tiny_data, tmp_path):
    with pytest.raises(SystemExit, match="--fusion_init interaural needs --reverb_type binaural"):
        _parse(train_args(tiny_data, tmp_path, "--fusion_init", "interaural", "--reverb_type", "mono"))
    with pytest.raises(SystemExit, match="--direction_label_sigma must be >= 0"):
        _parse(train_args(tiny_data, tmp_path, "--direction_label_sigma", "-1"))
    with pytest.raises(SystemExit, match="--fusion_channels must be 1..2 with --reverb_type mono"):
        _parse(train_args(tiny_data, tmp_path, "--fusion_channels", "4", "--reverb_type", "mono"))
    with pytest.raises(SystemExit):  # argparse: 24 frames do not tile the 1024
        _parse(train_args(tiny_data, tmp_path, "--patch_size", "24"))
    with pytest.raises(SystemExit):
        _parse(train_args(tiny_data, tmp_path, "--patch_size", "8x100"))
    assert _parse(train_args(tiny_data, tmp_path, "--patch_size", "8x128")).patch_size == "8x128"
    with pytest.raises(SystemExit, match=r"--mask_f_prob 0.3 drops all 1 frequency columns of tokens of --patch_size 8x128"):
        _parse(train_args(tiny_data, tmp_path, "--patch_size", "8x128", "--mask_f_prob", "0.3"))
    assert _parse(train_args(tiny_data, tmp_path, "--patch_size", "32x32")).patch_size == 32
    with pytest.raises(SystemExit, match=r"--mask_f_prob 0.25 has no effect with --no-mask_2d"):
        _parse(train_args(tiny_data, tmp_path, "--no-mask_2d", "--mask_t_prob", "0.5", "--mask_f_prob", "0.25"))
    with pytest.raises(SystemExit, match=r"--mask_t_prob 0.995 drops all 128 tokens of --patch_size 32"):
        _parse(train_args(tiny_data, tmp_path, "--no-mask_2d", "--mask_t_prob", "0.995", "--patch_size", "32"))
    for flag, value in (("--lr", "-1e-4"), ("--weight_decay", "-0.1"), ("--num_workers", "-1"), ("--seed", "-1"),
                        ("--layer_decay", "nan")):
        with pytest.raises(SystemExit, match=f"--{flag[2:]} must be >= 0, got"):
            _parse(train_args(tiny_data, tmp_path, f"{flag}={value}"))
    for flag in ("--distributed_wrapper", "--replacement"):  # without weighted sampling they did nothing
        with pytest.raises(SystemExit, match=r"--distributed_wrapper and --replacement .* need --weight_sampler"):
            _parse(train_args(tiny_data, tmp_path, flag))
    with pytest.raises(SystemExit, match=r"--epoch_len must be positive, got -4"):
        _parse(train_args(tiny_data, tmp_path, "--epoch_len=-4"))
    with pytest.raises(SystemExit, match=r"--clip_grad is a gradient norm and must be > 0 .*got -1.0"):
        _parse(train_args(tiny_data, tmp_path, "--clip_grad=-1"))


def test_demo_configuration_trains_and_its_checkpoint_loads_for_inference(tiny_data, tmp_path):
    from inference import load_model

    argv = train_args(tiny_data, tmp_path, "--epochs", "1", "--patch_size", "32", "--fusion_channels", "7",
                      "--fusion_init", "interaural",
                      "--direction_label_sigma", "8", "--distance_label_sigma", "0.5")
    assert main_finetune.run(argv) == 0
    model, _, _ = load_model(str(tmp_path / "checkpoint-best.pth"))
    assert model.patch_embed.grid_size == (32, 4)
    fusion = model.conv_downsample[0].weight
    assert fusion.shape == (7, 4, 3, 3)
    assert fusion[0, 2:].abs().max() > 0  # training moved the IPD taps away from the interaural start


def test_eval_chance_levels_need_no_training_clip_list(trained, tiny_data, tmp_path):
    """Chance comes from eval class counts and the training RIRs: --eval never reads the 2M-clip list."""
    out = tmp_path / "eval"
    args = train_args(tiny_data, out, "--eval", "--finetune", str(trained / "checkpoint-best.pth"),
                      "--audioset_train", str(tmp_path / "absent.json"))
    main_finetune.main(_parse(args))
    chance = json.loads((out / "metrics.json").read_text())["chance"]
    assert chance == json.loads((trained / "metrics.json").read_text())["chance"]
