"""What a result file says about the data it was computed on (``metrics.json`` → ``provenance``).

A reviewer who reads a number needs to know which images produced it: the path given, the
layout detected, the split asked for and the folders actually read (with a note when, for
example, ``val/`` stood in for a test set that the data does not ship), the counts per
generator and class, and a hash of the sorted file list, which changes whenever the set of
files does.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict
from typing import Any, Optional, Sequence

from aigbench.datasets.layouts import Sample

MAX_FOLDERS = 100  # folders listed in a record; the count is always there


def file_list_hash(paths: Sequence[str]) -> str:
    """sha256 of the sorted absolute paths, one per line."""
    text = "\n".join(sorted(os.path.abspath(p) for p in paths))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_notes(split: Optional[str], samples: Sequence[Sample], layout: str) -> list[str]:
    """What a reader should know about the split that was read."""
    read = sorted({s.split for s in samples})
    if not split:
        return []
    if split == "test" and read == ["val"]:
        return [f"val/ used as the test set: the data ({layout} layout) ships no test/ split"]
    if read == [""]:
        return [f"the data has no train/val/test folders: all of it is the {split} data"]
    return []


def data_provenance(spec: str, split: Optional[str], samples: Sequence[Sample], layouts: Sequence[str]) -> dict:
    """The ``data`` block of a result's provenance, for ``samples`` read from ``spec``."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"real": 0, "fake": 0})
    for (gen, label), n in Counter((s.generator or "(none)", s.label) for s in samples).items():
        counts[gen]["fake" if label == 1 else "real"] += n
    folders = sorted({os.path.dirname(os.path.abspath(s.path)) for s in samples})
    layout = ", ".join(dict.fromkeys(layouts))
    return {
        "path": spec,
        "layout": layout,
        "split_requested": split,
        "splits_read": sorted({s.split or "(none)" for s in samples}),
        "notes": split_notes(split, samples, layout),
        "n": len(samples),
        "counts": dict(sorted(counts.items())),
        "n_folders": len(folders),
        "folders": folders[:MAX_FOLDERS],
        "file_list_sha256": file_list_hash([s.path for s in samples]),
    }


def preprocess_record(transform: Any) -> dict[str, Any]:
    """The preprocessing that an :class:`~aigbench.datasets.transforms.ImageTransform` applies."""
    norm = getattr(transform, "normalizer", None)
    return {
        "input_size": getattr(transform, "image_size", None),
        "resize_mode": getattr(transform, "resize_mode", None),
        "crop": getattr(transform, "crop_name", None),
        "interpolation": getattr(transform, "interpolation", None),
        "crop_pct": getattr(transform, "crop_pct", None),
        "pad_mode": getattr(transform, "pad_mode", None),
        "mean": list(norm.mean) if norm is not None else None,
        "std": list(norm.std) if norm is not None else None,
        "library": "Pillow resampling and torchvision's crop rules (aigbench.imageops.geometry)",
    }
