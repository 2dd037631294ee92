"""Evaluate a model on named datasets and write ``metrics.json`` + ``predictions.csv``."""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch
from torch.utils.data import DataLoader

from aigbench.engine.dist import DistContext
from aigbench.engine.loggers import RunLogger, atomic_open, labelled_grid, write_json
from aigbench.engine.loop import Predictions, predict
from aigbench.metrics import compute_metrics, per_generator_metrics

log = logging.getLogger("aigbench")


def score_predictions(preds: Predictions, loader: DataLoader, threshold: float = 0.5) -> dict[str, Any]:
    """Metrics and per-generator breakdown of gathered predictions."""
    samples = loader.dataset.samples
    generators = [samples[i].generator for i in preds.index]
    return {
        "metrics": compute_metrics(preds.label, preds.score, threshold),
        "per_generator": per_generator_metrics(preds.label, preds.score, generators, threshold),
        "n_skipped": len(preds.skipped),
        "skipped": preds.skipped,
    }


def write_predictions(path: Union[str, os.PathLike], preds: Predictions, loader: DataLoader) -> None:
    """CSV with columns path, label, score, generator (one row per image)."""
    samples = loader.dataset.samples
    with atomic_open(path) as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "score", "generator"])
        for i, y, s in zip(preds.index, preds.label, preds.score):
            w.writerow([samples[i].path, int(y), f"{float(s):.6g}", samples[i].generator])


def evaluate_datasets(
    model: torch.nn.Module,
    loaders: Mapping[str, DataLoader],
    ctx: DistContext,
    results_dir: Optional[Union[str, os.PathLike]] = None,
    logger: Optional[RunLogger] = None,
    step: int = 0,
    amp: bool = False,
    extra: Optional[Mapping[str, Any]] = None,
    log_images: bool = True,
) -> dict[str, dict[str, Any]]:
    """Evaluate on every loader; returns ``{dataset: {"metrics", "per_generator", ...}}``.

    With ``results_dir`` the main process writes ``<results_dir>/<dataset>/metrics.json`` and
    ``predictions.csv``. With ``logger`` it logs ``test/<dataset>/<metric>`` scalars, the
    model's ``visual_image`` tensors and a captioned grid of inputs.
    """
    results = {}
    for name, loader in loaders.items():
        preds = predict(model, loader, ctx, amp=amp, desc=f"test {name}")
        result = score_predictions(preds, loader)
        result = {"dataset": name, **dict(extra or {}), **result}
        results[name] = result
        if not ctx.is_main:
            continue
        if results_dir is not None:
            out = Path(results_dir) / name
            write_json(out / "metrics.json", result)
            write_predictions(out / "predictions.csv", preds, loader)
        if logger is not None:
            logger.scalars(f"test/{name}", result["metrics"], step)
            for gen, m in result["per_generator"].items():
                logger.scalars(f"test_per_generator/{name}/{gen}", m, step)
            if log_images and preds.first_batch is not None:
                log_batch_images(logger, f"test/{name}", preds.first_batch, loader, step)
        if preds.skipped:
            log.warning("%s: skipped %d undecodable file(s)", name, len(preds.skipped))
    return results


def log_batch_images(
    logger: RunLogger, prefix: str, first_batch: Mapping[str, Any], loader: DataLoader, step: int
) -> None:
    """The model's ``visual_image`` dict and a captioned grid of the inputs."""
    logger.images(f"{prefix}/visual_image", first_batch["visual_image"], step)
    denorm = loader.dataset.transform.normalizer.denormalize(first_batch["image"].float())
    grid = labelled_grid(denorm, first_batch["label"].tolist(), first_batch["score"].tolist())
    logger.image(f"{prefix}/inputs_label_score", grid, step)


def mean_metric(results: Mapping[str, Mapping[str, Any]], metric: str) -> float:
    """Average of one metric across datasets (NaN when none has it)."""
    vals = [r["metrics"].get(metric) for r in results.values()]
    vals = [float(v) for v in vals if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def log_results(checkpoint_name: str, results: Mapping[str, Mapping[str, Any]]) -> None:
    """One terminal line per dataset with the headline metrics."""
    for name, r in results.items():
        m = r["metrics"]
        shown = " ".join(
            f"{k} {m[k]:.4f}" for k in ("accuracy", "balanced_acc", "auroc", "ap", "f1") if m.get(k) == m.get(k)
        )
        log.info("%s | %s | %s (n=%d)", checkpoint_name, name, shown, m["n"])
