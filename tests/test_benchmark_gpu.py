"""scripts/benchmark_gpu.py: the --smoke run's table on CPU, the FLOP counter against hand counts,
and the bf16 peak lookup behind MFU."""
import json
import math
import os
import sys

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import benchmark_gpu  # noqa: E402

H100_SXM = "NVIDIA H100 80GB HBM3"  # what torch.cuda.get_device_name() reports for an H100 SXM


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One --smoke run on CPU, presented as an H100 so that the MFU column is computed."""
    path = tmp_path_factory.mktemp("bench") / "rows.json"
    capture = pytest.MonkeyPatch()
    capture.setattr(benchmark_gpu, "device_name", lambda device: H100_SXM)
    try:
        import io
        from contextlib import redirect_stdout
        out = io.StringIO()
        with redirect_stdout(out):
            rows = benchmark_gpu.main(["--smoke", "--device", "cpu", "--json", str(path)])
    finally:
        capture.undo()
    return rows, out.getvalue(), json.loads(path.read_text())


def test_smoke_table_has_one_row_per_setting_with_finite_positive_figures(smoke):
    rows, printed, saved = smoke
    assert [(r["model"], r["amp"], r["compile"]) for r in rows] == [("build_AST_tiny", "none", False),
                                                                   ("build_AST_tiny", "bf16", False)]
    table = [line for line in printed.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header == ["model", "amp", "compile", "train clips/s", "ms/step", "front %", "encoder %", "optim %",
                      "GFLOP/clip", "MFU", "peak mem GiB", "eval clips/s"]
    assert len(table) == 1 + len(rows)
    for line in table[1:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        numbers = [float(cell.rstrip("%")) for cell in cells[3:]]
        assert all(math.isfinite(x) and x > 0 for x in numbers), line
        assert sum(numbers[2:5]) == pytest.approx(100, abs=3)  # the split covers the step, timed whole
    for row in rows:
        parts = row["front_ms"] + row["encoder_ms"] + row["optimizer_ms"]
        assert 0.97 * row["ms_per_step"] <= parts <= row["ms_per_step"]
        assert row["train_clips_per_s"] == pytest.approx(2 / (row["ms_per_step"] / 1000))
        assert row["mfu"] == pytest.approx(row["flops_per_clip"] * row["train_clips_per_s"] / 989.5e12)
        assert row["peak_memory_bytes"] > 2 ** 20 and row["eval_clips_per_s"] > 0
    assert saved["rows"] == json.loads(json.dumps(rows)) and saved["device"] == H100_SXM
    assert "H100 datasheet" in saved["peak_source"]


def test_flops_per_clip_of_the_tiny_model_match_a_hand_count(smoke):
    """Encoder matmuls and attention, patch embedding and fusion conv; backward = 2x forward
    except the fusion conv, whose input needs no gradient."""
    d, depth, classes = 192, 4, 355 + 21 + 360 + 180
    tokens = 3 + int(64 * 0.75) * int(8 * 0.75)  # CLS + kept rows x kept columns of the 64 x 8 grid
    encoder = depth * (24 * tokens * d * d + 4 * tokens * tokens * d)
    patches = 2 * 512 * 16 * 16 * d
    fusion = 2 * 1024 * 128 * 4 * 9
    heads = 2 * d * classes
    hand = 3 * (encoder + patches + heads) + 2 * fusion
    counted = smoke[0][0]["flops_per_clip"]
    assert hand < counted < 1.06 * hand  # the rest: the mel projections of the front end


def test_flop_counter_matches_hand_counts_for_linear_and_attention():
    linear = torch.nn.Linear(8, 4)
    x = torch.randn(5, 8, requires_grad=True)
    assert benchmark_gpu.count_flops(lambda: linear(x)) == 2 * 5 * 8 * 4
    assert benchmark_gpu.count_flops(lambda: linear(x).sum().backward()) == 3 * 2 * 5 * 8 * 4  # + dX, dW
    b, h, n, dh = 2, 3, 16, 8
    q, k, v = (torch.randn(b, h, n, dh, requires_grad=True) for _ in range(3))
    scores_and_mix = 2 * (2 * b * h * n * n * dh)  # Q K^T, then softmax(.) V
    assert benchmark_gpu.count_flops(lambda: F.scaled_dot_product_attention(q, k, v)) == scores_and_mix
    # backward: Q K^T again, dP = dO V^T, dV = P^T dO, dQ = dS K, dK = dS^T Q
    total = benchmark_gpu.count_flops(lambda: F.scaled_dot_product_attention(q, k, v).sum().backward())
    assert total == scores_and_mix + 5 * (2 * b * h * n * n * dh)


@pytest.mark.parametrize("name, tflops", [
    (H100_SXM, 989.5), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H100 NVL", 835.5), ("NVIDIA GH200 480GB", 989.5),
    ("NVIDIA H200", 989.5), ("NVIDIA H200 NVL", 835.5), ("NVIDIA A100-SXM4-80GB", 312.0),
    ("NVIDIA A100 80GB PCIe", 312.0), ("NVIDIA L4", 121.0), ("NVIDIA L40S", 362.05), ("NVIDIA A10", 125.0),
])
def test_bf16_peak_is_looked_up_from_the_device_name(name, tflops):
    peak, source = benchmark_gpu.peak_bf16_flops(name)
    assert peak == tflops * 1e12 and "datasheet" in source


@pytest.mark.parametrize("name", ["NVIDIA A10G", "NVIDIA GeForce RTX 4090", "Tesla V100-SXM2-16GB", "cpu (2 threads)"])
def test_unknown_devices_get_no_mfu_rather_than_a_guess(name):
    peak, reason = benchmark_gpu.peak_bf16_flops(name)
    assert peak is None and name in reason
    row = {"model": "m", "amp": "bf16", "compile": False, "ms_per_step": 10.0, "front_ms": 1.0, "encoder_ms": 8.0,
           "optimizer_ms": 1.0, "flops_per_clip": 1e9, "train_clips_per_s": 100.0, "mfu": None,
           "peak_memory_bytes": 2 ** 30, "eval_clips_per_s": 300.0}
    assert "| n/a |" in benchmark_gpu.format_table([row])
