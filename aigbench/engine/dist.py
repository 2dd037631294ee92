"""Device choice and (optional) torch.distributed: one code path for CPU, GPU and torchrun.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group uses ``nccl`` on CUDA and ``gloo``
on CPU. Without torchrun everything below is a no-op on a single process.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as torch_dist


@dataclass
class DistContext:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(requested: Optional[str] = None, local_rank: int = 0) -> torch.device:
    """``requested`` ('cpu', 'cuda', 'cuda:1', 'mps') or the best available device."""
    if requested and requested != "auto":
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"--device {requested} was asked for, but CUDA is not available; use --device cpu")
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", local_rank)
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init_distributed(device: Optional[str] = None) -> DistContext:
    """Start the process group when launched by torchrun; pick the device either way."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world_size > 1 and not torch_dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        torch_dist.init_process_group(backend=backend, device_id=dev if dev.type == "cuda" else None)
    return DistContext(device=dev, rank=rank, world_size=world_size, local_rank=local_rank)


def cleanup_distributed() -> None:
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` on a single process)."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * torch_dist.get_world_size()
    torch_dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of floats across ranks."""
    if not values or not (torch_dist.is_available() and torch_dist.is_initialized()):
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    torch_dist.all_reduce(t)
    t /= torch_dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def broadcast_buffers(model: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank, so that every
    rank evaluates the model that rank ``src`` saves. A no-op on one process."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    for buf in model.buffers():
        torch_dist.broadcast(buf, src)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
