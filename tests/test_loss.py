"""The training loss: upstream's one-hot cross-entropies, and the Gaussian soft targets."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from engine_finetune import compute_loss, gaussian_targets


def loss_args(direction_sigma=0.0, distance_sigma=0.0, **extra):
    return SimpleNamespace(event_loss_weight=1250.0, distance_loss_weight=1.0, direction_loss_weight=2.0,
                           direction_label_sigma=direction_sigma, distance_label_sigma=distance_sigma, **extra)


def random_outputs(batch=4, num_classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, n, generator=g) for n in (num_classes, 21, 360, 180))


def test_sigma_zero_is_one_hot():
    assert torch.equal(gaussian_targets(torch.tensor([0, 3]), 5, 0.0), F.one_hot(torch.tensor([0, 3]), 5).float())


def test_azimuth_targets_wrap_around_the_circle():
    # 359 degrees is 1 degree from 0 degrees and from 358 degrees, and 2 from 1 degree.
    target = gaussian_targets(torch.tensor([359]), 360, sigma=2.0, circular=True)[0]
    assert target.sum().item() == pytest.approx(1.0)
    assert target.argmax().item() == 359
    assert target[0].item() == pytest.approx(target[358].item())
    assert target[1].item() == pytest.approx(target[357].item())
    assert target[0].item() / target[359].item() == pytest.approx(torch.exp(torch.tensor(-0.5 / 4)).item())


def test_elevation_and_distance_targets_do_not_wrap():
    target = gaussian_targets(torch.tensor([0]), 180, sigma=2.0)[0]
    assert target[179].item() < 1e-30 and target[1].item() > 0.8 * target[0].item()


def test_one_hot_loss_is_upstreams_weighted_sum():
    outputs, labels = random_outputs(), torch.randint(0, 2, (4, 5)).float()
    spatial = torch.tensor([[0, 0, 0], [20, 359, 179], [4, 90, 90], [10, 180, 45]])
    loss, parts = compute_loss(outputs, labels, spatial, loss_args())
    events, distance, azimuth, elevation = outputs
    expected = (1250 * F.binary_cross_entropy_with_logits(events, labels) + F.cross_entropy(distance, spatial[:, 0])
                + 2 * (F.cross_entropy(azimuth, spatial[:, 1]) + F.cross_entropy(elevation, spatial[:, 2])))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts["loss_azimuth"].item() == pytest.approx(F.cross_entropy(azimuth, spatial[:, 1]).item(), rel=1e-6)


def test_elevation_loss_weight_moves_only_the_elevation_term_and_defaults_to_the_direction_weight():
    outputs, labels = random_outputs(), torch.randint(0, 2, (4, 5)).float()
    spatial = torch.tensor([[3, 10, 80], [0, 200, 95], [20, 359, 60], [7, 90, 120]])
    base, parts = compute_loss(outputs, labels, spatial, loss_args())
    unset, _ = compute_loss(outputs, labels, spatial, loss_args(elevation_loss_weight=None))
    heavier, _ = compute_loss(outputs, labels, spatial, loss_args(elevation_loss_weight=8.0))
    assert unset.item() == pytest.approx(base.item())
    # 8 in place of the direction weight's 2 on the elevation CE alone: 6 more of it, nothing else
    assert heavier.item() == pytest.approx(base.item() + 6.0 * parts["loss_elevation"].item(), rel=1e-6)


def test_soft_targets_make_a_near_miss_cheaper_than_a_far_one():
    def azimuth_loss(predicted_degree, sigma):
        logits = torch.full((1, 360), -10.0)
        logits[0, predicted_degree] = 10.0
        outputs = (torch.zeros(1, 5), torch.zeros(1, 21), logits, torch.zeros(1, 180))
        spatial = torch.tensor([[4, 90, 90]])
        return compute_loss(outputs, torch.zeros(1, 5), spatial, loss_args(direction_sigma=sigma))[1]["loss_azimuth"]

    # one-hot: 3 degrees off costs as much as the opposite side; soft: less
    assert azimuth_loss(93, 0.0).item() == pytest.approx(azimuth_loss(270, 0.0).item())
    assert azimuth_loss(93, 5.0).item() < azimuth_loss(270, 5.0).item() - 1.0


def test_distance_sigma_is_in_metres():
    # 0.5 m = one 0.5 m class: the neighbouring class gets exp(-1/2) of the true one
    outputs, spatial = random_outputs(batch=1), torch.tensor([[6, 0, 90]])
    soft = gaussian_targets(spatial[:, 0], 21, 1.0)
    loss = compute_loss(outputs, torch.zeros(1, 5), spatial, loss_args(distance_sigma=0.5))[1]["loss_distance"]
    assert loss.item() == pytest.approx(F.cross_entropy(outputs[1], soft).item(), rel=1e-6)
    assert soft[0, 7].item() / soft[0, 6].item() == pytest.approx(torch.exp(torch.tensor(-0.5)).item())
