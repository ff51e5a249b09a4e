"""Weighted sampling: draws follow the weights on every rank, statistically checked."""
import numpy as np
import pytest
from scipy.stats import chisquare

from dataset.audio import DataError
from dataset.samplers import WeightedDistributedSampler, inclusion_probabilities, systematic_sample


def weights_with_zeros(n=1000, seed=0):
    weights = np.random.default_rng(seed).gamma(0.5, size=n)  # AudioSet-like: a few heavy rare-class clips
    weights[::10] = 0.0
    return weights


def draws_over_ranks(weights, num_samples, world, replacement, epoch=0):
    ranks = [WeightedDistributedSampler(weights, num_samples, world, rank, replacement, seed=7) for rank in range(world)]
    for sampler in ranks:
        sampler.set_epoch(epoch)
    return [np.fromiter(iter(sampler), dtype=np.int64) for sampler in ranks]


def test_a_million_draws_over_four_ranks_follow_the_weights():
    weights = weights_with_zeros()
    per_rank = draws_over_ranks(weights, 1_000_000, 4, replacement=True)
    assert {len(d) for d in per_rank} == {250_000}  # every rank gets the same number of items
    counts = np.bincount(np.concatenate(per_rank), minlength=len(weights))
    assert counts[weights == 0].sum() == 0  # zero-weight clips never appear
    drawable = weights > 0
    expected = 1_000_000 * weights[drawable] / weights.sum()
    assert chisquare(counts[drawable], expected).pvalue > 0.001
    # the old per-rank permutation put every clip in equally often: that fails this test
    uniform = np.full(drawable.sum(), 1_000_000 / drawable.sum())
    assert chisquare(uniform, expected).pvalue < 1e-100


def test_without_replacement_inclusion_follows_the_weights():
    """No clip twice in an epoch; over 1,000 epochs of 400 draws each clip's share matches n w / sum(w)."""
    weights = weights_with_zeros()
    p = inclusion_probabilities(weights, 400)
    assert p.max() == 1.0 and p.sum() == pytest.approx(400)  # the heaviest clips are in every epoch
    counts = np.zeros(len(weights))
    for epoch in range(1000):
        per_rank = draws_over_ranks(weights, 400, 4, replacement=False, epoch=epoch)
        everything = np.concatenate(per_rank)
        assert len(np.unique(everything)) == 400 and {len(d) for d in per_rank} == {100}
        counts += np.bincount(everything, minlength=len(weights))
    assert counts[weights == 0].sum() == 0
    np.testing.assert_array_equal(counts[p == 1.0], 1000)
    sometimes = (p > 0) & (p < 1)
    assert chisquare(counts[sometimes], 1000 * p[sometimes]).pvalue > 0.001


def test_inclusion_probabilities_cap_at_one_and_keep_proportion():
    p = inclusion_probabilities(np.array([10.0, 1.0, 1.0, 2.0, 0.0]), 2)
    np.testing.assert_allclose(p, [1.0, 1 / 4, 1 / 4, 2 / 4, 0.0])  # the rest share the one remaining draw


def test_systematic_sample_never_picks_zero_weight_or_twice():
    rng = np.random.default_rng(0)
    weights = np.array([0.0, 3.0, 0.0, 1.0, 1.0, 0.0, 5.0])
    for _ in range(200):
        picks = systematic_sample(weights, 3, rng)
        assert len(set(picks.tolist())) == 3 and not set(picks.tolist()) & {0, 2, 5}


def test_resume_repeats_an_epoch_and_epochs_differ():
    weights = weights_with_zeros(100)
    first = draws_over_ranks(weights, 64, 2, replacement=True, epoch=5)
    again = draws_over_ranks(weights, 64, 2, replacement=True, epoch=5)
    later = draws_over_ranks(weights, 64, 2, replacement=True, epoch=6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], later[0])


def test_epoch_is_rounded_up_to_equal_shares():
    per_rank = draws_over_ranks(np.ones(10), 7, 3, replacement=True)
    assert [len(d) for d in per_rank] == [3, 3, 3]


def test_drawing_every_clip_once_by_weight_is_refused():
    """Without replacement, an epoch of all the clips is a permutation: the weights could not act."""
    with pytest.raises(DataError, match="pass --replacement"):
        WeightedDistributedSampler(np.ones(10), 10, 2, 0, replacement=False)
    with pytest.raises(DataError, match="from 5 clips of non-zero weight"):
        WeightedDistributedSampler(np.array([1.0, 0.0] * 5), 6, 1, 0, replacement=False)
