"""Checkpoint reading is weights-only, writing is atomic, fine-tuning takes AudioMAE and upstream files."""
import argparse
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


def test_audiomae_pretrained_checkpoint_initialises_the_encoder(tmp_path):
    encoder = build_AST_tiny(num_classes=527).state_dict()
    pretrained = {k: v + 1.0 for k, v in encoder.items() if k.startswith(("blocks.", "patch_embed.", "pos_embed"))}
    pretrained.update({"cls_token": torch.zeros(1, 1, 192), "norm.weight": torch.ones(192),
                       "mask_token": torch.zeros(1, 1, 192), "decoder_embed.weight": torch.zeros(3, 3),
                       "head.weight": torch.zeros(527, 192)})  # other class count: kept new
    path = tmp_path / "pretrained.pth"
    torch.save({"model": pretrained, "args": argparse.Namespace(model="mae_vit_base_patch16")}, path)
    model = build_AST_tiny(num_classes=3)
    head_before = model.head.weight.clone()
    loaded = load_pretrained(model, str(path))
    expected = [k for k in pretrained if k.startswith(("blocks.", "patch_embed.", "pos_embed"))]
    assert loaded == len(expected)
    assert torch.equal(model.blocks[0].attn.qkv.weight, pretrained["blocks.0.attn.qkv.weight"])
    assert torch.equal(model.head.weight, head_before)


def test_finetune_from_an_unrelated_checkpoint_fails(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"model": {"conv1.weight": torch.zeros(3)}}, path)
    with pytest.raises(CheckpointError, match="no encoder weight"):
        load_pretrained(build_AST_tiny(), str(path))
