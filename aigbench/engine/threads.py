"""CPU threads: how many intra-op threads a process should run, from the CPUs it may really use.

On a shared or cluster machine, ``os.cpu_count()`` counts every core of the node; the job
may only use its CPU affinity set, or a cgroup CPU quota (``cpu.max``, or cgroup v1's
``cpu.cfs_quota_us``). Those CPUs are shared by the processes of the node (``LOCAL_WORLD_SIZE``
under torchrun) and by each process's loader workers. Torch's default of one thread per core
then oversubscribes, and OpenMP threads that spin while they wait (libgomp's default) burn
the CPUs that another thread needs: ``aigbench`` sets ``OMP_WAIT_POLICY=PASSIVE`` (unless it is
already set) before torch is imported; ``benchmarks/threads.py`` measures both choices.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Optional

log = logging.getLogger("aigbench")

CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def cgroup_cpu_quota(v2: Path = CGROUP_V2, v1: tuple[Path, Path] = CGROUP_V1) -> Optional[float]:
    """CPUs allowed by the cgroup's quota (``quota / period``), or None when there is no quota."""
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if v1[0].is_file() and v1[1].is_file():
            quota_us, period_us = int(v1[0].read_text()), int(v1[1].read_text())
            return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
    return None


def available_cpus() -> tuple[int, str]:
    """CPUs this process may use (affinity set, capped by a cgroup quota) and how that was found."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota()
    if quota is not None and math.ceil(quota) < affinity:
        return max(1, math.ceil(quota)), f"cgroup quota {quota:g} CPUs (affinity {affinity})"
    return max(1, affinity), f"affinity {affinity} CPUs" + (f", cgroup quota {quota:g}" if quota else "")


def choose_threads(requested: Optional[int], local_processes: int = 1, num_workers: int = 0) -> tuple[int, str]:
    """Intra-op threads per process: ``requested`` (``--threads``) when given, else the available
    CPUs divided among the node's processes, less one per loader worker (at least 1)."""
    if requested:
        return requested, "--threads"
    cpus, how = available_cpus()
    per_process = max(1, cpus // max(1, local_processes))
    n = max(1, per_process - num_workers)
    return n, f"{how} / {local_processes} process(es) on this node - {num_workers} loader worker(s)"


MAX_AUTO_WORKERS = 8


def auto_workers(device: str) -> int:
    """``--num_workers auto``: on a GPU, decoding must keep up with the device: one worker per
    usable CPU of this process's share of the node, less one for the main process (at most
    :data:`MAX_AUTO_WORKERS`). On the CPU the cores already run the model: 0 (load in the main
    process, measured fastest on the 2-core development machine)."""
    import torch

    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if not cuda:
        return 0
    cpus, _ = available_cpus()
    per_process = cpus // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(MAX_AUTO_WORKERS, per_process - 1))


def apply_threads(requested: Optional[int], num_workers: int = 0) -> int:
    """Set torch's intra-op threads (:func:`choose_threads`) and log the choice once."""
    import torch

    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    n, why = choose_threads(requested, local, num_workers)
    torch.set_num_threads(n)
    log.info(
        "threads: %d intra-op per process (%s; OMP_WAIT_POLICY=%s)", n, why, os.environ.get("OMP_WAIT_POLICY", "unset")
    )
    return n
