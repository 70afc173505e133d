"""Multi-process training under ``torchrun`` (DistributedDataParallel), and the single-process default.

``torchrun --nproc_per_node N -m train.style ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous variables; :func:`init_distributed` reads them, picks NCCL on GPU (one device per local rank) and
Gloo on CPU, and returns a :class:`DistContext`. Every process trains on its own shard of each step's data
(``train/data.py``); only rank 0 writes checkpoints, previews, logs and the model folder. Stop requests
(cancellation, a non-finite loss) are agreed on by all ranks each step so they leave the loop together.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from perceptual_studio import settings


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return settings.torchrun_world_size() > 1


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group when launched by torchrun; otherwise a single-process context on ``device``."""
    if not launched_by_torchrun():
        return DistContext(device=device)
    rank, world = settings.torchrun_rank(), settings.torchrun_world_size()
    local_rank = settings.torchrun_local_rank()
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank, world, local_rank, device, backend)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def agree(ctx: DistContext, *flags: bool) -> tuple[bool, ...]:
    """Each flag OR-ed over all ranks (one small all-reduce); the flags themselves when single-process."""
    if not ctx.enabled:
        return tuple(bool(f) for f in flags)
    tensor = torch.tensor([float(f) for f in flags], device=ctx.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in tensor.tolist())


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()

