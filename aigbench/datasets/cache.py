"""``--cache_decoded ram|disk``: decode every image of a dataset once, before training.

The decoded uint8 pixels go into one flat buffer (RAM) or one file mapped into memory (disk,
under ``<output_dir>/cache/``), with an offset and a shape per image: loader workers forked
from the main process read the same pages, and no epoch decodes a JPEG again. This is the
aiornot notebook's HDF5 preprocessing, for datasets that fit in memory or on the local disk.
Augmentation and resizing still run per epoch on the decoded pixels.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from aigbench.datasets.layouts import Sample
from aigbench.datasets.sources import load_image

log = logging.getLogger("aigbench")

CACHE_MODES = ("none", "ram", "disk")


class DecodedCache:
    """Decoded images by dataset index: ``cache[i]`` is ``HxWx3`` uint8, or None for a file that
    could not be decoded (the dataset then treats it as undecodable, as without a cache)."""

    def __init__(self, buffer: np.ndarray, offsets: np.ndarray, shapes: np.ndarray) -> None:
        self.buffer, self.offsets, self.shapes = buffer, offsets, shapes

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, index: int) -> Optional[np.ndarray]:
        h, w = int(self.shapes[index, 0]), int(self.shapes[index, 1])
        if h == 0:
            return None
        start = int(self.offsets[index])
        return np.array(self.buffer[start : start + h * w * 3]).reshape(h, w, 3)  # a copy: augmentation may write

    @property
    def nbytes(self) -> int:
        return int(self.buffer.nbytes)


def _decode_all(samples: Sequence[Sample], threads: int) -> list[Optional[np.ndarray]]:
    paths = [s.path for s in samples]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:  # OpenCV decodes without the GIL
        return list(pool.map(load_image, paths, chunksize=64))


def _layout(images: Sequence[Optional[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    shapes = np.array([(0, 0) if im is None else im.shape[:2] for im in images], dtype=np.int64).reshape(-1, 2)
    sizes = shapes[:, 0] * shapes[:, 1] * 3
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return offsets, shapes


def build_cache(
    samples: Sequence[Sample],
    mode: str,
    folder: Optional[Union[str, os.PathLike]] = None,
    name: str = "data",
    threads: Optional[int] = None,
) -> Optional[DecodedCache]:
    """Decode ``samples`` once (``mode`` ``ram`` or ``disk``; ``none`` gives None). ``disk`` writes
    ``<folder>/<name>.u8`` with its index and maps it read-only; an existing file with the same
    index is reused."""
    if mode == "none" or not samples:
        return None
    if not threads:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if mode == "disk":
        if folder is None:
            raise ValueError("--cache_decoded disk needs a folder (the run's output_dir)")
        base = Path(folder) / name
        index_file = base.with_suffix(".index.npz")
        if index_file.is_file() and base.with_suffix(".u8").is_file():
            idx = np.load(index_file, allow_pickle=False)
            if list(idx["paths"]) == [s.path for s in samples]:
                buffer = np.memmap(base.with_suffix(".u8"), dtype=np.uint8, mode="r")
                log.info("decoded cache %s: reused (%.1f MB)", base.with_suffix(".u8"), buffer.nbytes / 2**20)
                return DecodedCache(buffer, idx["offsets"], idx["shapes"])
    images = _decode_all(samples, threads)
    offsets, shapes = _layout(images)
    total = int((shapes[:, 0] * shapes[:, 1] * 3).sum())
    if mode == "ram":
        buffer = np.empty(total, dtype=np.uint8)
    else:
        base.parent.mkdir(parents=True, exist_ok=True)
        buffer = np.memmap(base.with_suffix(".u8"), dtype=np.uint8, mode="w+", shape=(max(total, 1),))
    for im, off in zip(images, offsets):
        if im is not None:
            buffer[off : off + im.size] = im.reshape(-1)
    if mode == "disk":
        buffer.flush()
        np.savez(index_file, offsets=offsets, shapes=shapes, paths=np.array([s.path for s in samples]))
        buffer = np.memmap(base.with_suffix(".u8"), dtype=np.uint8, mode="r")
    log.info("decoded cache (%s) of %s: %d image(s), %.1f MB", mode, name, len(images), total / 2**20)
    return DecodedCache(buffer, offsets, shapes)
