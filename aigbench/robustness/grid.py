"""Run one loaded model over a grid of perturbations and strengths.

The model and the sample lists are built once; each grid point evaluates its own *view* of
the data (the same samples through a new transform that applies the point's perturbation),
so nothing shared is changed and loader workers always see the right transform. The clean
point is evaluated once and shared by every perturbation that lists it.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch.utils.data import DataLoader

from aigbench.datasets.dataset import evaluation_view, loader_batch_size, multi_view_loader
from aigbench.engine.amp import AmpPolicy
from aigbench.engine.dist import DistContext
from aigbench.engine.loggers import RunLogger, atomic_open, fmt_metric, inside, safe_name, to_jsonable, write_json
from aigbench.engine.loop import Predictions, predict_views
from aigbench.errors import ConfigError
from aigbench.evaluation.evaluate import DEFAULT_MAX_SKIP_RATIO, evaluate_datasets, record_predictions
from aigbench.imageops.perturbations import CHAIN_SEP, Chain, Perturbation
from aigbench.metrics import METRIC_NAMES
from aigbench.registry import PERTURBATIONS

log = logging.getLogger("aigbench")

CSV_COLUMNS = [
    "checkpoint",
    "dataset",
    "generator",
    "perturbation",
    "param",
    "strength",
    "unit",
    "stage",
    "clean",
    *METRIC_NAMES,
    "threshold",
    "n",
    "n_real",
    "n_fake",
]


def build_grid(grid: Mapping[str, Sequence[float]], seed: int = 0) -> list[Perturbation]:
    """Instantiate every (perturbation, strength) point; bad names or strengths fail up front
    with a :class:`ConfigError` that names the GRID entry. A point's name is its GRID key."""
    points = []
    for name, strengths in grid.items():
        chain = CHAIN_SEP in name
        if not chain:
            safe_name(name, "GRID in test_robust.py: a perturbation name")
        if not isinstance(strengths, (list, tuple)) or not strengths:
            raise ConfigError(f"GRID in test_robust.py: {name!r} must list its strengths, e.g. [0, 1, 2]")
        for s in strengths:
            try:
                if chain:
                    point = Chain(name, s, seed=seed)
                else:
                    point = PERTURBATIONS.get(name)(s, seed=seed)  # a user's __init__ may take no name
                    point.name = name
            except KeyError as e:
                raise ConfigError(f"GRID in test_robust.py: {e.args[0]}") from None
            except (TypeError, ValueError) as e:
                raise ConfigError(f"GRID in test_robust.py: {name!r} strength {s!r}: {e}") from None
            points.append(point)  # the GRID key names the results
    return points


def run_grid(
    model: torch.nn.Module,
    loaders: Mapping[str, DataLoader],
    grid: Mapping[str, Sequence[float]],
    ctx: DistContext,
    output_dir: Union[str, os.PathLike],
    checkpoint: str = "",
    stage: str = "before_resize",
    amp: Union[bool, AmpPolicy] = False,
    logger: Optional[RunLogger] = None,
    seed: int = 0,
    max_skip_ratio: float = DEFAULT_MAX_SKIP_RATIO,
    show_progress: bool = True,
    threshold: float = 0.5,
    one_pass: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate every grid point; write ``<output_dir>/<perturbation>/<param>_<s>/<dataset>/``
    results and ``<output_dir>/robustness.csv`` (a row per dataset and per generator of each
    point; accuracy at ``threshold``). With ``logger``, TensorBoard gets the scalars and one
    figure per perturbation. Returns the CSV rows. Nothing is written outside ``output_dir``.

    ``one_pass`` (the default) decodes each image once per sweep and prepares every point's
    version of it from that decode (:func:`predict_grid`); results equal those of one pass per
    point, which is what runs when images keep their own sizes (``--eval_crop full``).
    """
    for name, ld in loaders.items():
        fixed = getattr(ld.dataset.transform, "perturbation", None)
        if fixed is not None:
            raise ConfigError(
                f"test set {name!r} is already perturbed by --eval_perturb {fixed.name!r}; a robustness sweep "
                f"replaces the perturbation: leave --eval_perturb out (pass --eval_perturb '') and put the chain in "
                "GRID instead"
            )
    points = build_grid(grid, seed)
    out_root = Path(output_dir)
    for p in points:
        inside(out_root, p.folder, f"GRID entry {p.name!r}")
    one_pass = one_pass and all(ld.dataset.transform.resize_mode != "none" for ld in loaders.values())
    swept = predict_grid(model, loaders, points, stage, ctx, show_progress) if one_pass else {}
    rows: list[dict[str, Any]] = []
    clean_results: Optional[dict[str, Any]] = None
    for i, p in enumerate(points):
        if ctx.is_main:
            log.info("[%d/%d grid points] %s (%s)%s", i + 1, len(points), p, p.unit, " clean" if p.is_clean else "")
        extra = {
            "checkpoint": checkpoint,
            "perturbation": p.name,
            "param": p.param,
            "strength": p.strength,
            "unit": p.unit,
            "stage": stage,
            "clean": p.is_clean,
        }
        if p.is_clean and clean_results is not None:
            results = {k: {**v, **extra} for k, v in clean_results.items()}
            if ctx.is_main:
                for name, r in results.items():
                    write_json(out_root / p.folder / name / "metrics.json", r)
        elif one_pass:
            results = {
                name: record_predictions(
                    name,
                    swept[(name, _view_key(i, p))],
                    ld,
                    ctx,
                    out_root / p.folder,
                    extra=extra,
                    max_skip_ratio=max_skip_ratio,
                    threshold=threshold,
                )
                for name, ld in loaders.items()
            }
            if p.is_clean:
                clean_results = results
        else:
            views = {
                name: evaluation_view(ld, ld.dataset.transform.with_perturbation(None if p.is_clean else p, stage))
                for name, ld in loaders.items()
            }
            results = evaluate_datasets(
                model,
                views,
                ctx,
                out_root / p.folder,
                extra=extra,
                amp=amp,
                max_skip_ratio=max_skip_ratio,
                show_progress=show_progress,
                threshold=threshold,
            )
            if p.is_clean:
                clean_results = results
        for name, r in results.items():
            rows.append(_row(extra, name, "", r["metrics"]))
            rows.extend(_row(extra, name, gen, m) for gen, m in r.get("per_generator", {}).items())
            if logger is not None:
                logger.scalars(
                    f"robustness/{name}/{p.name}_{p.param}" + (f"_x{p.tb_step_scale}" if p.tb_step_scale != 1 else ""),
                    r["metrics"],
                    int(round(p.strength * p.tb_step_scale)),
                )
    if ctx.is_main:
        write_rows_csv(out_root / "robustness.csv", rows)
        if logger is not None:
            from aigbench.reports.plots import robustness_figures

            for perturbation, fig in robustness_figures(rows).items():
                logger.figure(f"robustness_figure/{perturbation}", fig)
    return rows


VIEW_BUDGET_BYTES = 512 * 2**20  # uint8 pixels of one batch, all of its views together


def _view_key(i: int, p: Perturbation) -> Union[int, str]:
    return "clean" if p.is_clean else i


def predict_grid(
    model: torch.nn.Module,
    loaders: Mapping[str, DataLoader],
    points: Sequence[Perturbation],
    stage: str,
    ctx: DistContext,
    show_progress: bool = True,
) -> dict[tuple[str, Union[int, str]], Predictions]:
    """Predictions of every dataset at every grid point, decoding each image once: a batch
    carries all the points' versions of its images (the clean one once), as many points at a
    time as fit :data:`VIEW_BUDGET_BYTES`. Keys: ``(dataset, point index)``, ``(dataset, "clean")``."""
    keys: list[Union[int, str]] = []
    perturbations: list[Optional[Perturbation]] = []
    for i, p in enumerate(points):
        if _view_key(i, p) not in keys:
            keys.append(_view_key(i, p))
            perturbations.append(None if p.is_clean else p)
    out: dict[tuple[str, Union[int, str]], Predictions] = {}
    for name, ld in loaders.items():
        tr = ld.dataset.transform
        per_view = loader_batch_size(ld) * tr.image_size**2 * 3 * max(1, tr.crops)
        in_flight = 2 * ld.num_workers + 1  # prefetched batches (prefetch_factor 2 per worker) and the current one
        group = max(1, VIEW_BUDGET_BYTES // max(per_view * in_flight, 1))
        if ctx.is_main:
            shared = len(points) - len(keys)
            log.info(
                "%s: %d grid point(s), clean ones included, from one decode of each image: %d distinct view(s)%s",
                name,
                len(points),
                len(keys),
                f" (the clean point is scored once for {shared + 1} perturbations)" if shared else "",
            )
        for start in range(0, len(keys), group):
            views = [tr.with_perturbation(p, stage) for p in perturbations[start : start + group]]
            preds = predict_views(
                model, multi_view_loader(ld, views), ctx, len(views), f"sweep {name}", show_progress=show_progress
            )
            out.update({(name, k): pr for k, pr in zip(keys[start : start + group], preds)})
    return out


def _row(extra: Mapping[str, Any], dataset: str, generator: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A robustness.csv row: a whole dataset (generator ``""``) or one of its generators."""
    return {**extra, "dataset": dataset, "generator": generator, **{k: metrics[k] for k in CSV_COLUMNS if k in metrics}}


def write_rows_csv(path: Union[str, os.PathLike], rows: Sequence[Mapping[str, Any]]) -> None:
    with atomic_open(path) as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in to_jsonable(dict(r)).items()})


def log_grid(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = ("accuracy", "auroc", "ap")) -> None:
    """A small text table of the sweep on the terminal."""
    head = f"{'dataset':<14}{'perturbation':<14}{'strength':>9}  " + "".join(f"{m:>10}" for m in metrics)
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.get("generator"):
            continue  # per-generator rows are in robustness.csv
        vals = "".join(f"{fmt_metric(r.get(m)):>10}" for m in metrics)
        lines.append(f"{r['dataset'][:13]:<14}{r['perturbation'] + '/' + r['param']:<14}{r['strength']:>9g}  {vals}")
    log.info("\n".join(lines))
