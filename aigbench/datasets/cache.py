"""``--cache_decoded ram|disk``: decode every image of a dataset once, before training.

The decoded uint8 pixels go into one flat buffer (RAM) or one file mapped into memory (disk,
under ``<output_dir>/cache/``), with an offset and a shape per image: loader workers forked
from the main process read the same pages, and no epoch decodes a JPEG again. This is the
aiornot notebook's HDF5 preprocessing, for datasets that fit in memory or on the local disk.
Augmentation and resizing still run per epoch on the decoded pixels.

A disk cache is never stale: each entry is keyed by its file's path, size, modification time
and a hash of its first and last 64 KiB (:func:`file_signature`); a cache whose files changed
in any of these (a photo replaced in place, a broken file repaired) is decoded again.
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
from aigbench.envinfo import affinity_cpus

log = logging.getLogger("aigbench")

CACHE_MODES = ("none", "ram", "disk")
SIGNATURE_BLOCK = 1 << 16


def file_signature(path: str) -> str:
    """``size:mtime_ns:hash`` of the file that holds ``path`` (a table row's file), the hash of
    its first and last :data:`SIGNATURE_BLOCK` bytes; ``missing`` when it cannot be read."""
    import hashlib

    from aigbench.datasets.layouts import ROW_PATH

    m = ROW_PATH.match(path)
    file = m.group("file") if m else path
    try:
        st = os.stat(file)
        with open(file, "rb") as f:
            head = f.read(SIGNATURE_BLOCK)
            if st.st_size > SIGNATURE_BLOCK:
                f.seek(max(SIGNATURE_BLOCK, st.st_size - SIGNATURE_BLOCK))
            tail = f.read(SIGNATURE_BLOCK)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}:{hashlib.blake2b(head + tail, digest_size=16).hexdigest()}"


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


DECODE_CHUNK = 2048


def _decoded_chunks(samples: Sequence[Sample], threads: int):
    """Decoded images, ``DECODE_CHUNK`` at a time: memory holds one chunk, not the dataset."""
    paths = [s.path for s in samples]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:  # OpenCV decodes without the GIL
        for start in range(0, len(paths), DECODE_CHUNK):
            yield list(pool.map(load_image, paths[start : start + DECODE_CHUNK]))


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
        threads = len(affinity_cpus())
    if mode == "disk":
        if folder is None:
            raise ValueError("--cache_decoded disk needs a folder (the run's output_dir)")
        base = Path(folder) / name
        index_file = base.with_suffix(".index.npz")
        signatures = [file_signature(s.path) for s in samples]
        if index_file.is_file() and base.with_suffix(".u8").is_file():
            idx = np.load(index_file, allow_pickle=False)
            same_files = list(idx["paths"]) == [s.path for s in samples]
            stored = list(idx["signatures"]) if "signatures" in idx.files else []
            changed = [s.path for s, a, b in zip(samples, signatures, stored) if a != b] if stored else ["(all)"]
            if same_files and not changed:
                buffer = np.memmap(base.with_suffix(".u8"), dtype=np.uint8, mode="r")
                log.info("decoded cache %s: reused (%.1f MB)", base.with_suffix(".u8"), buffer.nbytes / 2**20)
                return DecodedCache(buffer, idx["offsets"], idx["shapes"])
            if same_files:
                log.info(
                    "decoded cache %s: %s file(s) changed since it was written (e.g. %s); decoding again",
                    base.with_suffix(".u8"),
                    len(changed),
                    changed[0],
                )
    shapes = np.zeros((len(samples), 2), dtype=np.int64)
    offsets = np.zeros(len(samples), dtype=np.int64)
    pieces: list[np.ndarray] = []
    total, i = 0, 0
    sink = None
    if mode == "disk":
        base.parent.mkdir(parents=True, exist_ok=True)
        tmp = base.with_name(f".{base.name}.{os.getpid()}.u8.tmp")
        sink = open(tmp, "wb")
    try:
        for chunk in _decoded_chunks(samples, threads):
            for im in chunk:
                offsets[i] = total
                if im is not None:
                    shapes[i] = im.shape[:2]
                    flat = np.ascontiguousarray(im).reshape(-1)
                    total += flat.size
                    if sink is not None:
                        sink.write(flat.tobytes())
                    else:
                        pieces.append(flat)
                i += 1
    finally:
        if sink is not None:
            sink.close()
    if mode == "ram":
        buffer: np.ndarray = np.concatenate(pieces) if pieces else np.zeros(0, np.uint8)
    else:
        index_tmp = base.with_name(f".{base.name}.{os.getpid()}.index.npz")
        np.savez(
            index_tmp,
            offsets=offsets,
            shapes=shapes,
            paths=np.array([s.path for s in samples]),
            signatures=np.array(signatures),
        )
        os.replace(tmp, base.with_suffix(".u8"))  # complete files only, whoever wrote them
        os.replace(index_tmp, index_file)
        buffer = np.memmap(base.with_suffix(".u8"), dtype=np.uint8, mode="r") if total else np.zeros(0, np.uint8)
    log.info("decoded cache (%s) of %s: %d image(s), %.1f MB", mode, name, len(samples), total / 2**20)
    return DecodedCache(buffer, offsets, shapes)
