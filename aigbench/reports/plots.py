"""The report's plots, as matplotlib ``Figure`` objects (no pyplot state, no display needed).

Each function takes plain data (lists of dicts read from ``log.jsonl``, ``robustness.csv``,
``predictions.csv`` or a protocol CSV) and returns a figure; :func:`save_png` writes one.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
from matplotlib.figure import Figure

DPI = 100


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def save_png(fig: Figure, path: Union[str, os.PathLike]) -> None:
    """Write ``fig`` as a PNG (tight layout)."""
    fig.savefig(path, format="png", dpi=DPI, bbox_inches="tight")


def training_curves(records: Sequence[Mapping[str, Any]]) -> Optional[Figure]:
    """Training loss, learning rate and validation metrics per epoch, from ``log.jsonl``."""
    if not records:
        return None
    epochs = [int(r["epoch"]) for r in records]
    panels = [
        ("loss", [k for k in records[-1] if k.startswith("train_") and "loss" in k]),
        ("learning rate", [k for k in records[-1] if k in ("train_lr", "lr")]),
        ("validation", [f"val_{m}" for m in ("accuracy", "auroc", "ap") if f"val_{m}" in records[-1]]),
    ]
    panels = [(t, keys) for t, keys in panels if keys]
    fig = Figure(figsize=(4.2 * len(panels), 3.2))
    for ax, (title, keys) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels):
        for k in keys:
            ax.plot(epochs, [_float(r.get(k)) for r in records], marker="o", label=k)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def roc_pr_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "") -> Figure:
    """ROC and precision-recall curves, one line per entry of ``{label: (labels, scores)}``."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    fig = Figure(figsize=(9, 4))
    roc_ax, pr_ax = fig.subplots(1, 2)
    for name, (y, s) in curves.items():
        if not ((y == 0).any() and (y == 1).any()):
            continue
        fpr, tpr, _ = roc_curve(y, s)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUROC {auc(fpr, tpr):.3f})")
        prec, rec, _ = precision_recall_curve(y, s)
        pr_ax.plot(rec, prec, label=name)
    roc_ax.plot([0, 1], [0, 1], ls="--", c="gray", lw=0.8)
    roc_ax.set(xlabel="false positive rate (reals called fake)", ylabel="true positive rate", title="ROC")
    pr_ax.set(xlabel="recall (fake)", ylabel="precision (fake)", title="precision-recall")
    for ax in (roc_ax, pr_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right" if ax is roc_ax else "lower left")
    if title:
        fig.suptitle(title)
    return fig


def reliability_diagram(y: np.ndarray, s: np.ndarray, title: str = "") -> Figure:
    """Fraction of fakes against mean score per bin (the ECE's bins), with bin counts."""
    from aigbench.metrics.calibration import calibration_metrics, reliability_bins

    bins = reliability_bins(y, s)
    edges = np.asarray(bins["edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    frac = np.asarray(bins["fraction_fake"], dtype=float)
    fig = Figure(figsize=(4.5, 4.2))
    ax = fig.subplots()
    ax.bar(centres, np.nan_to_num(frac), width=edges[1] - edges[0], edgecolor="k", alpha=0.7, label="fraction fake")
    ax.plot([0, 1], [0, 1], ls="--", c="gray", label="perfect calibration")
    ece = calibration_metrics(y, s)["ece"]
    ax.set(xlabel="score (probability of fake)", ylabel="fraction of fakes", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"{title} ECE {ece:.3f}".strip())
    ax.legend(fontsize=7, loc="upper left")
    return fig


def generator_bars(per_generator: Mapping[str, Mapping[str, Any]], title: str = "") -> Optional[Figure]:
    """AUROC and accuracy per generator, worst AUROC first."""
    if not per_generator:
        return None
    names = sorted(per_generator, key=lambda g: (np.nan_to_num(_float(per_generator[g].get("auroc")), nan=-1), g))
    x = np.arange(len(names))
    fig = Figure(figsize=(max(4.5, 0.6 * len(names) + 2), 3.6))
    ax = fig.subplots()
    for off, metric in ((-0.2, "auroc"), (0.2, "accuracy")):
        ax.bar(x + off, [np.nan_to_num(_float(per_generator[g].get(metric))) for g in names], width=0.4, label=metric)
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title or "per generator (worst AUROC first)")
    return fig


def robustness_figures(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] = ("accuracy", "auroc"),
    by: str = "dataset",
    label_prefix: str = "",
    figures: Optional[dict[str, Figure]] = None,
) -> dict[str, Figure]:
    """One figure per perturbation: each metric against strength, a line per dataset (``by =
    "dataset"``) or per generator (``by = "generator"``). Pass ``figures`` back in with another
    run's rows (and a ``label_prefix``) to overlay runs."""
    series: dict[str, dict[str, list[tuple[float, Mapping[str, Any]]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        gen = r.get("generator") or ""
        if (by == "dataset") == bool(gen):
            continue
        key = r["dataset"] if by == "dataset" else f"{r['dataset']}/{gen}"
        series[r["perturbation"]][key].append((_float(r["strength"]), r))
    figures = {} if figures is None else figures
    for perturbation, lines in series.items():
        if perturbation not in figures:
            fig = Figure(figsize=(4.2 * len(metrics), 3.4))
            fig.subplots(1, len(metrics))
            fig.suptitle(f"{perturbation} ({next(iter(lines.values()))[0][1].get('unit', '')})", fontsize=9)
            figures[perturbation] = fig
        axes = figures[perturbation].axes
        for ax, metric in zip(axes, metrics):
            for key, points in sorted(lines.items()):
                points = sorted(points, key=lambda p: p[0])
                ax.plot(
                    [p[0] for p in points],
                    [_float(p[1].get(metric)) for p in points],
                    marker="o",
                    label=f"{label_prefix}{key}",
                )
            ax.set(xlabel=points[0][1].get("param", "strength"))
            metric_axis(ax, metric)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
    return figures


UNIT_METRICS = ("auroc", "ap", "accuracy", "balanced_accuracy", "real_accuracy", "fake_accuracy", "f1")
MIN_SPAN = 0.1  # other metrics: the y-axis spans at least this much, so noise does not look like a collapse


def metric_axis(ax: Any, metric: str) -> None:
    """A fixed y-range for the metrics that live in [0, 1] (a flat line stays flat), else at least
    :data:`MIN_SPAN` around the data; the axis label says which."""
    if metric in UNIT_METRICS:
        ax.set_ylim(0.0, 1.0)
        ax.set_ylabel(f"{metric} (axis 0-1)")
        return
    lo, hi = ax.get_ylim()
    if hi - lo < MIN_SPAN:
        mid = (lo + hi) / 2
        ax.set_ylim(mid - MIN_SPAN / 2, mid + MIN_SPAN / 2)
    ax.set_ylabel(f"{metric} (axis spans at least {MIN_SPAN:g})")


def heatmap(
    matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str, xlabel: str, ylabel: str
) -> Figure:
    """An annotated heatmap (cross-generator matrix, window x window), NaN cells blank."""
    fig = Figure(figsize=(1.0 * len(cols) + 3, 0.7 * len(rows) + 2.2))
    ax = fig.subplots()
    m = np.asarray(matrix, dtype=float)
    im = ax.imshow(np.ma.masked_invalid(m), vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if np.isfinite(m[i, j]):
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if m[i, j] < 0.6 else "black",
                )
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return fig


def mistakes_grid(items: Sequence[Mapping[str, Any]], columns: int = 6, thumb: int = 128) -> Optional[Figure]:
    """Thumbnails of the most confident mistakes: ``{"image": HxWx3 uint8, "label", "score", "path"}``
    and ``copies`` (files with the same content, shown once)."""
    if not items:
        return None
    rows = math.ceil(len(items) / columns)
    fig = Figure(figsize=(1.9 * columns, 2.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, it in zip(axes, items):
        ax.imshow(it["image"])
        truth = "fake" if int(it["label"]) == 1 else "real"
        copies = int(it.get("copies", 1))
        more = f" ({copies} copies)" if copies > 1 else ""
        name = os.path.basename(str(it["path"]))[:22]
        ax.set_title(f"{truth}, score {float(it['score']):.3f}{more}\n{name}", fontsize=6)
    return fig


def trials_figure(trials: Sequence[Mapping[str, Any]], metric: str = "value") -> Optional[Figure]:
    """The objective of each trial of a hyperparameter sweep, with the best so far."""
    done = [
        (int(t["number"]), _float(t.get(metric)))
        for t in trials
        if t.get("state", "COMPLETE") == "COMPLETE" and math.isfinite(_float(t.get(metric)))
    ]
    if not done:
        return None
    done.sort()
    best = np.minimum if trials[0].get("direction") == "minimize" else np.maximum
    fig = Figure(figsize=(5, 3.4))
    ax = fig.subplots()
    ax.plot([d[0] for d in done], [d[1] for d in done], "o", label="trial")
    ax.plot([d[0] for d in done], best.accumulate([d[1] for d in done]), "-", label="best so far")
    ax.set(xlabel="trial", ylabel=metric, title="sweep trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def importance_figure(importance: Mapping[str, float]) -> Optional[Figure]:
    """Optuna's parameter importances as horizontal bars, most important on top."""
    if not importance:
        return None
    names = sorted(importance, key=lambda k: importance[k])
    fig = Figure(figsize=(5, 0.5 * len(names) + 1.5))
    ax = fig.subplots()
    ax.barh(names, [importance[k] for k in names])
    ax.set(xlabel="importance", title="parameter importance")
    return fig
