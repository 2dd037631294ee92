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
import time
from pathlib import Path
from typing import Any, Optional

from aigbench.envinfo import affinity_cpus  # noqa: F401  (re-exported: the CPUs of this process)

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
    affinity = len(affinity_cpus())
    quota = cgroup_cpu_quota()
    if quota is not None and math.ceil(quota) < affinity:
        return max(1, math.ceil(quota)), f"cgroup quota {quota:g} CPUs (affinity {affinity})"
    return max(1, affinity), f"affinity {affinity} CPUs" + (f", cgroup quota {quota:g}" if quota else "")


PROC_STAT = Path("/proc/stat")
BUSY_SAMPLE_S = 0.2


def _cpu_times(stat: Path, cpus: set[int]) -> dict[int, tuple[int, int]]:
    """``{cpu: (busy, total)}`` jiffies of ``cpus`` from ``/proc/stat`` (steal time left out:
    a hypervisor's, not another process's)."""
    out = {}
    for line in stat.read_text().splitlines():
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        v = [int(x) for x in fields[:8]] + [0] * max(0, 8 - len(fields))
        user, nice, system, idle, iowait, irq, softirq = v[:7]
        busy = user + nice + system + irq + softirq
        out[int(name[3:])] = (busy, busy + idle + iowait)
    return out


def busy_cpus(seconds: float = BUSY_SAMPLE_S, stat: Path = PROC_STAT, sleep: Any = time.sleep) -> Optional[float]:
    """How many of this process's CPUs other processes keep busy: the busy fraction of each
    CPU of the affinity set over ``seconds`` (this process sleeps meanwhile), summed; None where
    ``/proc/stat`` cannot be read."""
    cpus = affinity_cpus()
    try:
        before = _cpu_times(stat, cpus)
        sleep(seconds)
        after = _cpu_times(stat, cpus)
    except (OSError, ValueError):
        return None
    total = 0.0
    for cpu, (busy1, all1) in after.items():
        busy0, all0 = before.get(cpu, (busy1, all1))
        if all1 > all0:
            total += (busy1 - busy0) / (all1 - all0)
    return total if after else None


def choose_threads(
    requested: Optional[int],
    local_processes: int = 1,
    num_workers: int = 0,
    busy: Optional[float] = None,
    affinity: Optional[int] = None,
) -> tuple[int, str]:
    """Intra-op threads per process: ``requested`` (``--threads``) when given, else the available
    CPUs divided among the node's processes, less one per loader worker (at least 1), and no
    more than the CPUs of the ``affinity`` set (default: this process's) that other processes
    left idle (``busy``, measured by :func:`busy_cpus` on that set when this is the node's only
    process; a cgroup quota below the set is a separate cap): threads that wait for a CPU that
    another process holds stall the others at each parallel region (measured by
    ``benchmarks/threads.py``: with one competing process on 2 CPUs, 1 thread trains 1.5x
    faster than 2)."""
    if requested:
        return requested, "--threads"
    cpus, how = available_cpus()
    per_process = max(1, cpus // max(1, local_processes))
    n = max(1, per_process - num_workers)
    why = f"{how} / {local_processes} process(es) on this node - {num_workers} loader worker(s)"
    if busy is not None and busy >= 0.5:
        if affinity is None:
            affinity = len(affinity_cpus())
        free = max(1, int(affinity - busy + 0.5))
        if free < n:
            n = free
            why += f", {busy:.1f} CPU(s) busy with other processes at start"
    return n, why


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
    # the other processes' load, measured when this is the node's only process (torchrun's
    # siblings, busy starting up, would count as competition)
    busy = busy_cpus() if not requested and local == 1 else None
    n, why = choose_threads(requested, local, num_workers, busy)
    torch.set_num_threads(n)
    log.info(
        "threads: %d intra-op per process (%s; OMP_WAIT_POLICY=%s)", n, why, os.environ.get("OMP_WAIT_POLICY", "unset")
    )
    return n
