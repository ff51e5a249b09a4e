"""The training step's GPU knobs: no host syncs per step, deferred non-finite check, fused AdamW,
--compile wiring, SDPA attention and a float32 front end under bf16 autocast."""
import argparse

import pytest
import torch
from torch import nn

import engine_finetune as engine
import main_finetune
from conftest import train_args
from models import create_model
from util.lr import set_learning_rate


class LinearHeads(nn.Module):
    """Four linear heads on the mean of the waveform: the engine's contract at ~no cost."""

    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(2, n) for n in (3, 21, 360, 180))

    def forward(self, waveforms, reverbs, mask_t_prob=0.0, mask_f_prob=0.0):
        x = torch.cat([waveforms.mean(-1), reverbs.mean(-1)[:, :1]], dim=1)
        return tuple(head(x) for head in self.heads)


def batches(steps, nan_at=None):
    out = []
    for step in range(steps):
        waveforms = torch.randn(2, 1, 16)
        if step == nan_at:
            waveforms[0, 0, 0] = float("nan")
        out.append((waveforms, torch.randn(2, 2, 8), torch.rand(2, 3), torch.tensor([[1, 10, 20], [3, 350, 90]])))
    return out


def engine_args(**overrides):
    values = dict(accum_iter=1, lr=1e-3, min_lr=0.0, warmup_epochs=0, epochs=1, mask_t_prob=0.0, mask_f_prob=0.0,
                  amp="none", clip_grad=1.0, log_interval=5, event_loss_weight=1.0, distance_loss_weight=1.0,
                  direction_loss_weight=2.0, direction_label_sigma=0.0, distance_label_sigma=0.0)
    values.update(overrides)
    return argparse.Namespace(**values)


def train(loader, **overrides):
    model = LinearHeads()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)  # CPU AdamW reads its step counts with .item()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return engine.train_one_epoch(model, loader, optimizer, scaler, torch.device("cpu"), 0, engine_args(**overrides))


def count_host_reads(monkeypatch):
    """Count the tensor -> Python conversions that make a GPU wait (item, tolist, bool, float...)."""
    calls = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


def test_the_loss_is_read_back_once_per_log_interval_not_per_step(monkeypatch):
    calls = count_host_reads(monkeypatch)
    stats = train(batches(10), log_interval=5)
    assert calls == ["tolist", "tolist"]  # steps 5 and 10; before: one .item() every step
    assert stats["loss"] > 0 and set(stats) >= {"loss_events", "loss_azimuth", "lr"}


def test_epoch_means_do_not_depend_on_the_log_interval():
    torch.manual_seed(0)
    loader = batches(7)
    torch.manual_seed(1)
    every_step = train(loader, log_interval=1)
    torch.manual_seed(1)
    windowed = train(loader, log_interval=3)  # 3 + 3 + the last, short window
    assert windowed == pytest.approx(every_step)


def test_a_non_finite_loss_stops_at_the_read_naming_its_own_step():
    with pytest.raises(engine.NonFiniteLossError, match=r"loss is nan at epoch 0, step 6$"):
        train(batches(10, nan_at=6), log_interval=5)
    # a window cut short by the epoch's end is read (and checked) too
    with pytest.raises(engine.NonFiniteLossError, match="step 8"):
        train(batches(9, nan_at=8), log_interval=5)


def test_adamw_is_fused_on_cuda_and_multi_tensor_elsewhere():
    assert main_finetune.adamw_kernel(torch.device("cuda", 0)) == {"fused": True}
    assert main_finetune.adamw_kernel(torch.device("cpu")) == {"foreach": True}
    args = argparse.Namespace(weight_decay=0.05, layer_decay=0.75, head_lr_scale=1.0, lr=1e-3)
    optimizer = main_finetune.build_optimizer(args, create_model("build_AST_tiny", num_classes=3), torch.device("cpu"))
    assert all(group["foreach"] and not group["fused"] for group in optimizer.param_groups)
    assert len(optimizer.param_groups) > 2  # the layer-decay groups are kept


def test_head_lr_scale_reaches_the_optimizer_and_the_schedule():
    model = create_model("build_AST_tiny", num_classes=3)
    args = main_finetune.get_args_parser().parse_args(["--layer_decay", "1.0", "--head_lr_scale", "10"])
    assert main_finetune.get_args_parser().parse_args([]).head_lr_scale == 1.0  # upstream's optimiser by default
    args.lr, args.min_lr, args.warmup_epochs, args.epochs = 1e-3, 0.0, 0, 1
    optimizer = main_finetune.build_optimizer(args, model, torch.device("cpu"))
    set_learning_rate(optimizer, 0.0, args)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert lr_of[id(model.elevation_head.weight)] == pytest.approx(1e-2)
    assert lr_of[id(model.head.bias)] == pytest.approx(1e-2)
    assert lr_of[id(model.fc_norm.weight)] == pytest.approx(1e-3)  # the heads' LayerNorms are no heads
    assert lr_of[id(model.blocks[0].attn.qkv.weight)] == pytest.approx(1e-3)


def test_compile_flag_compiles_the_training_model(tiny_data, tmp_path, monkeypatch):
    compiled = []

    def fake_compile(module, **kwargs):  # inductor on 2 CPU cores takes minutes: check the wiring only
        compiled.append(module)
        return module
    monkeypatch.setattr(torch, "compile", fake_compile)
    assert main_finetune.run(train_args(tiny_data, tmp_path, "--epochs", "1", "--first_eval_ep", "1",
                                        "--compile")) == 0
    assert len(compiled) == 1 and isinstance(compiled[0], nn.Module)
    assert (tmp_path / "checkpoint-last.pth").exists()
    assert not main_finetune.get_args_parser().parse_args([]).compile  # off unless asked


def test_attention_runs_through_sdpa(monkeypatch):
    """timm's blocks call F.scaled_dot_product_attention (flash/efficient kernels on a GPU)."""
    model = create_model("build_AST_tiny", num_classes=3)
    assert all(block.attn.fused_attn for block in model.blocks)
    calls = []
    original = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    with torch.no_grad():
        model.forward_features(torch.randn(1, 4, 1024, 128))
    assert len(calls) == len(model.blocks)


def test_bf16_autocast_keeps_the_front_end_in_float32():
    model = create_model("build_AST_tiny", num_classes=3).eval()
    waveforms, reverbs = torch.randn(1, 1, 32000), torch.randn(1, 2, 800)
    dtypes = {}
    model.conv_downsample[0].register_forward_hook(lambda m, inputs, out: dtypes.update(front=inputs[0].dtype))
    model.blocks[0].attn.qkv.register_forward_hook(lambda m, inputs, out: dtypes.update(encoder=out.dtype))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(waveforms, reverbs)
    assert dtypes == {"front": torch.float32, "encoder": torch.bfloat16}
