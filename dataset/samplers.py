"""Weighted sampling (upstream's weight csv) that splits cleanly across ranks.

Every rank computes the same global draw of the epoch from a generator seeded by
(seed, epoch), without talking, and takes every `world`-th item of it: all ranks get
the same number of items, and a resumed epoch repeats its draws.

- An epoch is `num_samples` draws: upstream's `--epoch_len` with `--distributed_wrapper`,
  else as many as there are clips.
- With replacement, each draw picks clip i with probability w_i / sum(w).
- Without replacement, no clip appears twice in an epoch and clip i is in it with
  probability n * w_i / sum(w) (randomised systematic sampling), capped at 1 for clips
  so heavy that they are in every epoch. Either way a clip of weight 0 is never drawn.
"""
import math

import numpy as np
from torch.utils.data import Sampler

from dataset.audio import DataError


class WeightedDistributedSampler(Sampler):
    def __init__(self, weights, num_samples, num_replicas=1, rank=0, replacement=True, seed=0):
        self.weights = np.asarray(weights, dtype=np.float64)
        self.num_replicas, self.rank = num_replicas, rank
        self.replacement, self.seed = replacement, seed
        self.epoch = 0
        self.num_samples = math.ceil(num_samples / num_replicas)  # per rank
        total, drawable = self.num_samples * num_replicas, int(np.count_nonzero(self.weights))
        if not replacement and total >= drawable:
            raise DataError(f"cannot draw {total} clips by weight without replacement from {drawable} clips of "
                            f"non-zero weight (that is every clip once: the weights would have no effect); "
                            f"pass --replacement, or --distributed_wrapper with a smaller --epoch_len")

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        total = self.num_samples * self.num_replicas
        if self.replacement:
            draw = rng.choice(len(self.weights), size=total, p=self.weights / self.weights.sum())
        else:
            draw = systematic_sample(self.weights, total, rng)
        return iter(draw[self.rank::self.num_replicas].tolist())


def inclusion_probabilities(weights, n):
    """P(clip i in a sample of n without replacement): n * w_i / sum(w), the excess above 1 shared out."""
    p = np.zeros(len(weights))
    certain = np.zeros(len(weights), dtype=bool)
    while True:
        rest = ~certain & (weights > 0)
        p[rest] = weights[rest] * (n - certain.sum()) / weights[rest].sum()
        over = p > 1
        if not over.any():
            return p
        certain |= over
        p[certain] = 1.0


def systematic_sample(weights, n, rng):
    """n distinct indices, i included with `inclusion_probabilities(weights, n)[i]`, in random order.

    Lay the clips, in random order, end to end as intervals of length p_i (total n) and
    pick those under the points u, u + 1, ..., u + n - 1: an interval no longer than 1
    holds at most one point, and holds one with probability p_i. O(clips) per epoch.
    """
    order = rng.permutation(len(weights))
    edges = np.cumsum(inclusion_probabilities(weights, n)[order])
    edges *= n / edges[-1]  # exact total, so the last point falls inside
    picks = order[np.searchsorted(edges, rng.random() + np.arange(n), side="right")]
    rng.shuffle(picks)
    return picks
