"""The distributed path with two real processes: torchrun, gloo on CPU."""
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, train_args, write_tiny_dataset


def torchrun(*args):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               os.path.join(ROOT, "tests", "ddp_entry.py"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One epoch on 2 ranks over a partial download: 2 clips missing, 1 truncated (and drawn most)."""
    data = write_tiny_dataset(tmp_path_factory.mktemp("ddp_data"), n_train=8, n_eval=5, seconds=4.0)
    for clip_id in ("train001", "train004"):
        os.remove(os.path.join(data["audio_root"], "train", clip_id + ".wav"))
    with open(os.path.join(data["audio_root"], "train", "train006.wav"), "wb") as f:
        f.write(b"truncated download")
    with open(data["weight_csv"], "w") as f:
        f.write("\n".join(["1"] * 6 + ["100", "1"]) + "\n")
    out = tmp_path_factory.mktemp("ddp_run")
    torchrun(*train_args(data, out, "--epochs", "1", "--dist_eval", "--weight_sampler", "--distributed_wrapper",
                         "--epoch_len", "8", "--replacement", "--weight_csv", data["weight_csv"],
                         "--missing_audio", "skip"))
    return data, out


def test_ranks_end_with_identical_weights(ddp_run):
    _, out = ddp_run
    rank0, rank1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    # the weights moved: this is a trained model, not two copies of the initialisation
    assert rank0["conv_downsample.1.num_batches_tracked"].item() > 0


def test_distributed_eval_scores_every_clip_once(ddp_run):
    _, out = ddp_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_clips"] == 5  # 5 clips on 2 ranks: the sampler's padding duplicate is dropped


def test_resume_and_eval_under_torchrun(ddp_run, tmp_path):
    data, out = ddp_run
    resumed = tmp_path / "resumed"
    torchrun(*train_args(data, resumed, "--epochs", "2", "--resume", str(out / "checkpoint-last.pth"),
                         "--missing_audio", "skip"))
    log = [json.loads(line) for line in (resumed / "log.txt").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1]
    evaluated = tmp_path / "eval"
    torchrun(*train_args(data, evaluated, "--eval", "--dist_eval", "--finetune", str(resumed / "checkpoint-last.pth")))
    metrics = json.loads((evaluated / "metrics.json").read_text())
    assert {"mAP", "ER20", "MAE", "DER"} <= set(metrics) and metrics["num_clips"] == 5


def test_partial_download_trains_to_the_end_with_skip(ddp_run):
    """Missing clips dropped at start-up, an undecodable one replaced in training, on 2 ranks."""
    _, out = ddp_run
    (record,) = [json.loads(line) for line in (out / "log.txt").read_text().splitlines()]
    assert record["epoch"] == 0 and record["train_replaced_clips"] > 0
    assert (out / "missing_clips.txt").read_text().split() == ["train001", "train004"]
