"""util/lr.py: layer-wise lr decay groups against scales computed by hand, and the schedule applying them."""
import argparse

import pytest
import torch

from models import build_AST_tiny
from util.lr import learning_rate, param_groups_layer_decay, set_learning_rate


def test_layer_decay_groups_match_hand_computed_scales():
    # build_AST_tiny: 4 blocks, so 5 "layers" above the embedding. With decay 0.5 the scale is
    # 0.5 ** (5 - layer): embedding (layer 0) 1/32, block i (layer i + 1) 0.5 ** (4 - i), the rest 1.
    model = build_AST_tiny(num_classes=3)
    groups = param_groups_layer_decay(model, weight_decay=0.05, layer_decay=0.5,
                                      no_weight_decay=model.no_weight_decay())
    hand = {"patch_embed": 1 / 32, "blocks.0": 1 / 16, "blocks.1": 1 / 8, "blocks.2": 1 / 4, "blocks.3": 1 / 2}
    seen = {}
    for group in groups:
        for param in group["params"]:
            seen[id(param)] = group
    names = dict(model.named_parameters())
    assert set(seen) == {id(p) for p in names.values() if p.requires_grad}  # every trainable tensor, once
    assert sum(len(g["params"]) for g in groups) == len(seen)
    for name, param in names.items():
        if not param.requires_grad:
            continue
        prefix = next((p for p in hand if name.startswith(p + ".")), None)
        expected_scale = hand[prefix] if prefix else 1.0  # cls_tokens, fusion conv, norms, heads: top rate
        expected_decay = 0.0 if param.ndim == 1 or name in model.no_weight_decay() else 0.05
        assert seen[id(param)]["lr_scale"] == pytest.approx(expected_scale), name
        assert seen[id(param)]["weight_decay"] == expected_decay, name
    # upstream's rule matches the name "cls_token" only: Spatial-AST's three CLS tokens take the top rate
    assert seen[id(names["cls_tokens"])]["lr_scale"] == 1.0
    assert seen[id(names["blocks.2.attn.qkv.weight"])]["weight_decay"] == 0.05
    assert seen[id(names["blocks.2.attn.qkv.bias"])]["weight_decay"] == 0.0


def test_schedule_sets_each_group_to_its_scale_of_the_lr():
    model = build_AST_tiny(num_classes=3)
    groups = param_groups_layer_decay(model, 0.05, 0.5)
    optimizer = torch.optim.AdamW(groups, lr=1.0)
    args = argparse.Namespace(lr=0.01, min_lr=0.001, warmup_epochs=2, epochs=10)
    # warm-up: linear from 0; then half-cosine from lr to min_lr over the remaining 8 epochs
    assert learning_rate(1.0, 0.01, 0.001, 2, 10) == pytest.approx(0.005)
    assert learning_rate(6.0, 0.01, 0.001, 2, 10) == pytest.approx(0.001 + 0.009 * 0.5)
    value = set_learning_rate(optimizer, 6.0, args)
    assert value == pytest.approx(0.0055)
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(0.0055 * group["lr_scale"])


def test_head_lr_scale_multiplies_the_four_heads_alone_and_leaves_the_groups_alone_at_one():
    model = build_AST_tiny(num_classes=3)
    plain = param_groups_layer_decay(model, 0.05, 0.5, model.no_weight_decay())
    scaled = param_groups_layer_decay(model, 0.05, 0.5, model.no_weight_decay(), head_lr_scale=10.0,
                                      heads=model.HEADS)
    scale_of = {id(p): g["lr_scale"] for g in scaled for p in g["params"]}
    plain_scale_of = {id(p): g["lr_scale"] for g in plain for p in g["params"]}
    heads = {"head.weight", "head.bias", "distance_head.weight", "distance_head.bias", "azimuth_head.weight",
             "azimuth_head.bias", "elevation_head.weight", "elevation_head.bias"}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        # the heads sit at the top rate (1 at layer decay 0.5), so 10x it; fc_norm & co. are no heads
        expected = 10.0 * plain_scale_of[id(param)] if name in heads else plain_scale_of[id(param)]
        assert scale_of[id(param)] == pytest.approx(expected), name
    assert plain_scale_of[id(dict(model.named_parameters())["head.weight"])] == 1.0
    # a scale of 1 (the default, and checkpoints written before the option) keeps the old groups, so
    # an optimizer state saved with them still loads group for group
    at_one = param_groups_layer_decay(model, 0.05, 0.5, model.no_weight_decay(), head_lr_scale=1.0,
                                      heads=model.HEADS)
    assert [[id(p) for p in g["params"]] for g in at_one] == [[id(p) for p in g["params"]] for g in plain]
    assert [g["lr_scale"] for g in at_one] == [g["lr_scale"] for g in plain]


def test_the_groups_depend_on_which_parameters_decay_not_on_the_values():
    # a run resumed with another --weight_decay or --layer_decay must find the same groups, in the
    # same order, to load its optimizer state; weight decay 0 once merged each layer's two groups
    model = build_AST_tiny(num_classes=3)
    members = [[id(p) for p in g["params"]]
               for g in param_groups_layer_decay(model, 0.05, 0.75, model.no_weight_decay())]
    for weight_decay, layer_decay in ((0.0, 0.75), (0.05, 1.0), (0.0, 0.5)):
        groups = param_groups_layer_decay(model, weight_decay, layer_decay, model.no_weight_decay())
        assert [[id(p) for p in g["params"]] for g in groups] == members
        assert {g["weight_decay"] for g in groups} == {0.0, weight_decay}
