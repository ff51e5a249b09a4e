"""Checkpoint reading is weights-only, writing is atomic, fine-tuning takes AudioMAE and upstream files."""
import argparse
import logging
import os

import pytest
import torch

from models import build_AST_tiny
from util.checkpoint import CheckpointError, load_checkpoint, load_pretrained, model_state_dict, save_checkpoint


class _Payload:
    """Unpickling this would create a file: the proof that code from a checkpoint ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_atomic_save_round_trip_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "run" / "checkpoint-last.pth"
    save_checkpoint(str(path), {"model": {"w": torch.ones(2)}, "epoch": 3, "args": {"lr": 0.1}})
    save_checkpoint(str(path), {"model": {"w": torch.zeros(2)}, "epoch": 4, "args": {"lr": 0.1}})
    assert os.listdir(path.parent) == ["checkpoint-last.pth"]
    checkpoint = load_checkpoint(str(path))
    assert checkpoint["epoch"] == 4 and torch.equal(checkpoint["model"]["w"], torch.zeros(2))


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = str(tmp_path / "checkpoint-last.pth")
    save_checkpoint(path, {"epoch": 1})
    with pytest.raises(Exception):
        save_checkpoint(path, {"epoch": 2, "bad": lambda: None})  # torch.save cannot pickle a lambda
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["checkpoint-last.pth"]


def test_a_checkpoint_holding_another_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.ones(1)}, "args": _Payload(str(marker))}, path)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(str(path))
    assert not marker.exists()


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(str(tmp_path / "nope.pth"))
    (tmp_path / "bad.pth").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(str(tmp_path / "bad.pth"))


def test_upstream_layout_with_namespace_args_loads_strictly(tmp_path):
    source = build_AST_tiny(num_classes=3)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}  # saved from a DDP-wrapped model
    path = tmp_path / "finetuned.pth"
    torch.save({"model": state, "optimizer": {}, "epoch": 99, "scaler": {},
                "args": argparse.Namespace(model="vit_base_patch16", blr=1e-3)}, path)
    checkpoint = load_checkpoint(str(path))
    assert checkpoint["args"].model == "vit_base_patch16"
    target = build_AST_tiny(num_classes=3)
    target.load_state_dict(model_state_dict(checkpoint), strict=True)
    assert torch.equal(target.head.weight, source.head.weight)


def _audiomae_checkpoint(path, num_classes=527):
    """AudioMAE's layout: its encoder under Spatial-AST's names, plus its own single CLS token,
    final norm, mask token and decoder (none of which Spatial-AST has)."""
    torch.manual_seed(1)
    encoder = build_AST_tiny(num_classes=num_classes).state_dict()
    pretrained = {k: v + 1.0 for k, v in encoder.items() if k.startswith(("blocks.", "patch_embed.", "pos_embed"))}
    pretrained.update({"cls_token": torch.randn(1, 1, 192), "norm.weight": torch.randn(192),
                       "norm.bias": torch.randn(192), "mask_token": torch.randn(1, 1, 192),
                       "decoder_embed.weight": torch.randn(3, 3), "decoder_pos_embed": torch.randn(1, 3, 3),
                       "head.weight": torch.zeros(num_classes, 192)})  # another class count: kept new
    torch.save({"model": pretrained, "args": argparse.Namespace(model="mae_vit_base_patch16")}, path)
    return pretrained


def test_audiomae_pretrained_checkpoint_initialises_the_encoder_only(tmp_path, caplog):
    path = tmp_path / "pretrained.pth"
    pretrained = _audiomae_checkpoint(path)
    model = build_AST_tiny(num_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.INFO, logger="util.checkpoint"):
        loaded = load_pretrained(model, str(path))
    after = model.state_dict()
    fits = [k for k in pretrained if k in after and after[k].shape == pretrained[k].shape]
    assert loaded == len(fits) and set(fits) == {k for k in pretrained if k.startswith(("blocks.", "patch_embed.", "pos_embed"))}
    for key in fits:
        assert torch.equal(after[key], pretrained[key]), key
    for key in set(after) - set(fits):  # CLS tokens, fusion conv, norms and heads keep their start
        assert torch.equal(after[key], before[key]), key
    log = caplog.text
    assert "left at initialisation: head.weight (shape [527, 192] in the checkpoint, [3, 192] here)" in log
    assert "left at initialisation: cls_tokens (not in the checkpoint)" in log
    for key in ("cls_token", "norm.weight", "mask_token", "decoder_embed.weight"):
        assert f"not used from the checkpoint: {key} (AudioMAE pre-training only)" in log


def test_spatial_ast_checkpoint_gives_every_tensor_cls_tokens_included(tmp_path, caplog):
    torch.manual_seed(2)
    source = build_AST_tiny(num_classes=3, fusion_channels=4)
    with torch.no_grad():  # make every tensor distinguishable from a fresh model's
        for tensor in source.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.rand_like(tensor))
    path = tmp_path / "finetuned.pth"
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    torch.save({"model": state, "args": argparse.Namespace(model="build_AST_tiny")}, path)
    model = build_AST_tiny(num_classes=5, fusion_channels=4)  # new data with another class count
    with caplog.at_level(logging.INFO, logger="util.checkpoint"):
        loaded = load_pretrained(model, str(path))
    expected = {k: v for k, v in source.state_dict().items() if not k.startswith("head.")}
    assert loaded == len(expected)
    for key, value in expected.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert "cls_tokens" in caplog.text.split("took")[1].splitlines()[0]
    assert "left at initialisation: head.weight" in caplog.text


def test_finetune_at_lr_0_ends_with_every_fitting_tensor_of_the_source(tiny_data, tmp_path):
    """main_finetune.py --finetune, one epoch at lr 0: the weights are exactly the source's."""
    import main_finetune
    from conftest import train_args

    torch.manual_seed(3)
    source = build_AST_tiny(num_classes=3)
    with torch.no_grad():
        for param in source.parameters():
            param.add_(torch.rand_like(param))
    path = tmp_path / "source.pth"
    save_checkpoint(str(path), {"model": source.state_dict(), "args": {"model": "build_AST_tiny"}})
    out = tmp_path / "run"
    assert main_finetune.run(train_args(tiny_data, out, "--epochs", "1", "--finetune", str(path), "--lr", "0",
                                        "--weight_decay", "0.05")) == 0
    trained = load_checkpoint(str(out / "checkpoint-last.pth"))["model"]
    for name, _ in source.named_parameters():  # BatchNorm running statistics move with training itself
        assert torch.equal(trained[name], source.state_dict()[name]), name


def test_event_head_init_prior_starts_training_at_the_training_clips_class_rates(tiny_data, tmp_path):
    """main_finetune.py --event_head_init prior, one epoch at lr 0: the event head's bias is each
    class's log-odds among the training clips, counted here from the clip json."""
    import json

    import main_finetune
    from conftest import CLASSES, train_args

    with open(tiny_data["train_json"]) as f:
        clips = json.load(f)
    rates = torch.tensor([sum(mid in clip["label"] for clip in clips) / len(clips) for mid, _ in CLASSES],
                         dtype=torch.float64)
    out = tmp_path / "run"
    assert main_finetune.run(train_args(tiny_data, out, "--epochs", "1", "--lr", "0",
                                        "--event_head_init", "prior")) == 0
    bias = load_checkpoint(str(out / "checkpoint-last.pth"))["model"]["head.bias"]
    assert torch.allclose(bias.double(), torch.log(rates / (1 - rates)), atol=1e-6)
    assert len(set(rates.tolist())) > 1  # the tiny data's classes have different rates: a real check


def test_finetune_from_an_unrelated_checkpoint_fails(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"model": {"conv1.weight": torch.zeros(3)}}, path)
    with pytest.raises(CheckpointError, match="no encoder weight"):
        load_pretrained(build_AST_tiny(), str(path))
