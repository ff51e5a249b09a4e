"""engine_finetune.train_one_epoch: gradient accumulation is a larger batch, not another algorithm."""
import argparse

import torch

import engine_finetune as engine
from models import build_AST_tiny


class GradientRecorder:
    """An optimizer stand-in that records the gradients of each step instead of applying them."""

    def __init__(self, model):
        self.model = model
        self.param_groups = [{"params": list(model.parameters()), "lr_scale": 1.0}]
        self.steps = []

    def step(self):
        self.steps.append({n: p.grad.clone() for n, p in self.model.named_parameters() if p.grad is not None})

    def zero_grad(self, set_to_none=True):
        self.model.zero_grad(set_to_none=set_to_none)


def _model():
    torch.manual_seed(0)
    model = build_AST_tiny(num_classes=3, patch_size=32, freqm=0, timem=0, drop_path_rate=0.0)
    # BatchNorm's batch statistics couple the examples of a batch, so two batches of 4 see other
    # statistics than one of 8 (in any BatchNorm model, upstream's too). Held at their running
    # statistics, the BatchNorms leave every example independent and the sums must agree.
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
            module.train = lambda mode=True, module=module: module
    return model


def _args(accum_iter):
    return argparse.Namespace(accum_iter=accum_iter, lr=1e-3, min_lr=0.0, warmup_epochs=0, epochs=1, amp="none",
                              mask_t_prob=0.0, mask_f_prob=0.0, clip_grad=None, direction_label_sigma=0.0,
                              distance_label_sigma=0.0, event_loss_weight=1250.0, distance_loss_weight=1.0,
                              direction_loss_weight=2.0, log_interval=20)


def _batch(size, seed):
    generator = torch.Generator().manual_seed(seed)
    waveforms = torch.randn(size, 1, 3 * 32000, generator=generator)
    rirs = torch.randn(size, 2, 800, generator=generator) * torch.linspace(1, 0, 800) ** 8
    labels = (torch.rand(size, 3, generator=generator) > 0.5).float()
    spatial = torch.stack([torch.randint(0, n, (size,), generator=generator) for n in (21, 360, 180)], dim=1)
    return waveforms, rirs, labels, spatial


def _recorded_steps(loader, accum_iter):
    """The gradients each optimizer step of one epoch over `loader` would apply."""
    model = _model()
    optimizer = GradientRecorder(model)  # applies nothing, so every step sees the same weights
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    engine.train_one_epoch(model, loader, optimizer, scaler, torch.device("cpu"), 0, _args(accum_iter))
    return optimizer.steps


def _assert_same_gradients(one, other):
    assert one.keys() == other.keys() and len(one) > 50
    for name in one:
        scale = one[name].abs().max().item() + 1e-12
        assert (one[name] - other[name]).abs().max().item() <= 1e-4 * scale + 1e-7, name


def test_two_accumulated_batches_of_4_give_the_gradient_of_one_batch_of_8():
    batch = _batch(8, seed=1)
    halves = [tuple(t[:4] for t in batch), tuple(t[4:] for t in batch)]
    [one] = _recorded_steps([batch], 1)
    [accumulated] = _recorded_steps(halves, 2)
    _assert_same_gradients(one, accumulated)


def test_the_epochs_short_last_group_applies_its_mean_gradient_not_a_fraction():
    # 3 batches at --accum_iter 2: a group of two, then one of one, whose step must be that batch's
    # gradient, not half of it
    batches = [_batch(4, seed) for seed in (1, 2, 3)]
    steps = _recorded_steps(batches, 2)
    assert len(steps) == 2
    [alone] = _recorded_steps(batches[2:], 1)
    _assert_same_gradients(alone, steps[1])
