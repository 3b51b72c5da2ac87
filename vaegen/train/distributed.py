"""Training on several processes or machines under torchrun, in the few steps vaegen needs.

`torchrun --nproc_per_node=K -m vaegen train ...` sets RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous. vaegen then joins a process group (gloo on CPU, nccl on CUDA), wraps the model in
DistributedDataParallel, gives each rank its share of every batch (train.batch_size stays the global
batch), and lets rank 0 alone print, log and write checkpoints. Without torchrun every function here
is a no-op for a single process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from vaegen.core.errors import TrainingError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def setup(device: torch.device) -> None:
    if world_size() > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast(data: bytes | None) -> bytes:
    """Rank 0's bytes on every rank (e.g. the tokenizer, trained once)."""
    if world_size() == 1:
        assert data is not None
        return data
    box = [data]
    dist.broadcast_object_list(box, src=0)
    assert box[0] is not None
    return box[0]


def share(indices: list[int], rank: int, world: int) -> tuple[list[int], float]:
    """This rank's part of a global batch and the weight of its mean loss, len(part) * world / len(batch), so that
    DDP's average over ranks is the mean over the global batch. A rank left without an example (a last batch
    smaller than the world) still runs one, at weight 0, because every rank must take part in each step."""
    part = indices[rank::world]
    if not part:
        return indices[:1], 0.0
    return part, len(part) * world / len(indices)


def wrap(model: nn.Module) -> nn.Module:
    """The module whose forward synchronises gradients across ranks."""
    return nn.parallel.DistributedDataParallel(model) if world_size() > 1 else model


def agree(loss: float, stop: bool, device: torch.device) -> tuple[float, bool]:
    """The mean loss over ranks and whether any rank was asked to stop, so every rank takes the
    same branch (skip a non-finite step, stop for a signal) and none waits forever for the others."""
    if world_size() == 1:
        return loss, stop
    values = torch.tensor([loss, float(stop)], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return values[0].item() / world_size(), values[1].item() > 0


def check_replicas_agree(model: nn.Module, device: torch.device) -> None:
    """Fail loudly if the ranks' weights drifted apart (they must not: DDP averages every gradient)."""
    if world_size() == 1:
        return
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1).to(device)
    gathered = [torch.zeros_like(checksum) for _ in range(world_size())]
    dist.all_gather(gathered, checksum)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise TrainingError(f"the {world_size()} ranks ended with different weights; report this as a bug")
