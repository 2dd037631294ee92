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
from aigbench.fileio import atomic_open, clean_float, write_json
from aigbench.metrics.calibration import bootstrap_ci

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
            ci = bootstrap_ci(labels, row, threshold, bootstrap, seed) if bootstrap > 0 else None
            table.append(_table_row(name, str(r.path), m, ci))
        table.append(_table_row(name, f"ensemble ({method} of {len(runs)})", result["metrics"], result.get("ci")))
    columns = ["dataset", "run", *TABLE_METRICS]
    if bootstrap > 0:
        columns += [f"{k}_ci_{side}" for k in TABLE_METRICS for side in ("low", "high")]
    with atomic_open(out_dir / "ensemble.csv") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(table)
    return results


TABLE_METRICS = ("accuracy", "auroc", "ap")


def _table_row(dataset: str, run: str, metrics: dict[str, Any], ci: Any) -> dict[str, Any]:
    """An ``ensemble.csv`` row: metrics to six significant digits (as metrics.json), and the
    bootstrap CIs when there are some."""
    row: dict[str, Any] = {"dataset": dataset, "run": run}
    row.update({k: _clean(metrics[k]) for k in TABLE_METRICS})
    for k in TABLE_METRICS if ci else ():
        row[f"{k}_ci_low"], row[f"{k}_ci_high"] = _clean(ci[k]["low"]), _clean(ci[k]["high"])
    return row


def _clean(value: Any) -> Any:
    v = float(value)
    return clean_float(v) if np.isfinite(v) else "nan"


def ensemble_table(results_csv: Union[str, os.PathLike]) -> str:
    """The terminal table of ``ensemble.csv``."""
    with open(results_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with_ci = bool(rows) and "auroc_ci_low" in rows[0]
    width = 24 if with_ci else 10
    lines = [f"{'dataset':<16}{'run':<48}" + "".join(f"{k:>{width}}" for k in TABLE_METRICS)]
    for r in rows:
        cells = []
        for k in TABLE_METRICS:
            if r[k] in ("", "nan"):
                cells.append(f"{'n/a':>{width}}")
            elif with_ci and r.get(f"{k}_ci_low") not in (None, "", "nan"):
                ci = f"{float(r[k]):.4f} [{float(r[f'{k}_ci_low']):.3f}, {float(r[f'{k}_ci_high']):.3f}]"
                cells.append(f"{ci:>{width}}")
            else:
                cells.append(f"{float(r[k]):>{width}.4f}")
        lines.append(f"{r['dataset'][:15]:<16}{r['run'][-47:]:<48}" + "".join(cells))
    if with_ci:
        lines.append("brackets: 95 % bootstrap confidence intervals (--bootstrap replicates, --seed)")
    return "\n".join(lines)
