"""``bench data check``: what a dataset holds, and what is wrong with it, before training.

:func:`check_dataset` lists every sample of every split of one dataset, or of several checked
together (``bench data check TRAIN TEST``), with each dataset's layout, reads each file once
(content hash and image header from the same bytes) and returns a plain dict, the report;
:func:`format_report` renders it for the terminal and :func:`write_report` writes it as JSON.
The report holds:

* counts per split, class (real = 0, fake = 1), generator and category (and per PATH);
* problem files: ``missing``, ``unreadable``, ``empty``, ``not an image``, ``truncated``,
  ``undecodable``. Only headers are parsed where the format allows a cheap integrity check
  (:mod:`aigbench.imageops.integrity`: a JPEG reaches its EOI marker, a PNG its IEND chunk, whose
  chunk CRCs are verified, a GIF its trailer, a WebP has all the bytes its RIFF header
  announces); a file that fails the check, and a file in any other format, is decoded fully;
* exact duplicates (BLAKE2b of the bytes) within and across splits, each split's own listed;
  identical content in test/ and train/ (or val/), or in two of the PATHs checked together,
  is a *leak*, an error (exit status 1);
* an error for a PATH (or a split of it) whose readable images are of one class only;
* per class, histograms of file format, JPEG quality (estimated from the quantisation tables,
  :func:`estimate_jpeg_quality`), width x height, colour mode and file size;
* a shortcut audit: the cross-validated AUROC of a classifier that sees metadata only
  (format, JPEG quality, width, height, aspect ratio, file size, mode), after Grommelt et al.
  2024, "Fake or JPEG? Revealing Common Biases in Generated Image Detection Datasets", and
  advice ranked by what each group of features measured.

Nothing here imports torch, and nothing is written except by :func:`write_report`.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import os
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np

from aigbench import __version__
from aigbench.datasets.layouts import DatasetError, Sample, detect_layout, layout_class, resolve_path, split_layout
from aigbench.datasets.sources import ROW_PATH, read_row_bytes
from aigbench.imageops.integrity import END_WORDS, HEAD_BYTES, ends_complete, sniff_format

CLASS_NAMES = ("real", "fake")
PROBLEM_KINDS = ("missing", "unreadable", "empty", "not an image", "truncated", "undecodable")
NONE = "(none)"  # the split, generator or category of samples that have none
TOP_VALUES = 5  # values shown per histogram; the rest are summed as "other"
SHOWN_PATHS = 20  # paths shown per list in the terminal (the JSON has all of them)
SHORTCUT_THRESHOLD = 0.6  # a metadata-only AUROC above this is a warning
CV_FOLDS = 5
CV_SEED = 0
CV_MIN_PER_CLASS = 20  # fewer images of a class give fold AUROCs too coarse to mean anything
AUDIT_MAX_IMAGES = 20000  # larger datasets are audited on a stratified, seeded sample
DEFAULT_ALIGN_QUALITY = 96

# ITU-T T.81 Annex K tables in natural (row-major) order: libjpeg scales them by quality.
IJG_LUMINANCE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
IJG_CHROMINANCE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    *((99,) * 8,) * 4,
)

FEATURE_WORDS = {
    "format": "file format",
    "jpeg_quality": "JPEG quality",
    "width": "width",
    "height": "height",
    "aspect": "aspect ratio",
    "mode": "colour mode",
    "file_size": "file size",
}
# Features that one sentence of the warning describes together.
_CLAUSE_OF = {
    "format": "format",
    "jpeg_quality": "format",
    "width": "dimensions",
    "height": "dimensions",
    "aspect": "dimensions",
    "file_size": "file_size",
    "mode": "mode",
}


# -- JPEG quality -----------------------------------------------------------------------------


def ijg_table(quality: int, base: Sequence[Sequence[int]] = IJG_LUMINANCE) -> np.ndarray:
    """The 64 quantisation steps (natural order) that libjpeg's ``jpeg_set_quality(quality,
    force_baseline=TRUE)`` derives from an Annex K table."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    steps = (np.asarray(base, dtype=np.int64).reshape(64) * scale + 50) // 100
    return np.clip(steps, 1, 255)


_QUALITIES = np.arange(1, 101)
_LUMA_TABLES = np.stack([ijg_table(int(q), IJG_LUMINANCE) for q in _QUALITIES])  # 100 x 64
_CHROMA_TABLES = np.stack([ijg_table(int(q), IJG_CHROMINANCE) for q in _QUALITIES])
_quality_cache: dict[tuple, int] = {}


def estimate_jpeg_quality(quantization: Mapping[int, Sequence[int]]) -> int:
    """The libjpeg quality 1..100 whose scaled standard tables are closest to a file's
    quantisation tables (Pillow's ``im.quantization``: table id → 64 steps in natural order).

    The distance is the sum of absolute differences over the luminance table (id 0) and, when
    present, the chrominance table (id 1). Files from libjpeg, libjpeg-turbo, Pillow, OpenCV
    and most tools built on them match one quality exactly; tables of other encoders (cameras,
    Photoshop) get the nearest libjpeg quality, hence "q≈" in the report.
    """
    luma = quantization.get(0)
    if luma is None or len(luma) != 64:
        raise ValueError("expected a 64-step luminance quantisation table under id 0")
    chroma = quantization.get(1)
    key = (tuple(luma), tuple(chroma) if chroma is not None and len(chroma) == 64 else ())
    cached = _quality_cache.get(key)
    if cached is not None:
        return cached
    dist = np.abs(_LUMA_TABLES - np.asarray(luma, dtype=np.int64)).sum(axis=1)
    if key[1]:
        dist = dist + np.abs(_CHROMA_TABLES - np.asarray(chroma, dtype=np.int64)).sum(axis=1)
    quality = int(_QUALITIES[int(np.argmin(dist))])
    if len(_quality_cache) < 4096:
        _quality_cache[key] = quality
    return quality


# -- one file -----------------------------------------------------------------------------------


class FileInfo(NamedTuple):
    """What one file holds. ``problem`` is "" for a readable image, else one of
    :data:`PROBLEM_KINDS`, and ``detail`` says why."""

    size: int
    digest: str
    format: str = ""
    quality: int = -1  # estimated JPEG quality; -1 when not a JPEG
    width: int = 0
    height: int = 0
    mode: str = ""
    problem: str = ""
    detail: str = ""


def _broken(fmt: str, data: bytes, error: BaseException) -> tuple[str, str]:
    """Classify a file of a known format that Pillow could not open or decode."""
    message = str(error) or type(error).__name__
    if ends_complete(fmt, data) is False:
        return "truncated", f"{fmt} with {END_WORDS[fmt]}; Pillow: {message}"
    if "truncated" in message.lower():
        return "truncated", f"{fmt}; Pillow: {message}"
    return "undecodable", f"{fmt}; Pillow: {message}"


_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, MemoryError)


def inspect_bytes(data: bytes) -> FileInfo:
    """Hash, header and integrity of one encoded file; decodes pixels only when needed (see the
    module docstring)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        return FileInfo(0, hashlib.blake2b(data, digest_size=16).hexdigest(), problem="empty", detail="0 bytes")
    info = FileInfo(len(data), hashlib.blake2b(data, digest_size=16).hexdigest())
    sniffed = sniff_format(data[:HEAD_BYTES])
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as e:
        if sniffed:
            problem, detail = _broken(sniffed, data, e)
            return info._replace(format=sniffed, problem=problem, detail=detail)
        return info._replace(problem="not an image", detail=f"no image format recognised; starts with {data[:16]!r}")
    except Image.DecompressionBombError as e:
        return info._replace(format=sniffed, problem="undecodable", detail=f"Pillow: {e}")
    except _PIL_ERRORS as e:
        problem, detail = _broken(sniffed or "image", data, e)
        return info._replace(format=sniffed, problem=problem, detail=detail)
    with im:
        fmt = im.format or sniffed or "unknown"
        info = info._replace(format=fmt, width=im.size[0], height=im.size[1], mode=im.mode)
        if fmt in ("JPEG", "MPO") and getattr(im, "quantization", None):
            try:
                info = info._replace(quality=estimate_jpeg_quality(im.quantization))
            except ValueError:
                pass  # a non-standard table layout: the quality stays unknown (-1)
        complete = ends_complete(fmt, data)
        try:
            if complete and fmt == "PNG":
                im.verify()  # chunk CRCs, without decompressing
            elif not complete:
                im.load()  # no cheap check, or it failed: decode to find out
        except _PIL_ERRORS as e:
            problem, detail = _broken(fmt, data, e)
            return info._replace(problem=problem, detail=detail)
    return info


def inspect_file(path: str) -> FileInfo:
    """:func:`inspect_bytes` of the file at ``path`` (or of the ``<file>#<row>`` row of a
    parquet/Arrow table), read once; a missing or unreadable file is a problem, not an exception."""
    row = ROW_PATH.match(path)
    if row is not None:
        if not os.path.isfile(row.group("file")):
            return FileInfo(0, "", problem="missing", detail=f"no such file {row.group('file')}")
        data = read_row_bytes(path)
        if data is None:
            return FileInfo(0, "", problem="unreadable", detail="the row has no image bytes or cannot be read")
        return inspect_bytes(bytes(data))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return FileInfo(0, "", problem="missing", detail="no such file")
    except OSError as e:
        return FileInfo(0, "", problem="unreadable", detail=e.strerror or str(e))
    return inspect_bytes(data)


def _inspect_all(paths: Sequence[str], progress: bool, workers: Optional[int]) -> list[FileInfo]:
    """:func:`inspect_file` of every path, in order, on a thread pool (file reads, hashing and
    Pillow's decoders release the GIL), with a tqdm bar when ``progress``."""
    from tqdm import tqdm

    workers = workers or min(8, 2 * (os.cpu_count() or 1))
    if any(ROW_PATH.match(p) for p in paths):
        workers = 1  # table rows: read in order, one row group at a time (their caches are not thread-safe)
    out: list[FileInfo] = []
    bar = tqdm(total=len(paths), desc="checking", unit="img", disable=not progress, leave=False, dynamic_ncols=True)
    with warnings.catch_warnings(), bar:
        warnings.simplefilter("ignore")  # Pillow's warnings about odd files: the report has the problems
        if workers <= 1:
            for p in paths:
                out.append(inspect_file(p))
                bar.update()
        else:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                for start in range(0, len(paths), 4096):  # bounded batches: no million pending futures
                    for info in pool.map(inspect_file, paths[start : start + 4096]):
                        out.append(info)
                        bar.update()
    return out


# -- histograms and counts ------------------------------------------------------------------------


def _size_bin(size: int) -> str:
    """File sizes in power-of-two bins: "<1 KiB", "1-2 KiB", ..., "512 KiB-1 MiB", "1-2 MiB"."""
    if size < 1024:
        return "<1 KiB"
    lo = 1 << (size.bit_length() - 1)

    def words(n: int) -> str:
        return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"

    a, b = words(lo), words(lo * 2)
    if a.split()[1] == b.split()[1]:
        a = a.split()[0]
    return f"{a}-{b}"


def histogram(values: Iterable[Any], total: Optional[int] = None, top: int = TOP_VALUES) -> list[dict]:
    """The ``top`` most common values as ``{"value", "count", "percent"}`` (of ``total``, by
    default the number of values), most common first; the rest summed as value "other"."""
    counts = Counter(values)
    total = total if total is not None else sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    rows = [{"value": v, "count": c, "percent": round(100 * c / total, 1) if total else 0.0} for v, c in ranked[:top]]
    rest = sum(c for _, c in ranked[top:])
    if rest:
        rows.append({"value": "other", "count": rest, "percent": round(100 * rest / total, 1)})
    return rows


def _class_counts(labels: Iterable[int]) -> dict[str, int]:
    c = Counter(labels)
    return {"real": c[0], "fake": c[1], "total": c[0] + c[1]}


def _counts(samples: Sequence[Sample]) -> dict[str, Any]:
    by: dict[str, dict[str, list[int]]] = {"split": defaultdict(list), "generator": defaultdict(list)}
    by["category"] = defaultdict(list)
    rows: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for s in samples:
        key = (s.split or NONE, s.generator or NONE, s.category or NONE)
        rows[key].append(s.label)
        by["split"][key[0]].append(s.label)
        by["generator"][key[1]].append(s.label)
        by["category"][key[2]].append(s.label)
    return {
        "total": _class_counts(s.label for s in samples),
        "by_split": {k: _class_counts(v) for k, v in sorted(by["split"].items(), key=lambda kv: _split_order(kv[0]))},
        "by_generator": {k: _class_counts(v) for k, v in sorted(by["generator"].items())},
        "by_category": {k: _class_counts(v) for k, v in sorted(by["category"].items())},
        "rows": [
            {"split": k[0], "generator": k[1], "category": k[2], **_class_counts(v)}
            for k, v in sorted(rows.items(), key=lambda kv: (_split_order(kv[0][0]), kv[0][1:]))
        ],
    }


def _split_order(split: str) -> tuple[int, str]:
    order = {"train": 0, "val": 1, "test": 2}
    return (order.get(split, 3), split)


def _metadata(infos: Sequence[FileInfo]) -> dict[str, Any]:
    n = len(infos)
    sizes = sorted(i.size for i in infos)
    return {
        "n": n,
        "format": histogram((i.format for i in infos), n),
        "jpeg_quality": histogram((i.quality for i in infos), n),
        "dimensions": histogram((f"{i.width}x{i.height}" for i in infos), n),
        "mode": histogram((i.mode for i in infos), n),
        "file_size": histogram((_size_bin(i.size) for i in infos), n),
        "file_size_median": sizes[n // 2] if n else None,
    }


# -- duplicates and leaks -------------------------------------------------------------------------

# Split pairs that share content: an error when test data was seen in training or selection.
LEAK_SEVERITY = {("test", "train"): "error", ("test", "val"): "error", ("train", "val"): "warning"}


def _shared(
    digest: str,
    members: Sequence[int],
    side: Sequence[str],
    severity: Mapping[tuple[str, str], str],
    paths: Sequence[str],
) -> list[dict[str, Any]]:
    """The leaks of one content whose copies are ``members``: one per pair of ``severity`` whose
    two sides (``side[i]`` of each copy) both hold a copy, with the copies on those sides (the
    first side's first) and how many lie on each. One rule for the splits of a dataset and for
    the PATHs checked together."""
    present = {side[i] for i in members}
    out = []
    for pair, level in severity.items():
        if set(pair) <= present:
            out.append(
                {
                    "severity": level,
                    "hash": digest,
                    "paths": [paths[i] for s in pair for i in members if side[i] == s],
                    "counts": [sum(side[i] == pair[0] for i in members), sum(side[i] == pair[1] for i in members)],
                    "between": list(pair),
                }
            )
    return out


def _duplicates(
    samples: Sequence[Sample], infos: Sequence[FileInfo], owner: Sequence[int], given: Sequence[str]
) -> tuple[list[dict], list[dict], list[dict]]:
    """Groups of byte-identical files; the leaks among them: content in two splits of one PATH
    (:data:`LEAK_SEVERITY`), or in two of the ``given`` PATHs (``owner[i]`` is the PATH of sample
    ``i``), always an error; the groups whose copies carry both labels."""
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, info in enumerate(infos):
        if info.digest and info.problem != "empty":
            by_hash[info.digest].append(i)
    paths = [s.path for s in samples]
    splits = [s.split or NONE for s in samples]
    sources = [given[k] for k in owner]
    # a later PATH against an earlier one, as ("test", "train"): the copies in the later one are counted
    between_paths = {(b, a): "error" for j, a in enumerate(given) for b in given[j + 1 :]}
    groups, leaks, conflicts = [], [], []
    for digest, idx in by_hash.items():
        if len(idx) < 2:
            continue
        labels = sorted({samples[i].label for i in idx})
        group = {
            "hash": digest,
            "paths": [paths[i] for i in idx],
            "splits": [splits[i] for i in idx],
            "labels": [samples[i].label for i in idx],
        }
        if len(given) > 1:
            group["sources"] = [sources[i] for i in idx]
        groups.append(group)
        for k in sorted({owner[i] for i in idx}):
            for leak in _shared(digest, [i for i in idx if owner[i] == k], splits, LEAK_SEVERITY, paths):
                leaks.append({"kind": "split", "splits": leak.pop("between"), **leak})
        for leak in _shared(digest, idx, sources, between_paths, paths):
            leaks.append({"kind": "path", "sources": leak.pop("between"), **leak})
        if len(labels) > 1:
            conflicts.append(
                {"hash": digest, "paths": [paths[i] for i in idx], "labels": [samples[i].label for i in idx]}
            )
    groups.sort(key=lambda g: g["paths"][0])
    leaks.sort(key=lambda g: (g["kind"] == "split", g.get("splits", g.get("sources")), g["paths"][0]))
    conflicts.sort(key=lambda g: g["paths"][0])
    return groups, leaks, conflicts


# -- the shortcut audit ---------------------------------------------------------------------------


def _feature_table(infos: Sequence[FileInfo]) -> tuple[np.ndarray, list[str], dict[str, list[int]]]:
    """The metadata design matrix: one-hot format and mode, JPEG quality (-1 when not JPEG),
    width, height, aspect and file size; with the column names and the columns of each feature."""
    formats = sorted({i.format for i in infos})
    modes = sorted({i.mode for i in infos})
    cols: list[np.ndarray] = []
    names: list[str] = []
    groups: dict[str, list[int]] = defaultdict(list)

    def add(group: str, name: str, values: Sequence[float]) -> None:
        groups[group].append(len(cols))
        cols.append(np.asarray(values, dtype=np.float64))
        names.append(name)

    for f in formats:
        add("format", f"format={f}", [i.format == f for i in infos])
    add("jpeg_quality", "jpeg_quality", [i.quality for i in infos])
    add("width", "width", [i.width for i in infos])
    add("height", "height", [i.height for i in infos])
    add("aspect", "aspect", [i.width / i.height if i.height else 0.0 for i in infos])
    add("file_size", "file_size", [i.size for i in infos])
    for m in modes:
        add("mode", f"mode={m}", [i.mode == m for i in infos])
    return np.stack(cols, axis=1), names, dict(groups)


def _feature_keys(infos: Sequence[FileInfo]) -> dict[str, np.ndarray]:
    """Each feature as integer codes: exact values, aspect to 3 decimals, file size in 20
    quantile bins."""
    raw = {
        "format": [i.format for i in infos],
        "jpeg_quality": [i.quality for i in infos],
        "width": [i.width for i in infos],
        "height": [i.height for i in infos],
        "aspect": [round(i.width / i.height, 3) if i.height else 0.0 for i in infos],
        "mode": [i.mode for i in infos],
    }
    keys = {k: np.unique(np.asarray(v), return_inverse=True)[1].reshape(-1) for k, v in raw.items()}
    sizes = np.asarray([i.size for i in infos], dtype=np.float64)
    edges = np.unique(np.quantile(sizes, np.linspace(0, 1, 21)[1:-1]))
    keys["file_size"] = np.searchsorted(edges, sizes, side="right")
    return keys


def _rate_auroc(codes: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Out-of-fold AUROC of one feature alone: each held-out image is scored by the fraction
    of fakes among training images with the same value (smoothed towards the prior)."""
    from sklearn.metrics import roc_auc_score

    k = int(codes.max()) + 1
    score = np.empty(len(y))
    for train, test in folds:
        fakes = np.bincount(codes[train], weights=y[train], minlength=k)
        total = np.bincount(codes[train], minlength=k)
        prior = y[train].mean()
        score[test] = ((fakes + prior) / (total + 1))[codes[test]]
    return float(roc_auc_score(y, score))


def _audit_one(infos: Sequence[FileInfo], labels: Sequence[int], seed: int) -> dict[str, Any]:
    """Cross-validated AUROC of a metadata-only classifier; or a note why there is none."""
    y = np.asarray(labels, dtype=np.int64)
    n_real, n_fake = int((y == 0).sum()), int((y == 1).sum())
    base = {"auroc": None, "auroc_std": None, "n_images": len(y), "n_real": n_real, "n_fake": n_fake}
    if n_real == 0 and n_fake == 0:
        return {**base, "note": "no readable images"}
    if n_real == 0 or n_fake == 0:
        only = "real" if n_fake == 0 else "fake"
        return {**base, "note": f"only {only} images: no audit without both classes"}
    if min(n_real, n_fake) < CV_MIN_PER_CLASS:
        return {
            **base,
            "note": f"too few images for {CV_FOLDS}-fold cross-validation (need at least {CV_MIN_PER_CLASS} of "
            f"each class; found {n_real} real, {n_fake} fake)",
        }
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    x, _, _ = _feature_table(infos)
    folds = list(StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed).split(x, y))
    leaf = int(min(20, max(1, len(y) // 100)))  # small datasets: leaves small enough to learn anything
    scores = []
    # One OpenMP thread: a model this small gains nothing from more, and on a busy machine
    # OpenMP's spinning threads make it many times slower.
    with threadpool_limits(1):
        for train, test in folds:
            model = HistGradientBoostingClassifier(max_iter=100, min_samples_leaf=leaf, random_state=seed)
            model.fit(x[train], y[train])
            scores.append(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
    keys = _feature_keys(infos)
    feature_auroc = {name: round(_rate_auroc(keys[name], y.astype(np.float64), folds), 4) for name in FEATURE_WORDS}
    return {
        **base,
        "auroc": round(float(np.mean(scores)), 4),
        "auroc_std": round(float(np.std(scores)), 4),
        # strongest first; near-ties (same 2 decimals) in FEATURE_WORDS order, which puts the
        # causes (format, quality, size) before file size, their consequence
        "feature_auroc": dict(sorted(feature_auroc.items(), key=lambda kv: -round(kv[1], 2))),
        "note": None,
    }


def _subsample(idx: list[int], labels: Sequence[int], limit: int, seed: int) -> list[int]:
    """At most ``limit`` of ``idx``, the same fraction of each class, seeded."""
    if len(idx) <= limit:
        return idx
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for c in (0, 1):
        members = [i for i in idx if labels[i] == c]
        k = round(limit * len(members) / len(idx))
        keep += [members[j] for j in sorted(rng.choice(len(members), size=k, replace=False))]
    return sorted(keep)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "0 %"


def _top(values: Sequence[str]) -> tuple[str, int]:
    value, count = sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))[0]
    return value, count


def _kib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n / 1024:.1f} KiB"


def _contrast(real: Sequence[str], fake: Sequence[str], unit: str = "") -> str:
    """Each class's own statistics of one categorical feature: the most common value of each when
    they differ; else the value whose share differs most, with its share in each class."""
    (rv, rc), (fv, fc) = _top(real), _top(fake)
    if rv != fv:
        return f"real images are {_pct(rc, len(real))} {rv}{unit}, fakes {_pct(fc, len(fake))} {fv}{unit}"
    cr, cf = Counter(real), Counter(fake)

    def gap(v: str) -> tuple[float, int, str]:
        return (abs(cr[v] / len(real) - cf[v] / len(fake)), cr[v] + cf[v], v)

    v = max(set(cr) | set(cf), key=gap)
    return f"{v}{unit} is {_pct(cr[v], len(real))} of real images and {_pct(cf[v], len(fake))} of fakes"


def _clause(kind: str, by_class: Sequence[Sequence[FileInfo]], leading: Sequence[str]) -> str:
    """One plain-words comparison of real and fake images for a group of features, each class
    quoted with its own statistics."""
    real, fake = by_class
    if kind == "format":
        with_q = "jpeg_quality" in leading

        def label(i: FileInfo) -> str:
            return f"JPEG q≈{i.quality}" if with_q and i.format == "JPEG" and i.quality > 0 else i.format

        return _contrast([label(i) for i in real], [label(i) for i in fake])
    if kind == "dimensions":
        text = _contrast([f"{i.width}x{i.height}" for i in real], [f"{i.width}x{i.height}" for i in fake], " pixels")
        aspects = [np.median([i.width / i.height if i.height else 0.0 for i in c]) for c in (real, fake)]
        if round(aspects[0], 2) != round(aspects[1], 2):
            text += f" (median aspect ratio {aspects[0]:.2f} for real images, {aspects[1]:.2f} for fakes)"
        return text
    if kind == "file_size":
        r, f = np.median([i.size for i in real]), np.median([i.size for i in fake])
        return f"real files have a median size of {_kib(r)}, fakes {_kib(f)}"
    return _contrast([i.mode for i in real], [i.mode for i in fake])


def _align_quality(infos: Sequence[FileInfo], labels: Sequence[int]) -> int:
    """The JPEG quality to align to: the most common one among real JPEGs, else among all."""
    for pool in ([i for i, y in zip(infos, labels) if y == 0], infos):
        qs = [i.quality for i in pool if i.format == "JPEG" and i.quality > 0]
        if qs:
            return Counter(qs).most_common(1)[0][0]
    return DEFAULT_ALIGN_QUALITY


# The groups of features that one piece of advice removes, in the order that breaks ties.
ADVICE_GROUPS = {
    "format": "format and JPEG quality",
    "dimensions": "size and aspect ratio",
    "mode": "colour mode",
    "file_size": "file size",
}


def _advice(feature_auroc: Mapping[str, float], quality: int) -> list[dict[str, Any]]:
    """What to do about each group of features (:data:`ADVICE_GROUPS`) that separates the classes
    on its own (AUROC above :data:`SHORTCUT_THRESHOLD`; the strongest group when none does),
    strongest first, each with its strongest feature and that feature's AUROC alone. File size
    gets advice of its own only when no other group separates the classes."""
    best: dict[str, tuple[float, str]] = {}
    for name, auroc in feature_auroc.items():
        group = _CLAUSE_OF[name]
        if group not in best or auroc > best[group][0]:
            best[group] = (auroc, name)
    order = list(ADVICE_GROUPS)
    ranked = sorted(best, key=lambda g: (-best[g][0], order.index(g)))
    # file size follows from the others (and from content): advice of its own only when they do not lead
    strong = [g for g in ranked if best[g][0] > SHORTCUT_THRESHOLD]
    chosen = [g for g in strong if g != "file_size"] or strong or ranked[:1]
    fixes = {
        "format": f"evaluate format-aligned: train.py/test.py --align_format jpeg:{quality} re-encodes every "
        f"evaluation image (validation and test) as JPEG at quality {quality}, and --align_train the training "
        "images too",
        "dimensions": "give both classes the same sizes: take fixed-size crops rather than resizing "
        "(train.py/test.py --resize_mode crop), since resampling leaves a trace of each image's original size, or "
        "build the data from images of matching sizes",
        "mode": "store both classes in the same colour mode: grayscale or palette images of one class stay "
        "recognisable after decoding to RGB",
        "file_size": "file size follows from format, quality, size and content: compare the classes' histograms "
        "above and align the one that differs",
    }
    return [
        {
            "group": g,
            "feature": best[g][1],
            "auroc": best[g][0],
            "fix": f"{ADVICE_GROUPS[g]} ({FEATURE_WORDS[best[g][1]]} alone: AUROC {best[g][0]:.3f}): {fixes[g]}",
        }
        for g in chosen
    ]


def _audit_by(
    infos: Sequence[FileInfo], labels: Sequence[int], keys: Sequence[str], seed: int
) -> dict[str, dict[str, Any]]:
    """:func:`_audit_one` of the images of each value of ``keys`` (a split, or a PATH) alone."""
    out = {}
    for key in sorted(set(keys), key=_split_order):
        members = [i for i in range(len(infos)) if keys[i] == key]
        members = _subsample(members, labels, AUDIT_MAX_IMAGES, seed)
        one = _audit_one([infos[i] for i in members], [labels[i] for i in members], seed)
        out[key] = {"auroc": one["auroc"], "n_images": one["n_images"], "note": one["note"]}
    return out


def shortcut_audit(
    infos: Sequence[FileInfo],
    labels: Sequence[int],
    splits: Optional[Sequence[str]] = None,
    seed: int = CV_SEED,
    sources: Optional[Sequence[str]] = None,
) -> dict[str, Any]:
    """How well metadata alone separates real from fake (see :data:`FEATURE_WORDS`).

    ``auroc`` is the mean AUROC of a HistGradientBoostingClassifier over a seeded, stratified
    ``CV_FOLDS``-fold split (None, with a ``note``, for one class or too few images);
    ``feature_auroc`` the out-of-fold AUROC of each feature alone, which ranks them; above
    :data:`SHORTCUT_THRESHOLD`, ``warning`` describes the leading features in plain words, each
    class with its own statistics, and ``advice`` says how to evaluate without them, one item
    per group of features, strongest first (``fix`` joins them). With several ``splits``,
    ``by_split`` audits each; with several ``sources`` (the PATHs checked together), ``by_path``.
    """
    idx = _subsample(list(range(len(infos))), labels, AUDIT_MAX_IMAGES, seed)
    sub, sub_y = [infos[i] for i in idx], [labels[i] for i in idx]
    result = _audit_one(sub, sub_y, seed)
    result.update(
        model=f"HistGradientBoostingClassifier, {CV_FOLDS}-fold stratified CV, seed {seed}",
        features=list(FEATURE_WORDS),
        n_readable=len(infos),
        leading=[],
        warning=None,
        advice=[],
        fix=None,
    )
    if splits is not None and len(set(splits)) > 1:
        result["by_split"] = _audit_by(infos, labels, splits, seed)
    if sources is not None and len(set(sources)) > 1:
        result["by_path"] = _audit_by(infos, labels, sources, seed)
    auroc = result["auroc"]
    if auroc is None or auroc <= SHORTCUT_THRESHOLD:
        return result
    ranked = list(result["feature_auroc"].items())
    leading = [name for name, a in ranked if a > SHORTCUT_THRESHOLD][:4] or [ranked[0][0]]
    result["leading"] = leading
    by_class = [[i for i, y in zip(sub, sub_y) if y == c] for c in (0, 1)]
    clauses: list[str] = []
    for name in leading:
        kind = _CLAUSE_OF[name]
        text = _clause(kind, by_class, leading)
        if text not in clauses:
            clauses.append(text)
    words = ", ".join(f"{FEATURE_WORDS[n]} ({result['feature_auroc'][n]:.2f} alone)" for n in leading)
    result["warning"] = (
        f"metadata shortcut: {'; '.join(clauses[:3])}: a detector can reach AUROC {auroc:.2f} without looking at "
        f"pixels (leading features: {words})"
    )
    result["advice"] = _advice(result["feature_auroc"], _align_quality(sub, sub_y))
    result["fix"] = (
        "; ".join(f"{k}. {a['fix']}" for k, a in enumerate(result["advice"], 1))
        + "; better still, build the data so that both classes share format, quality and size"
    )
    return result


# -- the whole check ------------------------------------------------------------------------------


def _missing_path_error(path: str) -> DatasetError:
    return DatasetError(
        f"PATH {path!r} does not exist; give the dataset's root folder, a .json or .csv list, parquet data "
        "or aigbench:demo"
    )


def _load(path: str, layout: str, labels: Optional[dict[str, int]]) -> tuple[list[Sample], list[str], Path]:
    """The samples of one PATH (``a,b`` or ``path@Layout`` sources, as --data_path), the layouts
    used and the root of its last source."""
    samples: list[Sample] = []
    names = []
    root = Path(path)
    for source in (p.strip() for p in path.split(",") if p.strip()):
        src, src_layout = split_layout(source, layout)
        try:
            root = resolve_path(src)
        except DatasetError:
            raise _missing_path_error(src) from None
        name = detect_layout(root, labels) if src_layout == "auto" else src_layout
        part = list(layout_class(name).samples(root, labels))
        if not part:
            raise DatasetError(f"{src} ({name} layout): found no images; check PATH and --layout")
        samples += part
        names.append(name)
    return samples, names, root


def _common_root(roots: Sequence[Path]) -> str:
    """The folder that holds every root (shorter paths in the terminal), or "" when none does."""
    if len(roots) == 1:
        return str(roots[0])
    try:
        return os.path.commonpath([os.path.abspath(r if r.is_dir() else r.parent) for r in roots])
    except ValueError:
        return ""


def check_dataset(
    path: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    layout: str = "auto",
    label_map: Optional[Mapping[str, int]] = None,
    progress: bool = False,
    workers: Optional[int] = None,
    seed: int = CV_SEED,
) -> dict[str, Any]:
    """Check every sample of every split of the dataset at ``path``, or of several datasets
    checked together (a list of PATHs, e.g. the training and the test data); returns the report
    (a JSON-ready dict, described in docs/data_check.md). ``label_map`` is ``--label_map``'s
    ``{name: 0 or 1}`` (:func:`~aigbench.datasets.layouts.parse_label_map`). ``exit_status`` is 1
    when it holds an error, else 0. Errors: test content also in train/ or val/ of one PATH, the
    same content in two PATHs, a PATH (or a split of it) whose readable images are of one class.

    Raises :class:`DatasetError` when a path does not exist, no layout fits it, it holds no
    images, a PATH is given twice, or two PATHs list the same file.
    """
    start = time.perf_counter()
    labels = dict(label_map) if label_map else None
    given = [str(path)] if isinstance(path, (str, os.PathLike)) else [str(p) for p in path]
    if not given:
        raise DatasetError("no PATH given; give a dataset root, a .json or .csv list, parquet data or aigbench:demo")
    twice = [p for p, n in Counter(given).items() if n > 1]
    if twice:
        raise DatasetError(f"PATH {twice[0]!r} is given twice; give each dataset once")
    samples: list[Sample] = []
    owner: list[int] = []
    names: list[str] = []
    roots: list[Path] = []
    first_of: dict[str, int] = {}
    for k, one in enumerate(given):
        part, part_names, root = _load(one, layout, labels)
        for s in part if len(given) > 1 else ():
            real = os.path.realpath(s.path)
            if first_of.setdefault(real, k) != k:
                raise DatasetError(
                    f"PATH {given[first_of[real]]!r} and PATH {one!r} overlap: both list {s.path}; give datasets "
                    "that do not contain each other (e.g. data/train data/test, not data data/test)"
                )
        samples += part
        owner += [k] * len(part)
        names += part_names
        roots.append(root)
    name = "+".join(dict.fromkeys(names))
    infos = _inspect_all([s.path for s in samples], progress, workers)

    problems = [
        {"path": s.path, "problem": i.problem, "detail": i.detail, "split": s.split or NONE, "label": s.label}
        for s, i in zip(samples, infos)
        if i.problem
    ]
    several = len(given) > 1
    if several:
        for p, k in zip(problems, (k for k, i in zip(owner, infos) if i.problem)):
            p["source"] = given[k]
    groups, leaks, conflicts = _duplicates(samples, infos, owner, given)
    good = [k for k, i in enumerate(infos) if not i.problem]
    good_infos = [infos[k] for k in good]
    good_labels = [samples[k].label for k in good]
    metadata = {
        CLASS_NAMES[c]: _metadata([i for i, y in zip(good_infos, good_labels) if y == c])
        for c in (0, 1)
        if c in good_labels
    }
    audit = shortcut_audit(
        good_infos,
        good_labels,
        [samples[k].split or NONE for k in good],
        seed,
        [given[owner[k]] for k in good] if several else None,
    )

    within = _within_split(groups)
    kinds = Counter(p["problem"] for p in problems)
    errors, warns = _messages(leaks, within, conflicts, problems, several)
    errors = _one_class_errors(samples, infos, owner, given) + errors
    if audit["warning"]:
        warns.append(audit["warning"])
    counts = _counts(samples)
    if several:
        counts["by_path"] = {
            p: _class_counts(s.label for s, k in zip(samples, owner) if k == j) for j, p in enumerate(given)
        }
    return {
        "tool": "aigbench data check",
        "aigbench_version": __version__,
        "path": " ".join(given),
        "paths": given,
        "root": _common_root(roots),
        "layout": name,
        "seconds": round(time.perf_counter() - start, 2),
        "n_files": len(samples),
        "counts": counts,
        "problems": problems,
        "problem_counts": {k: kinds[k] for k in PROBLEM_KINDS if kinds[k]},
        "extension_mismatches": _extension_mismatches(samples, infos),
        "duplicates": {
            "groups": groups,
            "n_groups": len(groups),
            "n_redundant_files": sum(len(g["paths"]) - 1 for g in groups),
            "within_split": within,
        },
        "leaks": leaks,
        "label_conflicts": conflicts,
        "metadata": metadata,
        "shortcut_auroc": audit["auroc"],
        "shortcut": audit,
        "errors": errors,
        "warnings": warns,
        "exit_status": 1 if errors else 0,
    }


def _extension_mismatches(samples: Sequence[Sample], infos: Sequence[FileInfo]) -> list[dict[str, str]]:
    """Readable files whose extension names another format than their content (a .png that is a JPEG)."""
    out = []
    for s, i in zip(samples, infos):
        if i.problem or not i.format or ROW_PATH.match(s.path):
            continue
        ext = os.path.splitext(s.path)[1].lower().lstrip(".")
        expected = {"jpg": "JPEG", "jpeg": "JPEG", "jfif": "JPEG", "tif": "TIFF", "pgm": "PPM"}.get(ext, ext.upper())
        if i.format != expected and not (i.format == "MPO" and expected == "JPEG"):
            out.append({"path": s.path, "extension": ext, "format": i.format})
    return out


def _messages(
    leaks: Sequence[Mapping[str, Any]],
    within: Mapping[str, Mapping[str, Any]],
    conflicts: Sequence[Mapping[str, Any]],
    problems: Sequence[Mapping[str, Any]],
    several: bool,
) -> tuple[list[str], list[str]]:
    """The report's errors and warnings about content, one sentence each (the sections list the
    paths). ``several``: several PATHs were checked together."""
    errors: list[str] = []
    warns: list[str] = []
    pairs: dict[tuple[str, str, str], list[Any]] = {}
    for g in leaks:  # sorted: PATH leaks first, then test/train, test/val, train/val
        a, b = g["splits"] if g["kind"] == "split" else g["sources"]
        pairs.setdefault((g["kind"], a, b), [g["severity"], 0])[1] += g["counts"][0]
    for (kind, a, b), (level, n) in pairs.items():
        if kind == "path":
            errors.append(
                f"leak: {n} file(s) in PATH {a} are byte-identical to file(s) in PATH {b}; scores on them measure "
                "memory, not detection: remove them from one side"
            )
            continue
        text = f"leak: {n} file(s) in {a}/ are byte-identical to file(s) in {b}/; "
        if level == "error":
            errors.append(text + "test scores on them measure memory, not detection: remove them from one side")
        else:
            warns.append(text + "validation scores on them are optimistic: remove them from one side")
    for place, v in within.items():
        warns.append(
            f"{v['redundant_files']} duplicate file(s) within {place if several else place + '/'} ({v['groups']} "
            "content(s) stored more than once, listed under DUPLICATES and in --json duplicates.within_split): they "
            "weigh double in training and in metrics; keep one copy of each"
        )
    if conflicts:
        warns.append(f"{len(conflicts)} content(s) are labelled both real and fake: fix their labels")
    if problems:
        kinds = Counter(p["problem"] for p in problems)
        listing = ", ".join(f"{kinds[k]} {k}" for k in PROBLEM_KINDS if kinds[k])
        warns.append(
            f"{len(problems)} problem file(s) ({listing}): training and testing skip or refuse them; fix or remove them"
        )
    return errors, warns


def _one_class_errors(
    samples: Sequence[Sample], infos: Sequence[FileInfo], owner: Sequence[int], given: Sequence[str]
) -> list[str]:
    """An error for each PATH, else for each split of a PATH with several, whose readable images
    are of one class only (or none): no AUROC, AP or balanced accuracy can be computed on it, and
    a detector trained on it learns nothing of the other class."""
    errors = []
    for k, name in enumerate(given):
        members = [i for i in range(len(samples)) if owner[i] == k]
        text = _one_class(f"PATH {name}", [samples[i] for i in members], [infos[i] for i in members])
        if text:
            errors.append(text)
            continue
        splits = sorted({samples[i].split or NONE for i in members}, key=_split_order)
        for sp in splits if len(splits) > 1 else ():
            idx = [i for i in members if (samples[i].split or NONE) == sp]
            text = _one_class(f"PATH {name}, split {sp}/", [samples[i] for i in idx], [infos[i] for i in idx])
            if text:
                errors.append(text)
    return errors


def _one_class(where: str, samples: Sequence[Sample], infos: Sequence[FileInfo]) -> Optional[str]:
    readable = Counter(s.label for s, i in zip(samples, infos) if not i.problem)
    if not readable:
        return f"{where} holds no readable image ({len(samples)} problem file(s)): fix or replace its files"
    if readable[0] and readable[1]:
        return None
    missing = 0 if readable[1] else 1
    have, gone = CLASS_NAMES[1 - missing], CLASS_NAMES[missing]
    listed = sum(s.label == missing for s in samples)
    broken = f" (its {listed} {gone} file(s) are all problem files)" if listed else ""
    return (
        f"one class only: {where} holds {readable[1 - missing]} readable {have} image(s) and no {gone} image "
        f"(label {missing}){broken}; AUROC, AP and accuracy need both classes: add {gone} images, or check that "
        "the folder names or --label_map give your labels (real:0, fake:1) and that --layout fits; a set of one "
        "class that pairs with another is one PATH, joined by a comma (fakes/@FakesOnly,reals/@RealsOnly)"
    )


def _place(split: str, source: Optional[str]) -> str:
    """Where a copy lies, in words: its split, or with several PATHs the PATH (and its split)."""
    if source is None:
        return split
    return source if split == NONE else f"{source} ({split}/)"


def _within_split(groups: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per split (per PATH and split when several PATHs were given): the contents stored more
    than once in it (``groups``), the copies beyond the first (``redundant_files``) and each such
    content with its copies there (``contents``)."""
    out: dict[str, dict[str, Any]] = {}
    for g in groups:
        places = [_place(sp, src) for sp, src in zip(g["splits"], g.get("sources", [None] * len(g["splits"])))]
        for place, n in Counter(places).items():
            if n > 1:
                entry = out.setdefault(place, {"groups": 0, "redundant_files": 0, "contents": []})
                entry["groups"] += 1
                entry["redundant_files"] += n - 1
                entry["contents"].append(
                    {"hash": g["hash"], "paths": [p for p, q in zip(g["paths"], places) if q == place]}
                )
    return {k: out[k] for k in sorted(out, key=_split_order)}


# -- output -------------------------------------------------------------------------------------


def write_report(report: Mapping[str, Any], path: Union[str, os.PathLike]) -> None:
    """Write ``report`` as indented JSON to ``path``, atomically (a temporary file renamed);
    creates the folder; an error names ``--json``."""
    from aigbench.fileio import write_json

    try:
        write_json(path, report)
    except OSError as e:
        raise DatasetError(f"--json: cannot write {path}: {e.strerror or e}; pick a writable path") from None


def _rel(path: str, root: str) -> str:
    """``path`` relative to the dataset root when it lies below it (shorter lines)."""
    base = root if os.path.isdir(root) else os.path.dirname(root)
    try:
        rel = os.path.relpath(path, base)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _shown(items: Sequence[Any]) -> tuple[Sequence[Any], str]:
    more = len(items) - SHOWN_PATHS
    return items[:SHOWN_PATHS], (f"    ... and {more} more (all in --json)" if more > 0 else "")


def _hist_text(rows: Sequence[Mapping[str, Any]], fmt: Any = str) -> str:
    return ", ".join(f"{fmt(r['value'])} {r['percent']:g} %" for r in rows) or "-"


def _quality_text(value: Any) -> str:
    return "not JPEG" if value == -1 else ("other" if value == "other" else f"q{value}")


def format_report(report: Mapping[str, Any]) -> str:
    """The terminal report: a pure function of the JSON report, so both say the same."""
    root = report["root"]
    lines = [
        f"{report['path']} ({report['layout']} layout): {report['n_files']} files checked in {report['seconds']:g} s",
        "",
    ]
    c = report["counts"]
    rows = c["rows"]
    w = [max([len(h)] + [len(str(r[h])) for r in rows]) for h in ("split", "generator", "category")]
    lines.append("COUNTS")
    lines.append(
        f"  {'split':<{w[0]}}  {'generator':<{w[1]}}  {'category':<{w[2]}}  {'real':>7} {'fake':>7} {'total':>7}"
    )
    for r in rows:
        lines.append(
            f"  {r['split']:<{w[0]}}  {r['generator']:<{w[1]}}  {r['category']:<{w[2]}}  "
            f"{r['real']:>7} {r['fake']:>7} {r['total']:>7}"
        )
    if len(rows) > 1:
        for split, v in c["by_split"].items():
            label = f"{split} (all)"
            lines.append(f"  {label:<{w[0] + w[1] + w[2] + 4}}  {v['real']:>7} {v['fake']:>7} {v['total']:>7}")
    t = c["total"]
    lines.append(f"  {'total':<{w[0] + w[1] + w[2] + 4}}  {t['real']:>7} {t['fake']:>7} {t['total']:>7}")
    for k, (p, v) in enumerate(c.get("by_path", {}).items(), 1):
        lines.append(f"  PATH {k}: {v['real']} real, {v['fake']} fake, {v['total']} total  {p}")

    lines += ["", f"PROBLEM FILES: {len(report['problems']) or 'none'}"]
    shown, more = _shown(report["problems"])
    kw = max([len(p["problem"]) for p in shown] or [0])
    for p in shown:
        lines.append(f"  {p['problem']:<{kw}}  {_rel(p['path'], root)}  ({p['detail']})")
    if more:
        lines.append(more)
    if report["extension_mismatches"]:
        m = report["extension_mismatches"]
        lines.append(f"  note: {len(m)} file(s) have an extension that does not match their content, e.g.")
        for e in m[:3]:
            lines.append(f"    {_rel(e['path'], root)} is {e['format']}")

    d = report["duplicates"]
    lines += [
        "",
        f"DUPLICATES (identical bytes): {d['n_groups'] or 'none'}"
        + (f" content(s) stored more than once, {d['n_redundant_files']} redundant file(s)" if d["n_groups"] else ""),
    ]
    several = len(report.get("paths", ())) > 1
    for place, v in d["within_split"].items():
        lines.append(
            f"  within {place if several else place + '/'}: {v['groups']} content(s), "
            f"{v['redundant_files']} redundant file(s)"
        )
    shown, more = _shown(d["groups"])
    for g in shown:
        lines.append("  " + "  ==  ".join(f"{_rel(p, root)}" for p in g["paths"]))
    if more:
        lines.append(more)
    if report["label_conflicts"]:
        lines.append("  labelled both real and fake:")
        for g in report["label_conflicts"][:SHOWN_PATHS]:
            lines.append("    " + "  ==  ".join(_rel(p, root) for p in g["paths"]))
    if report["leaks"]:
        lines += ["", "LEAKS (the same content in two splits, or in two PATHs)"]
        shown, more = _shown(report["leaks"])
        for g in shown:
            tag = "ERROR" if g["severity"] == "error" else "WARNING"
            where = "/".join(g["splits"]) if g["kind"] == "split" else " | ".join(f"PATH {p}" for p in g["sources"])
            lines.append(f"  {tag} {where}: " + "  ==  ".join(_rel(p, root) for p in g["paths"]))
        if more:
            lines.append(more)

    lines += ["", "METADATA per class (readable files; top values)"]
    fields = (
        ("format", "format", str),
        ("jpeg_quality", "JPEG quality", _quality_text),
        ("dimensions", "width x height", str),
        ("mode", "colour mode", str),
        ("file_size", "file size", str),
    )
    for key, title, fmt in fields:
        for i, (cls, meta) in enumerate(report["metadata"].items()):
            extra = ""
            if key == "file_size" and meta["file_size_median"] is not None:
                extra = f"  (median {_kib(meta['file_size_median'])})"
            head = title if i == 0 else ""
            lines.append(f"  {head:<15} {cls:<5} {_hist_text(meta[key], fmt)}{extra}")

    s = report["shortcut"]
    lines += ["", f"SHORTCUT AUDIT (metadata only: {s['model']})"]
    if s["auroc"] is None:
        lines.append(f"  shortcut_auroc: n/a, {s['note']}")
    else:
        lines.append(
            f"  shortcut_auroc {s['auroc']:.3f} (±{s['auroc_std']:.3f} over folds) on {s['n_images']} images "
            f"({s['n_real']} real, {s['n_fake']} fake)"
        )
        lines.append(
            "  AUROC of each feature alone: "
            + ", ".join(f"{FEATURE_WORDS[k]} {v:.2f}" for k, v in s["feature_auroc"].items())
        )
        for where, v in [(f"{k}/", v) for k, v in s.get("by_split", {}).items()] + [
            (f"PATH {k}", v) for k, v in s.get("by_path", {}).items()
        ]:
            value = f"{v['auroc']:.3f}" if v["auroc"] is not None else f"n/a, {v['note']}"
            lines.append(f"  {where} only: {value}")
        if s["warning"]:
            lines.append(f"WARNING: {s['warning']}")
            lines.append("  fix, strongest shortcut first (see docs/data_check.md):")
            for k, a in enumerate(s["advice"], 1):
                lines.append(f"    {k}. {a['fix']}")
            lines.append("    better still, build the data so that both classes share format, quality and size")
        else:
            lines.append(f"  no metadata shortcut (AUROC ≤ {SHORTCUT_THRESHOLD:g})")

    lines.append("")
    for e in report["errors"]:
        lines.append(f"ERROR: {e}")
    for wn in report["warnings"]:
        if wn != s["warning"]:
            lines.append(f"WARNING: {wn}")
    ne, nw = len(report["errors"]), len(report["warnings"])
    lines.append(
        f"result: {ne} error(s), {nw} warning(s); exit status {report['exit_status']}"
        if ne or nw
        else "result: no errors, no warnings"
    )
    return "\n".join(lines)
