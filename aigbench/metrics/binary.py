"""Image-level binary metrics. Labels: real = 0, fake = 1; scores: probability of fake.

Threshold-based metrics (accuracy, real/fake accuracy, balanced accuracy, F1) use
``threshold`` (0.5 unless said otherwise) and the result records it. A score equal to the
threshold counts as fake. Ranking metrics (AUROC, AP) are scikit-learn's and are NaN when
only one class is present.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from aigbench.errors import AigbenchError


class MetricsError(AigbenchError, ValueError):
    """Scores or labels that no metric can be computed from."""


METRIC_NAMES = ("accuracy", "real_acc", "fake_acc", "balanced_acc", "auroc", "ap", "f1")


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else math.nan


def compute_metrics(labels: Sequence[float], scores: Sequence[float], threshold: float = 0.5) -> dict[str, Any]:
    """Every metric of ``METRIC_NAMES`` plus counts and the threshold used."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if y.size and not np.isfinite(s).all():
        raise MetricsError(
            f"{int((~np.isfinite(s)).sum())} score(s) are NaN or infinite; the model's pred_label is broken"
        )
    pred = s >= threshold
    pos = y == 1
    tp = float(np.sum(pred & pos))
    tn = float(np.sum(~pred & ~pos))
    fp = float(np.sum(pred & ~pos))
    fn = float(np.sum(~pred & pos))
    n_fake, n_real = int(pos.sum()), int((~pos).sum())
    real_acc = _ratio(tn, n_real)
    fake_acc = _ratio(tp, n_fake)
    # scikit-learn's balanced accuracy averages the recall of the classes present.
    present = [v for v in (real_acc, fake_acc) if not math.isnan(v)]
    out: dict[str, Any] = {
        "accuracy": _ratio(tp + tn, y.size),
        "real_acc": real_acc,
        "fake_acc": fake_acc,
        "balanced_acc": float(np.mean(present)) if present else math.nan,
        "auroc": math.nan,
        "ap": math.nan,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0,
    }
    if n_fake and n_real:
        from sklearn.metrics import average_precision_score, roc_auc_score

        out["auroc"] = float(roc_auc_score(y, s))
        out["ap"] = float(average_precision_score(y, s))
    out.update({"threshold": float(threshold), "n": int(y.size), "n_real": n_real, "n_fake": n_fake})
    return out


def per_generator_metrics(
    labels: Sequence[float],
    scores: Sequence[float],
    generators: Sequence[Optional[str]],
    threshold: float = 0.5,
) -> dict[str, dict[str, Any]]:
    """Metrics on each generator's subset; empty when the data names no generator."""
    gens = np.asarray([g or "" for g in generators], dtype=object)
    names = sorted({g for g in gens if g})
    if not names:
        return {}
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    return {g: compute_metrics(y[gens == g], s[gens == g], threshold) for g in names}
