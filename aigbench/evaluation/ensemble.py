"""``bench ensemble RUN [RUN ...]``: average the scores of several runs on the same test images.

Each run contributes the ``predictions.csv`` of its tested checkpoint (``test/checkpoint-best``,
else its latest tested epoch) for every test set that all the runs have. The images must be
the same in every run (matched by path); the ensemble's score of an image is the mean (or
median) of the runs' scores, and its metrics are computed exactly as a test run's
(:func:`~aigbench.evaluation.evaluate.score_arrays`), with optional bootstrap intervals.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from aigbench.errors import ConfigError
from aigbench.fileio import atomic_open, write_json

log = logging.getLogger("aigbench")

METHODS = ("mean", "median")


def _read(path: Path) -> dict[tuple[str, int], tuple[float, float, str, str]]:
    """Rows of a ``predictions.csv`` by ``(path, occurrence)``: a file listed twice in a test set
    (a list layout may) keeps both rows, as the run scored both."""
    seen: dict[str, int] = {}
    out = {}
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            n = seen[r["path"]] = seen.get(r["path"], -1) + 1
            out[(r["path"], n)] = (float(r["label"]), float(r["score"]), r.get("generator", ""), r.get("category", ""))
    return out


def ensemble_runs(
    run_dirs: Sequence[Union[str, os.PathLike]],
    out: Union[str, os.PathLike],
    method: str = "mean",
    threshold: float = 0.5,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Write ``<out>/<dataset>/metrics.json`` and ``predictions.csv`` of the ensemble and
    ``<out>/ensemble.csv`` (each run's and the ensemble's accuracy, AUROC and AP per test set);
    returns ``{dataset: result}``."""
    from aigbench.evaluation.evaluate import format_score, score_arrays
    from aigbench.metrics import compute_metrics
    from aigbench.reports.report import load_run

    if method not in METHODS:
        raise ConfigError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if len(run_dirs) < 2:
        raise ConfigError("bench ensemble needs two runs or more")
    runs = [load_run(p) for p in run_dirs]
    common = sorted(set.intersection(*(set(r.datasets) for r in runs)))
    if not common:
        raise ConfigError("the runs share no tested dataset; run test.py on the same test sets in each run first")
    out_dir = Path(out)
    results: dict[str, dict[str, Any]] = {}
    table = []
    for name in common:
        preds = [_read(r.path / "test" / r.checkpoint / name / "predictions.csv") for r in runs]
        paths = sorted(preds[0])
        repeated = sum(1 for _, n in paths if n == 1)
        if repeated:
            log.info("test set %r: %d file(s) are listed more than once; every row is kept, as each run scored it",
                     name, repeated)  # fmt: skip
        for r, p in zip(runs, preds):
            if set(p) != set(paths):
                raise ConfigError(
                    f"test set {name!r}: run {r.path} scored {len(p)} images, {runs[0].path} {len(paths)}; "
                    f"{len(set(p) ^ set(paths))} differ. An ensemble needs the same images in every run"
                )
        labels = np.array([preds[0][k][0] for k in paths])
        for r, p in zip(runs, preds):
            if not np.array_equal(labels, [p[k][0] for k in paths]):
                raise ConfigError(f"test set {name!r}: run {r.path} has other labels for the same images")
        each = np.array([[p[k][1] for k in paths] for p in preds], dtype=np.float64)
        scores = (each.mean(axis=0) if method == "mean" else np.median(each, axis=0)).astype(np.float32)
        gens = [preds[0][k][2] for k in paths]
        result = {
            "dataset": name,
            "ensemble": {
                "method": method,
                "runs": [str(r.path) for r in runs],
                "checkpoints": [r.checkpoint for r in runs],
            },
            **score_arrays(labels, scores, gens, threshold, bootstrap=bootstrap, seed=seed),
        }
        results[name] = result
        write_json(out_dir / name / "metrics.json", result)
        with atomic_open(out_dir / name / "predictions.csv") as f:
            w = csv.writer(f)
            w.writerow(["path", "label", "score", "generator", "category"])
            for k, y, s in zip(paths, labels, scores):
                w.writerow([k[0], int(y), format_score(s), preds[0][k][2], preds[0][k][3]])
        for r, row in zip(runs, each):
            m = compute_metrics(labels, row, threshold)
            table.append({"dataset": name, "run": str(r.path), **{k: m[k] for k in ("accuracy", "auroc", "ap")}})
        table.append(
            {
                "dataset": name,
                "run": f"ensemble ({method} of {len(runs)})",
                **{k: result["metrics"][k] for k in ("accuracy", "auroc", "ap")},
            }
        )
    with atomic_open(out_dir / "ensemble.csv") as f:
        w = csv.DictWriter(f, fieldnames=["dataset", "run", "accuracy", "auroc", "ap"])
        w.writeheader()
        w.writerows(table)
    return results


def ensemble_table(results_csv: Union[str, os.PathLike]) -> str:
    """The terminal table of ``ensemble.csv``."""
    with open(results_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    lines = [f"{'dataset':<16}{'run':<48}{'accuracy':>10}{'auroc':>10}{'ap':>10}"]
    for r in rows:
        vals = "".join(
            f"{float(r[k]):>10.4f}" if r[k] not in ("", "nan") else f"{'n/a':>10}" for k in ("accuracy", "auroc", "ap")
        )
        lines.append(f"{r['dataset'][:15]:<16}{r['run'][-47:]:<48}{vals}")
    return "\n".join(lines)
