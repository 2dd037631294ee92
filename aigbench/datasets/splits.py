"""Splitting one labelled set into train / val / test (``--val_split``, ``--test_split``).

The split is seeded and stratified by (label, generator), and it keeps copies together: files
with identical bytes, and near-duplicates whose 64-bit difference hashes (dHash, Krawetz 2013,
on an 8x reduced greyscale decode) differ in at most :data:`NEAR_BITS` bits, form one group that
goes to one split only. Near pairs are found without comparing every pair: two hashes within 3
bits share one of their four 16-bit blocks (multi-index hashing, Norouzi et al. CVPR 2012). Without
that, a web-scraped set that holds the same photo twice puts one copy in training and the other
in validation or test, and the held-out number rewards memorisation.

Both fractions are of the whole: ``--val_split 0.1 --test_split 0.2`` gives 70/10/20.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from aigbench.datasets.layouts import DatasetError, Sample
from aigbench.fileio import atomic_open

log = logging.getLogger("aigbench")

HASH_BLOCK = 1 << 20
MAX_BUCKET = 2000  # bounds the pairwise comparisons within one block value
NEAR_BITS = 3  # dHash bits in which near-duplicates may differ (at most 3: four 16-bit blocks)


def _file_digest(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(HASH_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def _bytes_of(path: str) -> Optional[bytes]:
    from aigbench.datasets.sources import is_row_path, read_row_bytes

    if is_row_path(path):
        return read_row_bytes(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def dhash(path: str) -> Optional[int]:
    """The 64-bit difference hash of an image (greyscale, 9x8, left < right), or None when it
    does not decode. JPEGs are decoded at 1/8 scale (libjpeg's DCT scaling), which is enough."""
    import cv2

    from aigbench.datasets.sources import is_row_path

    gray = None
    if not is_row_path(path):
        gray = cv2.imread(path, cv2.IMREAD_REDUCED_GRAYSCALE_8)
        if gray is not None and min(gray.shape) < 9:  # small images: their own size
            gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        data = _bytes_of(path)
        if not data:
            return None
        from aigbench.imageops import decode_bytes

        rgb = decode_bytes(data)
        if rgb is None:
            return None
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def content_groups(samples: Sequence[Sample], near: bool = True, workers: Optional[int] = None) -> list[int]:
    """A group id per sample: samples with identical bytes, or (``near``) an equal dHash, share one.

    Only files whose byte sizes collide are hashed in full; table rows are hashed from their bytes."""
    from aigbench.datasets.sources import is_row_path

    n = len(samples)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(idx: Sequence[int]) -> None:
        root = find(idx[0])
        for j in idx[1:]:
            parent[find(j)] = root

    by_size: dict[tuple[str, int], list[int]] = defaultdict(list)
    rows: list[int] = []
    for i, s in enumerate(samples):
        if is_row_path(s.path):
            rows.append(i)
        else:
            try:
                by_size[("file", os.path.getsize(s.path))].append(i)
            except OSError:
                continue
    todo = [i for idx in by_size.values() if len(idx) > 1 for i in idx]

    def digest(i: int) -> Optional[str]:
        if is_row_path(samples[i].path):
            data = _bytes_of(samples[i].path)
            return hashlib.blake2b(data, digest_size=16).hexdigest() if data else None
        try:
            return _file_digest(samples[i].path)
        except OSError:
            return None

    workers = workers or min(8, (os.cpu_count() or 1) + 1)
    if rows:
        workers = 1  # table rows: read in order, one row group at a time (their readers are not thread-safe)
    with ThreadPoolExecutor(workers) as pool:
        by_digest: dict[str, list[int]] = defaultdict(list)
        for i, d in zip(todo + rows, pool.map(digest, todo + rows)):
            if d is not None:
                by_digest[d].append(i)
        for idx in by_digest.values():
            if len(idx) > 1:
                union(idx)
        if near:
            hashes = list(pool.map(lambda s: dhash(s.path), samples))
            for i, j in near_pairs(hashes):
                union([i, j])
    return [find(i) for i in range(n)]


def near_pairs(hashes: Sequence[Optional[int]], bits: int = NEAR_BITS) -> list[tuple[int, int]]:
    """Pairs ``(i, j)`` of 64-bit hashes within ``bits`` of each other (None and the hashes of
    flat images, all zeros or all ones, are left out), candidates found by their 16-bit blocks."""
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        if h is None or h in (0, (1 << 64) - 1):
            continue
        for b in range(4):
            buckets[(b, (h >> (16 * b)) & 0xFFFF)].append(i)
    pairs: set[tuple[int, int]] = set()
    for idx in buckets.values():
        if len(idx) > MAX_BUCKET:  # a block shared by very many images (texture-less regions): skipped
            continue
        for a in range(len(idx)):
            for c in idx[a + 1 :]:
                if bin(hashes[idx[a]] ^ hashes[c]).count("1") <= bits:  # type: ignore[operator]
                    pairs.add((idx[a], c))
    return sorted(pairs)


def _take(
    groups: Sequence[int], samples: Sequence[Sample], pool: Sequence[int], fraction: float, seed: int
) -> set[int]:
    """The positions (of ``pool``) that a ``fraction`` split takes: per (label, generator) stratum,
    whole groups in seeded order until ``round(fraction * n)`` images (at least one group when the
    stratum has two or more, never all of them)."""
    members: dict[int, list[int]] = defaultdict(list)
    for i in pool:
        members[groups[i]].append(i)
    strata: dict[tuple[int, str], list[int]] = defaultdict(list)
    for g, idx in members.items():
        first = samples[idx[0]]
        strata[(first.label, first.generator)].append(g)
    rng = np.random.default_rng(seed)
    taken: set[int] = set()
    for key in sorted(strata):
        group_ids = sorted(strata[key], key=lambda g: members[g][0])
        n = sum(len(members[g]) for g in group_ids)
        target = int(round(fraction * n))
        if len(group_ids) >= 2:
            target = max(target, 1)
        got = 0
        order = rng.permutation(len(group_ids))
        for k, gi in enumerate(order):
            if got >= target or k == len(group_ids) - 1:
                break
            size = len(members[group_ids[gi]])
            if got and got + size > target:  # a large group of copies would overshoot: keep it for the rest
                continue
            taken.update(members[group_ids[gi]])
            got += size
    return taken


def split_indices(
    samples: Sequence[Sample], fraction: float, seed: int, groups: Optional[Sequence[int]] = None
) -> tuple[list[int], list[int]]:
    """``(kept, taken)`` positions, each in the original order: ``fraction`` of every (label,
    generator) stratum is taken, in whole ``groups`` (:func:`content_groups`; each sample its own
    group when None)."""
    groups = list(range(len(samples))) if groups is None else list(groups)
    taken = _take(groups, samples, range(len(samples)), fraction, seed)
    return [i for i in range(len(samples)) if i not in taken], sorted(taken)


def split_train_val(samples: Sequence[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """:func:`split_indices` (each sample its own group) as the two lists of samples."""
    kept, taken = split_indices(samples, fraction, seed)
    return [samples[i] for i in kept], [samples[i] for i in taken]


def split_three(
    samples: Sequence[Sample], val: float, test: float, seed: int, near: bool = True
) -> tuple[list[int], list[int], list[int]]:
    """``(train, val, test)`` positions, with ``val`` and ``test`` fractions of the whole, copies
    and near-duplicates kept in one split (``test`` seeded ``seed + 1``, ``val`` seeded ``seed``)."""
    if val < 0 or test < 0 or val + test >= 1:
        from aigbench.errors import ConfigError

        raise ConfigError(f"--val_split {val} and --test_split {test} must be >= 0 and leave training data (sum < 1)")
    groups = content_groups(samples, near=near)
    together = defaultdict(int)
    for g in groups:
        together[g] += 1
    kept = [c for c in together.values() if c > 1]
    if kept:
        log.info(
            "splits: %d group(s) of identical or near-identical images (%d images) each kept in one split",
            len(kept),
            sum(kept),
        )
    rest = list(range(len(samples)))
    test_idx: set[int] = set()
    if test:
        test_idx = _take(groups, samples, rest, test, seed + 1)
        rest = [i for i in rest if i not in test_idx]
    val_idx: set[int] = set()
    if val:
        val_idx = _take(groups, samples, rest, val / (1.0 - test), seed)
        rest = [i for i in rest if i not in val_idx]
    return rest, sorted(val_idx), sorted(test_idx)


def write_split_csv(path: Path, train: Sequence[Sample], val: Sequence[Sample], test: Sequence[Sample] = ()) -> None:
    """``val_split.csv``: path, label, generator, category, split (train / val / test); with the
    seed it reproduces the split, and it is itself a ``CsvList``: ``--test_data_path
    <output_dir>/val_split.csv`` tests the held-out rows again."""
    with atomic_open(path) as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "generator", "category", "split"])
        for part, rows in (("train", train), ("val", val), ("test", test)):
            for s in rows:
                w.writerow([os.path.abspath(s.path), s.label, s.generator, s.category, part])


# ---- overlaps between the sets of one run ------------------------------------------------------------


def check_two_classes(samples: Sequence[Sample], where: str, allow_one_class: bool) -> None:
    labels = {s.label for s in samples}
    if len(labels) < 2 and not allow_one_class:
        only = "real" if labels == {0} else "fake"
        raise DatasetError(
            f"{where}: every one of its {len(samples)} training images is {only}; a detector needs both classes "
            "(a mistyped folder name such as FAKES/ lists nothing). Fix the data, or pass --allow_one_class"
        )


def shared_files(a: Sequence[Sample], b: Sequence[Sample]) -> set[str]:
    """The files (resolved paths) that two sample lists both hold."""
    return {os.path.realpath(s.path) for s in a} & {os.path.realpath(s.path) for s in b}


def warn_overlap(a: Sequence[Sample], b: Sequence[Sample], what: str) -> int:
    """Warn when two sets share files (by resolved path); returns the count."""
    shared = shared_files(a, b)
    if shared:
        log.warning("%s share %d file(s), e.g. %s", what, len(shared), sorted(shared)[0])
    return len(shared)


def check_overlaps(train: Sequence[Sample], val: Sequence[Sample], tests: dict[str, Sequence[Sample]]) -> None:
    """A test set that shares files with the validation data is an error (selecting on it is
    selection on test); one that shares files with the training data is warned about (a leak)."""
    for name, test in tests.items():
        warn_overlap(train, test, f"the training data and test set {name!r} (a leak: test numbers are inflated)")
        if val:
            shared = shared_files(val, test)
            if shared:
                raise DatasetError(
                    f"the validation data and test set {name!r} share {len(shared)} file(s), e.g. {sorted(shared)[0]}: "
                    "selecting checkpoint-best.pth on them would be selection on test. Give a separate "
                    "--val_data_path, or use --val_split (GenImage ships no test split: its val/ is the test set)"
                )
