"""Plain output files without torch: JSON with no float noise, atomic text writes.

Used by the training engine and by torch-free tools (``bench data check``) alike.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence, TextIO, Union

import numpy as np

SIGNIFICANT_DIGITS = 6


def clean_float(value: float) -> float:
    """``value`` to ``SIGNIFICANT_DIGITS`` significant digits: ``0.6799999999999999`` → ``0.68``.

    Metrics are ratios of counts or areas under curves; six significant digits hold more than
    any test set of under a million images can resolve. Scores keep full precision elsewhere
    (``predictions.csv``).
    """
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


# Values that must keep full precision: a threshold is compared with float32 scores, and a
# rounded one would move images to the other side of it.
EXACT_KEYS = frozenset({"threshold", "val_threshold"})


def to_jsonable(obj: Any, exact: bool = False) -> Any:
    """NaN/inf → None, numpy/torch scalars → Python, floats without noise (:func:`clean_float`,
    except under :data:`EXACT_KEYS`), so files are strict, readable JSON."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v, exact or k in EXACT_KEYS) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, exact) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy and torch scalars
        obj = obj.item()
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        return obj if exact else clean_float(obj)
    return obj


@contextlib.contextmanager
def atomic_open(path: Union[str, os.PathLike]) -> Iterator[TextIO]:
    """Open a text file for writing that appears at ``path`` only once complete (temp file +
    rename); on an error the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Union[str, os.PathLike], obj: Any) -> None:
    with atomic_open(path) as f:
        f.write(json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def file_stem(text: str, default: str = "file", limit: Optional[int] = 60) -> str:
    """``text`` as a file name: runs of characters other than letters, digits and ``_ . -``
    become ``_``, at most ``limit`` characters (None: any length); ``default`` when nothing is left."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:limit] or default


def read_jsonl(path: Union[str, os.PathLike]) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (``log.jsonl``), ``[]`` when it does not exist. A line that
    does not parse (cut by a kill, or being written by another process right now) is left out:
    its record is written again, or complete at the next read."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def set_aside(
    out: Union[str, os.PathLike], paths: Sequence[Path], tag: str, under: str = "abandoned"
) -> Optional[Path]:
    """Move the existing ``paths`` (each below ``out``, keeping its place there) into a new
    ``out/<under>/<tag>[-k]/``, which it returns (None when none exists). Nothing is deleted, and
    nothing leaves ``out``."""
    import shutil

    out = Path(out)
    paths = [p for p in paths if p.exists()]
    if not paths:
        return None
    dest = out / under / tag
    k = 1
    while dest.exists():
        k += 1
        dest = out / under / f"{tag}-{k}"
    for p in paths:
        target = dest / p.relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(p), str(target))
    return dest


_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256: each file hashed once


def file_sha256(path: Union[str, os.PathLike]) -> str:
    """sha256 of a file (remembered per path, size and modification time)."""
    import hashlib

    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def stale_result(metrics_path: Union[str, os.PathLike]) -> Union[str, None]:
    """None when a ``metrics.json`` was computed from the checkpoint file that is there now (or
    records none); else why it is stale: the checkpoint changed since (a later epoch became best,
    a branch replaced it) or is gone."""
    data = json.loads(Path(metrics_path).read_text(encoding="utf-8"))
    ckpt = (data.get("provenance") or {}).get("checkpoint") or {}
    if not ckpt.get("sha256") or not ckpt.get("file"):
        return None
    if not Path(ckpt["file"]).is_file():
        return f"{metrics_path}: its checkpoint {ckpt['file']} is gone; test the run again (python test.py ...)"
    if file_sha256(ckpt["file"]) != ckpt["sha256"]:
        return (
            f"{metrics_path} was computed from an earlier {Path(ckpt['file']).name} (the file has changed since, e.g. "
            "a later epoch became best); test the run again (python test.py ...)"
        )
    return None


def write_matrix(
    path: Union[str, os.PathLike],
    row_names: Sequence[str],
    col_names: Sequence[str],
    matrix: np.ndarray,
    corner: str,
    extra_cols: Optional[Mapping[str, Sequence[float]]] = None,
) -> None:
    """A CSV whose first column names the rows (header ``corner``), then one column per entry."""
    extra = dict(extra_cols or {})
    with atomic_open(path) as f:
        w = csv.writer(f)
        w.writerow([corner, *col_names, *extra])
        for i, r in enumerate(row_names):
            vals = [*matrix[i], *(v[i] for v in extra.values())]
            w.writerow([r, *("" if not math.isfinite(float(v)) else f"{float(v):.6g}" for v in vals)])


def read_matrix(path: Union[str, os.PathLike]) -> tuple[str, list[str], list[str], np.ndarray]:
    """``(corner, rows, columns, values)`` of a CSV written by :func:`write_matrix`."""
    with open(path, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    head, body = table[0], table[1:]
    values = np.array([[float(v) if v else math.nan for v in r[1:]] for r in body], dtype=float)
    return head[0], [r[0] for r in body], head[1:], values


def read_suite_results(run: Union[str, os.PathLike]) -> dict[str, dict[str, Any]]:
    """``{suite: metrics.json}`` of a run's ``bench eval`` results (``RUN/suites/<suite>/``), those
    whose checkpoint changed since (:func:`stale_result`) left out with a warning."""
    import logging

    out = {}
    for p in sorted((Path(run) / "suites").glob("*/metrics.json")):
        reason = stale_result(p)
        if reason:
            logging.getLogger("aigbench").warning("left out: %s", reason)
            continue
        out[p.parent.name] = json.loads(p.read_text(encoding="utf-8"))
    return out
