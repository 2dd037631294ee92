"""Reading sharded tables (parquet, WebDataset tar, Arrow) shard by shard: every process and
every loader worker reads its own shards.

A dataset whose samples are rows of several files (``<file>#<row>``) gets a
:class:`ShardBatchSampler`. Its files are dealt to the processes (``rank::world``) and, within
a process, to the loader workers; each worker's rows are read file after file, in row order
(training: shard order and row blocks shuffled each epoch), so a worker opens only its own
shards and reads each row group or tar member run once, sequentially: the access pattern of
streaming, over files that need not fit in memory. With fewer files than readers, rows are
split in contiguous runs instead.

Every process yields the same number of batches (DDP steps stay in lockstep), each of them
full. In training every row is drawn once per epoch whatever the shard sizes: the shuffled
files are laid end to end and cut into one contiguous run per reader, equal to a row (a reader
reads its files in order, sharing at most the first and the last with a neighbour); only the
last batch of a run is filled up with repeats of its own rows. The shard order changes each
epoch. Evaluation reads
every row: short streams are padded with repeats, and the predictions, gathered by dataset
index with repeated indices kept once, count each image exactly once. Batches are dealt to
workers in turn, as the ``DataLoader`` does; their count
is a multiple of the number of workers so that persistent workers keep their shards from one
pass to the next.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional, Sequence

import numpy as np
from torch.utils.data import Sampler

from aigbench.datasets.layouts import ROW_PATH

SHUFFLE_BLOCK = 1024  # training: rows are shuffled within runs of this many (a row group's order of size)


def shard_ids(dataset: object) -> Optional[np.ndarray]:
    """For each sample of ``dataset``, the index of the file its row is in; None unless every
    sample is a table row and there are at least two files."""
    samples = getattr(dataset, "samples", None)
    if samples is None or len(samples) == 0:
        return None
    files: dict[str, int] = {}
    ids = np.empty(len(samples), dtype=np.int64)
    for i in range(len(samples)):
        m = ROW_PATH.match(samples.path(i))
        if m is None:
            return None
        ids[i] = files.setdefault(m.group("file"), len(files))
    return ids if len(files) >= 2 else None


def _deal(groups: Sequence[np.ndarray], parts: int) -> list[np.ndarray]:
    """``groups`` (rows of each file, in reading order) dealt to ``parts`` readers: whole files
    when there are enough of them, else contiguous runs of all the rows."""
    if len(groups) >= parts:
        return [
            np.concatenate(list(groups[k::parts])) if groups[k::parts] else np.zeros(0, np.int64) for k in range(parts)
        ]
    rows = np.concatenate(list(groups)) if groups else np.zeros(0, np.int64)
    return [np.asarray(r, dtype=np.int64) for r in np.array_split(rows, parts)]


class ShardBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices, each worker's from its own shards (see the module doc)."""

    def __init__(
        self,
        shards: np.ndarray,
        batch_size: int,
        train: bool,
        num_workers: int = 0,
        rank: int = 0,
        world: int = 1,
        seed: int = 0,
        distributed: bool = False,
    ) -> None:
        self.shards = np.asarray(shards)
        self.batch_size = int(batch_size)
        self.train = train
        self.workers = max(1, int(num_workers))
        self.rank, self.world = int(rank), int(world)
        self.seed = int(seed)
        self.epoch = 0
        self.distributed = distributed  # for loaders built from this one (evaluation views)
        self._per_worker = self._batches_per_worker()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _files(self, rng: Optional[np.random.Generator]) -> list[np.ndarray]:
        order = np.argsort(self.shards, kind="stable")
        bounds = np.flatnonzero(np.diff(self.shards[order])) + 1
        groups = np.split(order, bounds)  # rows of each file, in row order
        if rng is None:
            return groups
        shuffled = []
        for k in rng.permutation(len(groups)):
            rows = groups[k]
            blocks = [rows[i : i + SHUFFLE_BLOCK] for i in range(0, len(rows), SHUFFLE_BLOCK)]
            shuffled.append(np.concatenate([rng.permutation(blocks[b]) for b in rng.permutation(len(blocks))]))
        return shuffled

    def streams(self, rank: Optional[int] = None) -> list[np.ndarray]:
        """The rows each worker of process ``rank`` reads this epoch, in order (before padding)."""
        rank = self.rank if rank is None else rank
        files = self._files(np.random.default_rng([self.seed, self.epoch]) if self.train else None)
        if self.train:  # every row once: the shuffled files end to end, one equal run per reader
            runs = np.array_split(np.concatenate(files), self.world * self.workers)
            return [np.asarray(r, dtype=np.int64) for r in runs[rank * self.workers : (rank + 1) * self.workers]]
        if len(files) >= self.world * self.workers:  # whole files for each process and each worker
            return _deal(files[rank :: self.world], self.workers)
        return [np.asarray(r, dtype=np.int64) for r in np.array_split(_deal(files, self.world)[rank], self.workers)]

    def _batches_per_worker(self) -> int:
        """Training: an equal share of the rows for every reader (runs differ by one row at most), so
        the count is the same whatever the shuffled shard order; evaluation: the longest stream, so
        that no row is left out."""
        if self.train:
            longest = math.ceil(len(self.shards) / (self.world * self.workers))
        else:
            longest = max(len(s) for r in range(self.world) for s in self.streams(r))
        return max(1, math.ceil(longest / self.batch_size))

    def __len__(self) -> int:
        return self._per_worker * self.workers

    def __iter__(self) -> Iterator[list[int]]:
        n = self._per_worker * self.batch_size
        padded = []
        for s in self.streams():
            if len(s) == 0:  # a reader without rows repeats some of the dataset's (kept once when gathered)
                s = np.arange(min(len(self.shards), n), dtype=np.int64)
            padded.append(np.resize(s, n))  # round its own rows again up to n
        for j in range(self._per_worker):
            for s in padded:  # batch j of every worker, in the order the DataLoader deals them
                yield s[j * self.batch_size : (j + 1) * self.batch_size].tolist()
