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


def _count_gradient_all_reduces(rank, port, result_dir):
    """An epoch of 4 batches on 2 gloo ranks at --accum_iter 1, then 2: the DDP gradient all-reduces of each."""
    import argparse

    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    import engine_finetune as engine
    from models import build_AST_tiny
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(
        build_AST_tiny(num_classes=3, patch_size=32, freqm=0, timem=0, drop_path_rate=0.0))
    calls = []
    model.register_comm_hook(None, lambda state, bucket: calls.append(1) or allreduce_hook(state, bucket))
    generator = torch.Generator().manual_seed(rank)
    batches = [(torch.randn(2, 1, 32000, generator=generator), torch.randn(2, 2, 400, generator=generator),
                torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long)) for _ in range(4)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    optimizer.param_groups[0]["lr_scale"] = 1.0
    counts = []
    for accum_iter in (1, 1, 2):  # DDP rebuilds its buckets after the first step: that epoch is not counted
        args = argparse.Namespace(accum_iter=accum_iter, lr=1e-3, min_lr=0.0, warmup_epochs=0, epochs=1, amp="none",
                                  mask_t_prob=0.0, mask_f_prob=0.0, clip_grad=None, direction_label_sigma=0.0,
                                  distance_label_sigma=0.0, event_loss_weight=1.0, distance_loss_weight=1.0,
                                  direction_loss_weight=1.0, log_interval=20)
        calls.clear()
        engine.train_one_epoch(model, batches, optimizer, torch.amp.GradScaler("cpu", enabled=False),
                               torch.device("cpu"), 0, args)
        counts.append(len(calls))
    with open(os.path.join(result_dir, f"{rank}.json"), "w") as f:
        json.dump(counts, f)
    torch.distributed.destroy_process_group()


def test_accumulated_batches_skip_the_gradient_all_reduce(tmp_path):
    # DDP decides in the forward whether the backward all-reduces, so no_sync must hold both:
    # 4 batches at --accum_iter 2 synchronise twice, half as often as at 1
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_count_gradient_all_reduces, args=(port, str(tmp_path)), nprocs=2)
    (_, one, two), other_rank = [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in (0, 1)]
    assert [one, two] == other_rank[1:] and one > 0 and two == one // 2, (one, two)
