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
    # evaluation: BatchNorm folded into convolutions (engine.fusion; --no_fuse), and on the CPU the
    # batches scored in micro-batches of this many images (--micro_batch; 0: whole batches)
    fuse_eval: bool = True
    micro_batch: int = 16

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


def all_reduce_mean(values: dict[str, float], device: torch.device, weight: float = 1.0) -> dict[str, float]:
    """The mean of a dict of floats across ranks, each rank's values weighted by ``weight`` (e.g.
    its image count). Every rank takes part, also one with no values (it saw no decodable batch)
    or with other keys: a key is averaged over the ranks that have it."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return dict(values)
    parts = all_gather_objects((dict(values), float(weight)))
    out = {}
    for key in sorted({k for part, _ in parts for k in part}):
        have = [(part[key], w) for part, w in parts if key in part]
        total = sum(w for _, w in have)
        out[key] = sum(v * w for v, w in have) / total if total > 0 else sum(v for v, _ in have) / len(have)
    return out


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank (every rank gets the same answer, so that all of
    them take the same branch and none waits alone in a collective); ``flag`` on one process."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
    return bool(t.item() > 0)


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
