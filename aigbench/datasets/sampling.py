"""Mixed training sources and balanced sampling.

``--data_path a:1,b:2`` reads several sources (any layout each) and samples source ``a``
half as often as ``b`` per image drawn, whatever their sizes (the Community Forensics recipe:
a Hugging Face fake set plus local real folders). ``--balance`` reweights on top:

* ``label``: real and fake images are drawn equally often;
* ``generator``: real and fake equally often, and within the fakes each generator equally often;
* ``none``: only the source weights.

Drawing is with replacement, ``len(dataset)`` images per epoch, seeded by ``--seed`` and the
epoch, and split across processes (:class:`WeightedDistributedSampler`).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from aigbench.datasets.layouts import DatasetError, Sample

BALANCE_MODES = ("none", "label", "generator")


def parse_sources(spec: str) -> list[tuple[str, float]]:
    """``"a:1,b:2"`` → ``[("a", 1.0), ("b", 2.0)]``; a source without ``:WEIGHT`` weighs 1.

    Only a numeric suffix is a weight, so ``aigbench:demo`` and paths with colons stay paths.
    """
    out = []
    for part in (p.strip() for p in str(spec).split(",")):
        if not part:
            continue
        path, sep, weight = part.rpartition(":")
        try:
            w = float(weight) if sep and path else None
        except ValueError:
            w = None
        if w is None:
            path, w = part, 1.0
        if not math.isfinite(w) or w <= 0:
            raise DatasetError(f"--data_path {spec!r}: the weight of {path!r} must be a positive number, got {weight}")
        out.append((path, w))
    if not out:
        raise DatasetError("--data_path is empty; give a dataset path (or several: a:1,b:2)")
    return out


def sample_weights(
    samples: Sequence[Sample], source_of: Sequence[int], source_weights: Sequence[float], balance: str = "none"
) -> np.ndarray:
    """Per-image drawing probabilities (summing to 1) for the sources and ``balance`` mode."""
    if balance not in BALANCE_MODES:
        raise DatasetError(f"--balance must be one of {', '.join(BALANCE_MODES)}, got {balance!r}")
    src = np.asarray(source_of)
    sizes = np.bincount(src, minlength=len(source_weights)).astype(np.float64)
    w = np.asarray(source_weights, dtype=np.float64)[src] / sizes[src]
    if balance != "none":
        labels = np.array([s.label for s in samples])
        if len(set(labels.tolist())) < 2:
            raise DatasetError(f"--balance {balance} needs real and fake training images; the data has one class")
        keys = [("real",) if s.label == 0 else ("fake", s.generator if balance == "generator" else "") for s in samples]
        fake_groups = {k for k in keys if k[0] == "fake"}
        totals: Counter = Counter()
        for k, wi in zip(keys, w):
            totals[k] += wi
        target = {k: (0.5 if k[0] == "real" else 0.5 / len(fake_groups)) for k in totals}
        w = np.array([wi * target[k] / totals[k] for k, wi in zip(keys, w)])
    return w / w.sum()


class WeightedDistributedSampler(Sampler[int]):
    """Draw ``num_samples`` indices per process with replacement from ``weights``; every process
    draws from the same seeded stream (``seed`` + epoch) and takes its own slice."""

    def __init__(
        self,
        weights: np.ndarray,
        num_samples: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
    ) -> None:
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        self.num_samples = int(num_samples)
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        idx = torch.multinomial(self.weights, self.num_samples * self.world_size, replacement=True, generator=g)
        return iter(idx[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.num_samples


def describe_mix(samples: Sequence[Sample], weights: np.ndarray, names: Optional[Sequence[str]] = None) -> str:
    """One line: the expected share of real images and of each generator per epoch."""
    share: Counter = Counter()
    for s, w in zip(samples, weights):
        share["real" if s.label == 0 else (s.generator or "fake")] += float(w)
    return ", ".join(f"{k} {100 * v:.1f} %" for k, v in sorted(share.items(), key=lambda kv: -kv[1]))
