"""torch.distributed set-up from torchrun's environment, and small collectives.

One process (plain `python main_finetune.py`) runs without a process group; every
helper below then acts as the identity, so callers never branch on it.
"""
import datetime
import logging
import os

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


def is_distributed():
    return dist.is_available() and dist.is_initialized()


def get_rank():
    return dist.get_rank() if is_distributed() else 0


def get_world_size():
    return dist.get_world_size() if is_distributed() else 1


def is_main_process():
    return get_rank() == 0


def resolve_device(name):
    """'auto' -> cuda if present else cpu; 'cuda' picks this process's LOCAL_RANK GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if not torch.cuda.is_available() or device.index >= torch.cuda.device_count():
            raise RuntimeError(f"{device} was asked for but {torch.cuda.device_count()} CUDA devices are visible")
        torch.cuda.set_device(device)
    return device


def init_distributed(device):
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR...)."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size <= 1:
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30),
                            device_id=device if device.type == "cuda" else None)
    log.info("process group: %s, rank %d of %d", backend, get_rank(), world_size)


def cleanup():
    if is_distributed():
        dist.destroy_process_group()


def all_reduce_sum(tensor):
    """Sum over ranks (in place on a copy); identity in one process."""
    tensor = tensor.clone()
    if is_distributed():
        dist.all_reduce(tensor)
    return tensor


def all_gather_variable(tensor):
    """Concatenate each rank's [n_i, ...] tensor along dim 0 (n_i may differ between ranks)."""
    if not is_distributed():
        return tensor
    world = get_world_size()
    size = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    gathered = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded)
    return torch.cat([g[: int(s.item())] for g, s in zip(gathered, sizes)])


def barrier():
    if is_distributed():
        dist.barrier()


def average_buffers(module):
    """Average BatchNorm running statistics over ranks.

    DDP copies rank 0's buffers at the start of each forward, so after the last step
    every rank holds statistics updated by its own last batch only; averaging makes
    evaluation and checkpoints identical on all ranks (and uses every rank's data).
    """
    if not is_distributed():
        return
    for layer in module.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm) and layer.track_running_stats:
            for stats in (layer.running_mean, layer.running_var):
                dist.all_reduce(stats)
                stats /= get_world_size()
