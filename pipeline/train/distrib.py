"""All distributed code of the trainer: process group, rank queries, DDP wrapping, the sampler,
and reductions. A single process (plain ``python``) is a world of size 1 and needs no group.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (and ``MASTER_ADDR``/``PORT``);
:func:`init` reads them, picks NCCL on CUDA and gloo on CPU, and pins each rank to its GPU.
``TRIBERT_DDP=1`` joins a group (and wraps the model in DDP) even for one rank: the whole
distributed path, NCCL included, can then be checked on a machine with a single GPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler


@dataclass(frozen=True)
class World:
    rank: int
    world_size: int
    device: torch.device
    grouped: bool = False    # a process group is joined: collectives and DDP run

    @property
    def is_master(self) -> bool:
        """Only rank 0 logs, validates and saves."""
        return self.rank == 0


def init(device: str = "auto") -> World:
    """Join the process group described by torchrun's environment (no-op for one process).

    ``device``: "auto" (CUDA when available, one GPU per local rank), "cpu" or "cuda".
    """
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    wanted = world_size > 1 or os.environ.get("TRIBERT_DDP") == "1"
    if wanted and not dist.is_initialized():
        kw = {"device_id": dev} if use_cuda else {}
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world_size,
                                **kw)
    return World(rank, world_size, dev, grouped=dist.is_initialized())


def backend(world: World) -> str:
    """The process group's backend ("nccl", "gloo"), or "none" for a lone process."""
    return dist.get_backend() if world.grouped else "none"


def close() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: World) -> torch.nn.Module:
    """DDP around ``model`` when there is more than one rank (rank 0's weights are broadcast at
    construction, so every rank starts identical); the model itself otherwise."""
    if not world.grouped:
        return model
    ids = [world.device.index] if world.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def barrier(world: World) -> None:
    if world.grouped:
        dist.barrier()


def broadcast_object(obj, world: World):
    """Rank 0's ``obj`` (any picklable value) on every rank."""
    if not world.grouped:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_finite(value: torch.Tensor, world: World) -> bool:
    """True when ``value`` is finite on every rank (all ranks then stop together)."""
    ok = torch.isfinite(value.detach()).all().to(torch.float32).reshape(1)
    if world.grouped:
        ok = ok.to(world.device)
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item() > 0)


def average(values: dict[str, float], world: World) -> dict[str, float]:
    """Each value averaged over the ranks (for logging)."""
    if not world.grouped or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=world.device)
    dist.all_reduce(t)
    return {k: float(v) / world.world_size for k, v in zip(keys, t.tolist())}


class ResumableSampler(DistributedSampler):
    """torch's DistributedSampler (rank r takes positions r, r + W, ... of the epoch's seeded
    permutation) that can skip the samples of batches already done in the epoch, so a resumed
    run continues with the same data order.

    With a per-rank batch b, step j of rank r covers permutation positions [j W b, (j+1) W b)
    taken together: the union over ranks is the single-process batch j of size W b.
    """

    def __init__(self, dataset, world: World, seed: int, shuffle: bool = True):
        super().__init__(dataset, num_replicas=world.world_size, rank=world.rank,
                         shuffle=shuffle, seed=seed, drop_last=True)
        self.skip = 0

    def start(self, epoch: int, skip: int = 0) -> None:
        """Begin ``epoch``, leaving out its first ``skip`` samples of this rank."""
        self.set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        return iter(list(super().__iter__())[self.skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip
