"""What the protocols share: one cell = one training run (your ``train.py``) and one test run
(your ``test.py``) in its own folder, skipped when it is already done, and a matrix of results
written as CSV and heatmap.

Each cell runs your scripts as child processes, so a protocol trains exactly as ``train.py``
does (your model, your flags) and a fix in aigbench reaches it. A cell is finished when its
test results exist; an interrupted cell continues from its last checkpoint (``--resume auto``).

A cell is keyed by everything that changes its result (:func:`cell_key`): the data and test
paths with a fingerprint of their file lists, the layout, the label map, every training flag,
the warm-start checkpoint's sha256 and the aigbench version, written to ``cell_key.json`` before
the cell trains. A rerun whose key differs (``DATA=B`` into the folder of ``DATA=A``) stops and
names what changed; ``--force`` sets the old cells aside (``abandoned/``) and reruns them.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from aigbench.errors import AigbenchError
from aigbench.fileio import atomic_open, read_matrix, set_aside, write_json, write_matrix  # noqa: F401  (matrix files)
from aigbench.metrics import METRIC_NAMES

log = logging.getLogger("aigbench")

TRAIN_DONE = "train_done.json"
CELL_KEY = "cell_key.json"


class ProtocolError(AigbenchError, RuntimeError):
    """A protocol cell whose training or testing failed."""


def protocol_parser(description: str) -> argparse.ArgumentParser:
    """The flags every protocol takes; unknown flags go to ``train.py`` unchanged."""
    p = argparse.ArgumentParser(
        description=description + " Flags not listed here (--model, --epochs, --val_split, ...) go to train.py.",
        allow_abbrev=False,
    )
    p.add_argument("--data_path", required=True, help="multi-generator training data (its train split)")
    p.add_argument("--test_data_path", required=True, help="test data holding every generator (its test split)")
    p.add_argument("--output_dir", required=True, help="protocol folder: one sub-folder per cell, the CSV, the PNG")
    p.add_argument("--metric", default="auroc", choices=list(METRIC_NAMES), help="metric of the matrix")
    p.add_argument("--train_script", default="train.py", help="your training script")
    p.add_argument("--test_script", default="test.py", help="your test script")
    p.add_argument("--layout", default="auto", help="dataset layout of --data_path and --test_data_path")
    p.add_argument("--label_map", default="", help="label names of your data (as train.py)")
    p.add_argument(
        "--force",
        action="store_true",
        help="rerun every cell, setting the earlier ones aside in <output_dir>/abandoned/ (without it, a cell whose "
        "data, flags or version changed stops the protocol with what changed)",
    )
    return p


_FINGERPRINTS: dict[tuple[str, str, str, str], str] = {}


def fingerprint(spec: str, split: str, layout: str, label_map: str) -> str:
    """sha256 of the sorted file list of ``spec``'s ``split`` (every source; a JSON map's every set)."""
    import hashlib

    from aigbench.datasets.layouts import load_samples, parse_label_map, split_layout
    from aigbench.datasets.provenance import file_list_hash
    from aigbench.datasets.sampling import parse_sources
    from aigbench.engine.build import read_test_sets

    key = (spec, split, layout, label_map)
    if key not in _FINGERPRINTS:
        specs = read_test_sets(spec).values() if split == "test" else [spec]
        h = hashlib.sha256()
        for one in specs:
            for source, _ in parse_sources(one):
                path, lay = split_layout(source, layout)
                samples = load_samples(path, split, lay, parse_label_map(label_map))
                h.update(file_list_hash([s.path for s in samples]).encode())
        _FINGERPRINTS[key] = h.hexdigest()
    return _FINGERPRINTS[key]


def cell_key(args: argparse.Namespace, train_flags: Sequence[str], passthrough: Sequence[str]) -> dict[str, Any]:
    """Everything that changes a cell's result (see the module docstring)."""
    from aigbench import __version__
    from aigbench.fileio import file_sha256

    key: dict[str, Any] = {
        "data_path": args.data_path,
        "data_files_sha256": fingerprint(args.data_path, "train", args.layout, args.label_map),
        "test_data_path": args.test_data_path,
        "test_files_sha256": fingerprint(args.test_data_path, "test", args.layout, args.label_map),
        "layout": args.layout,
        "label_map": args.label_map,
        "train_flags": list(train_flags),
        "passthrough": list(passthrough),
        "aigbench_version": __version__,
    }
    flags = list(train_flags) + list(passthrough)
    if "--init_from" in flags:
        warm = flags[flags.index("--init_from") + 1]
        key["init_from_sha256"] = file_sha256(warm) if os.path.isfile(warm) else None
    return key


def check_cell_key(cell: Path, key: Mapping[str, Any], force: bool) -> None:
    """A cell trained under another key: set aside with ``force``, else a :class:`ProtocolError`
    that names what changed."""
    import json

    recorded = None
    for name in (CELL_KEY, TRAIN_DONE):
        if (cell / name).is_file():
            recorded = json.loads((cell / name).read_text(encoding="utf-8")).get("key", {})
            break
    if recorded is None and not any(cell.glob("checkpoint-*.pth")):
        return  # a new cell
    changed = [k for k in key if (recorded or {}).get(k) != key[k]]
    if not changed and not force:
        return
    if force:
        dest = set_aside(cell.parent, [cell], cell.name)
        log.warning("--force: %s set aside in %s; it is trained again", cell, dest)
        return
    what = "; ".join(f"{k}: {(recorded or {}).get(k, '(not recorded)')!r} -> {key[k]!r}" for k in changed)
    raise ProtocolError(
        f"{cell} holds a cell trained with other settings ({what}). Its result would not be this run's: pass "
        "--force to rerun it (the old cell is set aside), or use another --output_dir"
    )


def _run(cmd: Sequence[str], what: str) -> None:
    log.info("%s: %s", what, " ".join(cmd))
    done = subprocess.run(list(cmd), env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode:
        raise ProtocolError(
            f"{what} failed (exit status {done.returncode}): {' '.join(cmd)}; fix it and run the "
            "protocol again: finished cells are kept"
        )


def run_cell(
    cell: Path,
    args: argparse.Namespace,
    train_flags: Sequence[str],
    passthrough: Sequence[str],
) -> Path:
    """Train (unless done) and test (unless done) one cell; returns its test ``metrics.json``."""
    from aigbench.engine.args import read_run_config
    from aigbench.engine.checkpoint import pick_checkpoint
    from aigbench.evaluation.evaluate import result_folder
    from aigbench.fileio import stale_result

    name = test_set_name(args.test_data_path)
    key = cell_key(args, train_flags, passthrough)
    if cell.is_dir():
        check_cell_key(cell, key, getattr(args, "force", False))
    cell.mkdir(parents=True, exist_ok=True)
    common = ["--layout", args.layout] + (["--label_map", args.label_map] if args.label_map else [])
    done = cell / TRAIN_DONE
    if not done.is_file():
        write_json(cell / CELL_KEY, {"key": key})
        _run(
            [
                sys.executable,
                args.train_script,
                "--data_path",
                args.data_path,
                "--test_data_path",
                args.test_data_path,
                "--output_dir",
                str(cell),
                "--resume",
                "auto",
                "--no_progress",
                *common,
                *train_flags,
                *passthrough,
            ],
            f"train {cell.name}",
        )
        write_json(cell / TRAIN_DONE, {"key": key})
    ckpt = pick_checkpoint(cell, "")
    metrics = cell / "test" / ckpt.stem / result_folder(name, read_run_config(str(cell))) / "metrics.json"
    if not metrics.is_file() or stale_result(metrics):  # a result of an earlier checkpoint is tested again
        _run(
            [
                sys.executable,
                args.test_script,
                "--output_dir",
                str(cell),
                "--test_data_json",
                args.test_data_path,
                "--checkpoint",
                ckpt.name,
                "--no_progress",
                *common,
            ],
            f"test {cell.name}",
        )
    return metrics


def test_set_name(path: str) -> str:
    """The name test.py gives a single test dataset (its folder or file name)."""
    from aigbench.engine.build import read_test_sets

    sets = read_test_sets(path)
    if len(sets) != 1:
        raise ProtocolError(f"--test_data_path {path}: give one test dataset (a folder or list), not {len(sets)}")
    return next(iter(sets))


def read_predictions(path: Union[str, os.PathLike]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, scores and generators of a ``predictions.csv``."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return (
        np.array([float(r["label"]) for r in rows]),
        np.array([float(r["score"]) for r in rows]),
        np.array([r.get("generator", "") for r in rows], dtype=object),
    )


def save_heatmap(
    png: Union[str, os.PathLike],
    matrix: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    title: str,
    xlabel: str,
    ylabel: str,
) -> None:
    from aigbench.reports.plots import heatmap, save_png

    save_png(heatmap(matrix, rows, cols, title, xlabel, ylabel), png)


def metric_of(results: Mapping[str, Any], metric: str) -> float:
    v = results.get(metric)
    return math.nan if v is None else float(v)
