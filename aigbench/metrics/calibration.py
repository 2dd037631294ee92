"""Threshold-free, calibration and uncertainty figures of a set of scores (real = 0, fake = 1).

* :func:`threshold_free_metrics`: EER (scikit-learn's ``det_curve``), TPR at 1 % and 5 % FPR
  (``roc_curve``) and the oracle accuracy (the best threshold chosen *on these very scores*,
  as sidbench reports it: optimistic, never a figure to compare detectors by).
* :func:`calibration_metrics`: Brier score, negative log-likelihood and the expected
  calibration error over 15 equal-width bins of the score (the binary form of
  torchmetrics' ``BinaryCalibrationError``: in each bin, |fraction of fakes - mean score|).
* :func:`bootstrap_ci`: percentile 95 % intervals of accuracy, AUROC and AP, from seeded
  bootstrap replicates stratified by label and computed all at once with numpy.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from aigbench.metrics.binary import is_fake, strict_threshold

ECE_BINS = 15
TPR_AT_FPR = (0.01, 0.05)
ORACLE_NOTE = "optimistic: the threshold is chosen on the test scores themselves (sidbench's oracle accuracy)"
EER_RULE = "det_curve point where |FPR - FNR| is smallest; EER = (FPR + FNR) / 2 there"
ECE_RULE = f"{ECE_BINS} equal-width bins of the fake score; sum over bins of (n_bin / n) * |fraction fake - mean score|"
BOOTSTRAP_METRICS = ("accuracy", "auroc", "ap")
BOOTSTRAP_CHUNK = 100


def _arrays(labels: Sequence[float], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return bool((y == 0).any() and (y == 1).any())


def threshold_free_metrics(labels: Sequence[float], scores: Sequence[float]) -> dict[str, Any]:
    """EER (with its threshold), TPR at 1 % / 5 % FPR and the oracle accuracy; NaN with one class."""
    y, s = _arrays(labels, scores)
    out: dict[str, Any] = {
        "eer": math.nan,
        "eer_threshold": math.nan,
        **{f"tpr_at_fpr_{int(f * 100)}": math.nan for f in TPR_AT_FPR},
        "oracle_accuracy": math.nan,
        "oracle_threshold": math.nan,
        "oracle_note": ORACLE_NOTE,
        "eer_rule": EER_RULE,
    }
    if not _both_classes(y):
        return out
    from sklearn.metrics import det_curve, roc_curve

    fpr, fnr, thr = det_curve(y, s)
    i = int(np.argmin(np.abs(fpr - fnr)))
    out["eer"], out["eer_threshold"] = float((fpr[i] + fnr[i]) / 2), float(thr[i])
    rfpr, rtpr, rthr = roc_curve(y, s, drop_intermediate=False)
    for f in TPR_AT_FPR:
        # the highest TPR reachable without exceeding the FPR budget (a conservative operating point)
        out[f"tpr_at_fpr_{int(f * 100)}"] = float(rtpr[rfpr <= f + 1e-12].max())
    n_fake, n_real = float((y == 1).sum()), float((y == 0).sum())
    acc = (rtpr * n_fake + (1 - rfpr) * n_real) / y.size
    j = int(np.argmax(acc))
    out["oracle_accuracy"], out["oracle_threshold"] = float(acc[j]), strict_threshold(float(rthr[j]), s)
    return out


def reliability_bins(labels: Sequence[float], scores: Sequence[float], n_bins: int = ECE_BINS) -> dict[str, list]:
    """Per equal-width score bin (first bin closed, then ``(lo, hi]``): count, mean score and
    fraction of fakes (NaN in an empty bin). The data of a reliability diagram and of the ECE."""
    y, s = _arrays(labels, scores)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, s, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(idx, weights=s, minlength=n_bins) / count
        frac = np.bincount(idx, weights=y, minlength=n_bins) / count
    return {
        "edges": edges.tolist(),
        "count": count.astype(int).tolist(),
        "mean_score": conf.tolist(),
        "fraction_fake": frac.tolist(),
    }


def calibration_metrics(labels: Sequence[float], scores: Sequence[float], n_bins: int = ECE_BINS) -> dict[str, Any]:
    """Brier score and NLL (scikit-learn's ``brier_score_loss`` and ``log_loss``) and the ECE."""
    y, s = _arrays(labels, scores)
    if not y.size:
        return {"brier": math.nan, "nll": math.nan, "ece": math.nan, "ece_bins": n_bins}
    from sklearn.metrics import brier_score_loss, log_loss

    bins = reliability_bins(y, s, n_bins)
    count = np.asarray(bins["count"], dtype=np.float64)
    gap = np.abs(np.nan_to_num(np.asarray(bins["fraction_fake"])) - np.nan_to_num(np.asarray(bins["mean_score"])))
    clipped = np.clip(s, 1e-7, 1 - 1e-7)  # a score of exactly 0 or 1 on the wrong side would be infinite
    return {
        "brier": float(brier_score_loss(y, s, pos_label=1)),
        "nll": float(log_loss(y, clipped, labels=[0, 1])),
        "ece": float(np.sum(count / y.size * gap)),
        "ece_bins": n_bins,
        "ece_rule": ECE_RULE,
    }


def _replicate_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """``[n_boot, n]`` counts: how often each of ``n`` items is drawn in each replicate of size ``n``."""
    draws = rng.integers(0, n, size=(n_boot, n)) + (np.arange(n_boot)[:, None] * n)
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.int32)


def bootstrap_replicates(
    labels: Sequence[float], scores: Sequence[float], threshold: float = 0.5, n_boot: int = 1000, seed: int = 0
) -> dict[str, np.ndarray]:
    """Accuracy, AUROC and AP of ``n_boot`` bootstrap replicates, each drawing the reals and the
    fakes separately with replacement (stratified: every replicate keeps the class sizes).

    A replicate is a vector of counts per image, so each metric is computed for all replicates
    at once (:func:`weighted_metrics`).
    """
    y, s = _arrays(labels, scores)
    rng = np.random.default_rng(seed)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, n_boot, BOOTSTRAP_CHUNK):  # bounded memory: [chunk, n] counts at a time
        size = min(BOOTSTRAP_CHUNK, n_boot - start)
        counts = np.zeros((size, y.size), dtype=np.int32)
        for mask in (y == 1, y != 1):
            if mask.any():
                counts[:, mask] = _replicate_counts(rng, int(mask.sum()), size)
        parts.append(weighted_metrics(y, s, counts, threshold))
    return {k: np.concatenate([p[k] for p in parts]) for k in ("accuracy", "auroc", "ap")}


def weighted_metrics(
    labels: Sequence[float], scores: Sequence[float], counts: np.ndarray, threshold: float = 0.5
) -> dict[str, np.ndarray]:
    """Accuracy, AUROC and AP of each row of ``counts`` (``[R, n]``: how many times each image
    is in that replicate), equal to scikit-learn's on the images repeated that many times:
    from the scores sorted once, AUROC by ranks with ties counted half, AP as scikit-learn's
    step-wise sum over distinct scores."""
    y, s = _arrays(labels, scores)
    order = np.argsort(-s, kind="stable")  # descending scores
    y, s, counts = y[order], s[order], np.asarray(counts)[:, order]
    pos = y == 1
    total = counts.sum(axis=1).astype(np.float64)
    correct = (is_fake(s, threshold) == pos).astype(np.float64)
    out = {"accuracy": np.where(total > 0, counts @ correct / np.maximum(total, 1), np.nan)}
    n_pos = (counts * pos).sum(axis=1).astype(np.float64)
    n_neg = total - n_pos
    if not (n_pos.any() and n_neg.any()):
        nan = np.full(counts.shape[0], np.nan)
        return {**out, "auroc": nan, "ap": nan}
    both = (n_pos > 0) & (n_neg > 0)  # a replicate with one class has no AUROC / AP
    n_pos, n_neg = np.where(both, n_pos, np.nan), np.where(both, n_neg, np.nan)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of equal scores, descending
    pos_c = np.add.reduceat(counts * pos, starts, axis=1).astype(np.float64)
    neg_c = np.add.reduceat(counts * ~pos, starts, axis=1).astype(np.float64)
    neg_above = np.cumsum(neg_c, axis=1) - neg_c  # negatives scored strictly higher
    wrong = (pos_c * (neg_above + 0.5 * neg_c)).sum(axis=1)
    out["auroc"] = 1.0 - wrong / (n_pos * n_neg)
    tp, fp = np.cumsum(pos_c, axis=1), np.cumsum(neg_c, axis=1)
    seen = tp + fp
    precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
    out["ap"] = (pos_c / n_pos[:, None] * precision).sum(axis=1)
    return out


def bootstrap_ci(
    labels: Sequence[float],
    scores: Sequence[float],
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Percentile confidence intervals (``level``) of accuracy, AUROC and AP from
    :func:`bootstrap_replicates`; ``{"accuracy": {"low", "high"}, ..., "n_boot", "seed", ...}``."""
    reps = bootstrap_replicates(labels, scores, threshold, n_boot, seed)
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    out: dict[str, Any] = {
        "n_boot": int(n_boot),
        "seed": int(seed),
        "level": level,
        "method": "percentile bootstrap, stratified by label",
    }
    for name in BOOTSTRAP_METRICS:
        vals = reps[name]
        if np.isnan(vals).all():
            out[name] = {"low": math.nan, "high": math.nan}
        else:
            lo, hi = np.percentile(vals, q)
            out[name] = {"low": float(lo), "high": float(hi)}
    return out
