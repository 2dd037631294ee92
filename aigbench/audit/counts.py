"""What a dataset holds: counts per split, class, generator and category, and per-class
histograms of the files' metadata (format, JPEG quality, size, colour mode, file size)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable, Optional, Sequence

from aigbench.audit.files import FileInfo
from aigbench.datasets.layouts import Sample

CLASS_NAMES = ("real", "fake")
NONE = "(none)"  # the split, generator or category of samples that have none
TOP_VALUES = 5  # values shown per histogram; the rest are summed as "other"


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


def class_counts(labels: Iterable[int]) -> dict[str, int]:
    c = Counter(labels)
    return {"real": c[0], "fake": c[1], "total": c[0] + c[1]}


def counts_of(samples: Sequence[Sample]) -> dict[str, Any]:
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
        "total": class_counts(s.label for s in samples),
        "by_split": {k: class_counts(v) for k, v in sorted(by["split"].items(), key=lambda kv: split_order(kv[0]))},
        "by_generator": {k: class_counts(v) for k, v in sorted(by["generator"].items())},
        "by_category": {k: class_counts(v) for k, v in sorted(by["category"].items())},
        "rows": [
            {"split": k[0], "generator": k[1], "category": k[2], **class_counts(v)}
            for k, v in sorted(rows.items(), key=lambda kv: (split_order(kv[0][0]), kv[0][1:]))
        ],
    }


def split_order(split: str) -> tuple[int, str]:
    order = {"train": 0, "val": 1, "test": 2}
    return (order.get(split, 3), split)


def metadata_of(infos: Sequence[FileInfo]) -> dict[str, Any]:
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


def kib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n / 1024:.1f} KiB"
