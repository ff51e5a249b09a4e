"""Class-balanced sampling that splits cleanly across ranks.

Both modes draw from the per-clip weights (upstream's weight csv) with a generator
seeded by (seed, epoch), so every rank computes the same draw without talking:

- `global_draw=True` (upstream's `--distributed_wrapper`): one draw of `num_samples`
  indices over the whole dataset, dealt round-robin to the ranks.
- `global_draw=False`: each rank takes its slice of a shared permutation and draws
  `ceil(len / world)` indices from that slice (upstream's DistributedWeightedSampler).
"""
import math

import torch
from torch.utils.data import Sampler

from dataset.audio import DataError


class WeightedDistributedSampler(Sampler):
    def __init__(self, weights, num_samples, num_replicas=1, rank=0, replacement=True, global_draw=True, seed=0):
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.num_replicas, self.rank = num_replicas, rank
        self.replacement, self.global_draw, self.seed = replacement, global_draw, seed
        self.epoch = 0
        total = num_samples if global_draw else len(self.weights)
        self.num_samples = math.ceil(total / num_replicas)
        if not replacement and self.num_samples * (num_replicas if global_draw else 1) > int((self.weights > 0).sum()):
            raise DataError(f"cannot draw {total} distinct clips without replacement from "
                            f"{int((self.weights > 0).sum())} clips of non-zero weight; "
                            f"lower --epoch_len or pass --replacement")

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.global_draw:
            total = self.num_samples * self.num_replicas
            draw = torch.multinomial(self.weights, total, self.replacement, generator=generator)
            return iter(draw[self.rank::self.num_replicas].tolist())
        order = torch.randperm(len(self.weights), generator=generator)
        padding = self.num_samples * self.num_replicas - len(order)
        order = torch.cat([order, order[:padding]])[self.rank::self.num_replicas]
        picks = torch.multinomial(self.weights[order], self.num_samples, self.replacement, generator=generator)
        return iter(order[picks].tolist())
