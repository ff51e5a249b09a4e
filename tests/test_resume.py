"""--resume: stored arguments compared with the command line, and the random streams continued."""
import logging

import pytest
import torch

import main_finetune
from conftest import train_args, write_tiny_dataset
from util.checkpoint import load_checkpoint

FAST = ("--patch_size", "32", "--batch_size", "2")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two epochs straight, and one epoch then resumed for the second: (data, straight dir, resumed dir)."""
    root = tmp_path_factory.mktemp("resume")
    data = write_tiny_dataset(root, n_train=4, n_eval=2)
    straight, first, resumed = root / "straight", root / "first", root / "resumed"
    assert main_finetune.run(train_args(data, straight, "--epochs", "2", *FAST)) == 0
    # warm-up is 1 epoch, so epoch 0 is the same whether the run is 1 or 2 epochs long
    assert main_finetune.run(train_args(data, first, "--epochs", "1", *FAST)) == 0
    assert main_finetune.run(train_args(data, resumed, "--epochs", "2", *FAST,
                                        "--resume", str(first / "checkpoint-last.pth"))) == 0
    return data, straight, first, resumed


def test_a_resumed_run_ends_exactly_where_the_uninterrupted_one_does(runs):
    _, straight, _, resumed = runs
    a = load_checkpoint(str(straight / "checkpoint-last.pth"))
    b = load_checkpoint(str(resumed / "checkpoint-last.pth"))
    assert a["epoch"] == b["epoch"] == 1
    # random RIR pairing and SpecAugment draw from torch's RNG: only a restored stream repeats them
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert len(a["rng"]) == 1 and set(a["rng"][0]) == {"cpu", "cuda"}


def test_model_changes_are_refused_before_anything_loads(runs, tmp_path):
    data, _, first, _ = runs
    last = str(first / "checkpoint-last.pth")
    with pytest.raises(SystemExit, match=r"cannot resume with another model: --patch_size 16 \(the run used 32\)"):
        main_finetune.run(train_args(data, tmp_path, "--epochs", "2", "--batch_size", "2", "--resume", last))
    with pytest.raises(SystemExit, match=r"--reverb_type mono \(the run used binaural\)"):
        main_finetune.run(train_args(data, tmp_path, "--epochs", "2", *FAST, "--reverb_type", "mono",
                                     "--resume", last))
    # the optimizer state holds the run's lr groups: a run from before the option ran at 1
    with pytest.raises(SystemExit, match=r"another optimizer: --head_lr_scale 10.0 \(the run used 1.0\)"):
        main_finetune.run(train_args(data, tmp_path, "--epochs", "2", *FAST, "--head_lr_scale", "10",
                                     "--resume", last))
    # same shapes, but the events head would read other tokens than the ones it was trained on
    with pytest.raises(SystemExit, match=r"--event_pool mean \(the run used cls\)"):
        main_finetune.run(train_args(data, tmp_path, "--epochs", "2", *FAST, "--event_pool", "mean",
                                     "--resume", last))


def test_a_resumed_run_takes_the_command_lines_decays_and_keeps_the_moments(runs, tmp_path):
    # the optimizer state stores each group's lr scale and weight decay beside its moments; the
    # warning (below) says the new values apply, so they must, and weight decay 0 must still load
    data, _, first, _ = runs
    assert main_finetune.run(train_args(data, tmp_path, "--epochs", "2", *FAST, "--layer_decay", "0.5",
                                        "--weight_decay", "0", "--resume", str(first / "checkpoint-last.pth"))) == 0
    groups = load_checkpoint(str(tmp_path / "checkpoint-last.pth"))["optimizer"]["param_groups"]
    # build_AST_tiny has 4 blocks: scales 0.5 ** (5 - layer) from the embedding's 1/32 to the top's 1
    assert sorted({g["lr_scale"] for g in groups}) == [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0]
    assert {g["weight_decay"] for g in groups} == {0.0}


def test_an_optimizer_state_with_other_groups_is_refused_in_one_line(runs, tmp_path):
    data, _, first, _ = runs
    checkpoint = load_checkpoint(str(first / "checkpoint-last.pth"))
    checkpoint["optimizer"]["param_groups"].pop()  # as an older version wrote with --weight_decay 0
    torch.save(checkpoint, tmp_path / "merged.pth")
    with pytest.raises(SystemExit, match=r"merged.pth: its optimizer state has \d+ parameter groups where this "
                                         r"run's has \d+.*use --finetune"):
        main_finetune.run(train_args(data, tmp_path, "--epochs", "2", *FAST, "--resume", str(tmp_path / "merged.pth")))


def test_run_changes_are_warned_about(runs, tmp_path, caplog):
    data, _, first, _ = runs
    args = main_finetune.get_args_parser().parse_args(
        train_args(data, tmp_path, "--epochs", "3", *FAST, "--blr", "1e-2", "--event_loss_weight", "10",
                   "--resume", str(first / "checkpoint-last.pth")))
    args.lr = args.blr * 2 / 256
    stored = load_checkpoint(args.resume)["args"]
    with caplog.at_level(logging.WARNING, logger="spatial_ast"):
        main_finetune.compare_resumed_args(stored, args, args.resume)
    warned = {record.getMessage().split()[2] for record in caplog.records}
    assert warned == {"--epochs", "--blr", "--lr", "--event_loss_weight"}
