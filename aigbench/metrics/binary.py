"""Image-level binary metrics. Labels: real = 0, fake = 1; scores: probability of fake.

Threshold-based metrics (accuracy, real/fake accuracy, balanced accuracy, F1) use
``threshold`` (0.5 unless said otherwise) and the result records it. A score is fake when it
is *above* the threshold (:func:`is_fake`): a score of exactly 0.5 is real, as in every
official evaluation script (CNNDetection ``eval.py``/``validate.py``: ``y_pred > 0.5``).
Ranking metrics (AUROC, AP) are scikit-learn's and are NaN when
only one class is present.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from aigbench.errors import AigbenchError


class MetricsError(AigbenchError, ValueError):
    """Scores or labels that no metric can be computed from."""


def is_fake(scores: Any, threshold: float = 0.5) -> Any:
    """The decision of every threshold-based metric: fake when the score is above ``threshold``
    (numpy arrays, tensors and floats alike)."""
    return scores > threshold


def mistakes_by_confidence(labels: Any, scores: Any, threshold: float = 0.5) -> np.ndarray:
    """Indices of the wrong predictions at ``threshold`` (:func:`is_fake`), furthest from the
    threshold first (ties in input order)."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    wrong = np.flatnonzero(is_fake(scores, threshold) != (labels == 1))
    return wrong[np.argsort(-np.abs(scores[wrong] - threshold), kind="stable")]


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
    pred = is_fake(s, threshold)
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
    """Metrics of each generator (see :func:`generator_breakdown`); empty when the data names none."""
    return generator_breakdown(labels, scores, generators, threshold)["per_generator"]


PAIRINGS = {
    "own_reals": "each generator's fakes against the reals of its own folder (ForenSynths, GenImage)",
    "pooled_reals": "each generator's fakes against the dataset's reals that belong to no generator (real pools "
    "such as UnivFD's imagenet/0_real, Synthbuster's RAISE, reals tagged ''; all reals when every real has a "
    "generator); real:fake ratios then differ from generator to generator, which moves accuracy and AP (not "
    "AUROC or balanced_acc), so compare balanced_acc and AUROC across generators",
}


def paired_selection(generators: Sequence[Optional[str]], labels: Sequence[float], members: Sequence[str]) -> Any:
    """The one pairing rule of the per-generator metrics, the sliding-window groups and the
    suites: a boolean mask of the images that score the fakes of ``members``. A generator whose
    images include reals brings its own images (``own_reals``); a generator with fakes only brings
    its fakes and the pooled reals: those of no generator that owns reals, i.e. real pools and
    reals tagged ``""`` (all reals when there are none such) (``pooled_reals``)."""
    gens = np.asarray([g or "" for g in generators], dtype=object)
    y = np.asarray(labels, dtype=np.float64).ravel()
    owners = {g for g in set(gens) if g and ((gens == g) & (y == 1)).any() and ((gens == g) & (y == 0)).any()}
    pool = (y == 0) & ~np.isin(gens, list(owners))
    if not pool.any():
        pool = y == 0
    sel = np.zeros(y.shape, dtype=bool)
    for g in members:
        mask = gens == g
        sel |= mask if g in owners else (mask & (y == 1)) | pool
    return sel


def pairing_of(generators: Sequence[Optional[str]], labels: Sequence[float], generator: str) -> str:
    """``own_reals`` or ``pooled_reals``: how :func:`paired_selection` pairs ``generator``."""
    gens = np.asarray([g or "" for g in generators], dtype=object)
    y = np.asarray(labels, dtype=np.float64).ravel()
    return "own_reals" if ((gens == generator) & (y == 0)).any() else "pooled_reals"


SUMMARY_METRICS = ("accuracy", "ap", "auroc")


def generator_breakdown(
    labels: Sequence[float],
    scores: Sequence[float],
    generators: Sequence[Optional[str]],
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Per-generator metrics, with the pairing of reals made explicit, and the field's summary rows.

    * A generator whose images include reals is scored on its own images (``own_reals``).
    * A generator with fakes only is scored on its fakes plus the **pooled reals**
      (``pooled_reals``, :func:`paired_selection`): real pools such as ``imagenet/0_real`` or
      reals tagged ``""``, shared by all fake-only generators. A pool of reals alone is listed
      under ``real_pools`` with its real accuracy, not as a generator.
    * ``summary``: the mean over generators of accuracy, AP and AUROC (UnivFD's and
      AIGCDetectBenchmark's mAcc / mAP) and the worst generator for each.
    """
    gens = np.asarray([g or "" for g in generators], dtype=object)
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    out: dict[str, Any] = {"per_generator": {}, "pairing": {}, "real_pools": {}, "summary": {}}
    names = sorted({g for g in gens if g})
    if not names:
        return out
    for g in names:
        mask = gens == g
        if (y[mask] == 1).any():
            out["pairing"][g] = pairing_of(gens, y, g)
            sel = paired_selection(gens, y, [g])
            out["per_generator"][g] = compute_metrics(y[sel], s[sel], threshold)
        else:
            m = compute_metrics(y[mask], s[mask], threshold)
            out["real_pools"][g] = {"real_acc": m["real_acc"], "n_real": m["n_real"]}
    out["summary"] = summarize_generators(out["per_generator"])
    return out


def summarize_generators(per_generator: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean over generators and worst generator of each of ``SUMMARY_METRICS`` (NaN ignored)."""
    summary: dict[str, Any] = {"n_generators": len(per_generator)}
    for metric in SUMMARY_METRICS:
        vals = {g: m[metric] for g, m in per_generator.items() if not math.isnan(m[metric])}
        summary[f"mean_{metric}"] = float(np.mean(list(vals.values()))) if vals else math.nan
        if vals:
            worst = min(vals, key=lambda g: (vals[g], g))
            summary[f"worst_{metric}"] = {"generator": worst, "value": vals[worst]}
    return summary


THRESHOLD_RULE = "Youden's J (max TPR - FPR, i.e. max balanced accuracy) on the validation scores"


def youden_threshold(labels: Sequence[float], scores: Sequence[float]) -> Optional[float]:
    """The score threshold (score > t is fake, :func:`is_fake`) that maximises TPR - FPR, from
    scikit-learn's ``roc_curve`` (whose thresholds mean score >= t: the one returned lies halfway
    down to the next lower score); None when the scores hold one class only. Ties go to the
    higher threshold."""
    from sklearn.metrics import roc_curve

    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not ((y == 0).any() and (y == 1).any()):
        return None
    fpr, tpr, thresholds = roc_curve(y, s)
    finite = np.isfinite(thresholds)
    j = np.where(finite, tpr - fpr, -np.inf)
    return strict_threshold(float(thresholds[int(np.argmax(j))]), s)


def strict_threshold(t: float, scores: Any) -> float:
    """A threshold of scikit-learn's curves (score >= ``t``) as one of :func:`is_fake` (score >
    threshold) that splits ``scores`` the same way: halfway down to the next lower score."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    lower = s[s < t]
    if not math.isfinite(t):
        return t
    return (t + float(lower.max())) / 2 if lower.size else float(np.nextafter(t, -np.inf))


def one_class_note(metrics: dict[str, Any]) -> Optional[str]:
    """A note when a set has one class: AUROC/AP are undefined and accuracy is one class's recall."""
    if metrics["n"] and not metrics["n_real"]:
        return "only fake images: AUROC and AP are undefined (n/a); accuracy is the recall of fakes"
    if metrics["n"] and not metrics["n_fake"]:
        return "only real images: AUROC and AP are undefined (n/a); accuracy is the recall of reals"
    return None


def group_metrics(
    labels: Sequence[float],
    scores: Sequence[float],
    generators: Sequence[Optional[str]],
    members: Sequence[str],
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Metrics of the fakes of several generators taken together (a time window), each paired
    with reals by :func:`paired_selection`, the rule of the per-generator metrics."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    sel = paired_selection(generators, y, members)
    return compute_metrics(y[sel], s[sel], threshold)
