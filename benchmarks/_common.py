"""Helpers shared by the benchmarks: the CIFAKE subset and robust summaries of noisy timings."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path(os.environ.get("AIGBENCH_CIFAKE", REPO.parent / "shared" / "data" / "cifake-mini"))


def write_subset(data: Path, split: str, n_images: int, out: Path) -> Path:
    """A JSON-list dataset with the first n/2 REAL and n/2 FAKE images of ``split``."""
    items = []
    for cls, label in (("REAL", 0), ("FAKE", 1)):
        folder = data / split / cls
        if not folder.is_dir():
            raise SystemExit(f"{folder} not found: pass --data pointing at cifake-mini")
        items += [[str(folder / f), label] for f in sorted(os.listdir(folder))[: n_images // 2]]
    out.write_text(json.dumps(items))
    return out


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):9.1f}  (runs: {', '.join(f'{v:.1f}' for v in values)})"
