"""This process's place in a data-parallel run, and the small collectives the run loop needs."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["RankContext", "all_sum"]


@dataclass(frozen=True)
class RankContext:
    """This process's place in the run (read from torchrun's environment variables)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "none"
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()

    @classmethod
    def from_environment(cls, backend: str = "auto") -> RankContext:
        """Join the process group when ``WORLD_SIZE`` is set (by torchrun); else a single process.

        ``backend="auto"`` picks NCCL when CUDA is available (rank on ``cuda:LOCAL_RANK``) and gloo
        otherwise.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if "WORLD_SIZE" not in os.environ:
            return cls()
        if backend == "auto":
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        device = torch.device("cpu")
        if backend == "nccl":
            if not torch.cuda.is_available():
                raise RuntimeError("backend 'nccl' needs CUDA GPUs; use backend 'gloo' on CPUs")
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, init_method="env://")
        return cls(rank, world_size, local_rank, backend, device)


def all_sum(values: list[float], context: RankContext) -> list[float]:
    """Element-wise sums of ``values`` over all ranks (``values`` itself on one process)."""
    if not context.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor)
    return tensor.tolist()
