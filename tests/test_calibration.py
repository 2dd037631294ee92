"""Threshold-free figures, calibration and bootstrap intervals, each checked against
scikit-learn or a hand-computed example."""

import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    roc_curve,
)

from aigbench.metrics.calibration import (
    bootstrap_ci,
    bootstrap_replicates,
    calibration_metrics,
    reliability_bins,
    threshold_free_metrics,
    weighted_metrics,
)


@pytest.fixture
def scored():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(400), np.ones(300)]
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1).round(2)  # rounded: many ties
    return y, s


def test_eer_and_tpr_at_fpr_hand_computed():
    # reals 0.1 0.2 0.3 0.6, fakes 0.4 0.7 0.8 0.9: at t = 0.6 FPR = 1/4 (0.6) and FNR = 1/4 (0.4)
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    m = threshold_free_metrics(y, s)
    assert m["eer"] == pytest.approx(0.25)
    assert m["eer_threshold"] == pytest.approx(0.6)
    # no real above 0.6 at FPR 0: TPR 3/4; a 1 % or 5 % budget allows no false positive
    assert m["tpr_at_fpr_1"] == pytest.approx(0.75)
    assert m["tpr_at_fpr_5"] == pytest.approx(0.75)
    # the best threshold 0.7 (or 0.4) misclassifies one image: 7/8
    assert m["oracle_accuracy"] == pytest.approx(7 / 8)
    assert "optimistic" in m["oracle_note"]


def test_threshold_free_against_sklearn(scored):
    y, s = scored
    m = threshold_free_metrics(y, s)
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    assert m["tpr_at_fpr_5"] == pytest.approx(tpr[fpr <= 0.05].max())
    assert m["tpr_at_fpr_1"] == pytest.approx(tpr[fpr <= 0.01].max())
    best = max(accuracy_score(y, s > t) for t in np.r_[-1.0, np.unique(s)])
    assert m["oracle_accuracy"] == pytest.approx(best)
    assert accuracy_score(y, s > m["oracle_threshold"]) == pytest.approx(best)
    fnr = 1 - tpr
    i = np.argmin(np.abs(fnr - fpr))
    assert abs(m["eer"] - (fpr[i] + fnr[i]) / 2) < 0.01


def test_one_class_is_nan_not_an_error():
    m = threshold_free_metrics([1, 1, 1], [0.2, 0.8, 0.9])
    assert math.isnan(m["eer"]) and math.isnan(m["oracle_accuracy"])


def test_calibration_against_sklearn_and_by_hand(scored):
    y, s = scored
    c = calibration_metrics(y, s)
    assert c["brier"] == pytest.approx(brier_score_loss(y, s))
    assert c["nll"] == pytest.approx(log_loss(y, np.clip(s, 1e-7, 1 - 1e-7)))
    # ECE by a plain loop over 15 bins (first closed, then (lo, hi])
    edges = np.linspace(0, 1, 16)
    ece = 0.0
    for k in range(15):
        m = (s >= edges[k]) & (s <= edges[k + 1]) if k == 0 else (s > edges[k]) & (s <= edges[k + 1])
        if m.any():
            ece += m.sum() / len(s) * abs(y[m].mean() - s[m].mean())
    assert c["ece"] == pytest.approx(ece)
    assert c["ece_bins"] == 15
    assert sum(reliability_bins(y, s)["count"]) == len(s)


def test_perfectly_calibrated_scores_have_zero_ece():
    # in the bin of score 0.25, one in four is fake; in that of 0.75, three in four
    y = [0, 0, 0, 1, 1, 1, 1, 0]
    s = [0.25] * 4 + [0.75] * 4
    assert calibration_metrics(y, s)["ece"] == pytest.approx(0.0)


def test_weighted_metrics_equal_sklearn_on_repeated_images(scored):
    y, s = scored
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 3, size=(5, y.size))
    got = weighted_metrics(y, s, counts, threshold=0.5)
    for r in range(5):
        yy, ss = np.repeat(y, counts[r]), np.repeat(s, counts[r])
        assert got["accuracy"][r] == pytest.approx(accuracy_score(yy, ss > 0.5))
        assert got["auroc"][r] == pytest.approx(roc_auc_score(yy, ss))
        assert got["ap"][r] == pytest.approx(average_precision_score(yy, ss))


def test_bootstrap_is_seeded_stratified_and_brackets_the_estimate(scored):
    y, s = scored
    a = bootstrap_ci(y, s, n_boot=300, seed=7)
    b = bootstrap_ci(y, s, n_boot=300, seed=7)
    c = bootstrap_ci(y, s, n_boot=300, seed=8)
    assert a == b and a != c
    assert a["accuracy"]["low"] < accuracy_score(y, s > 0.5) < a["accuracy"]["high"]
    assert a["auroc"]["low"] < roc_auc_score(y, s) < a["auroc"]["high"]
    assert a["ap"]["low"] < average_precision_score(y, s) < a["ap"]["high"]
    # stratified: every replicate keeps 400 reals and 300 fakes, so a model that calls every
    # image real scores exactly 400/700 in every replicate (resampling the pool would vary it)
    reps = bootstrap_replicates(y, np.zeros_like(s), n_boot=50, seed=1)
    assert np.allclose(reps["accuracy"], 400 / 700)
    one_class = bootstrap_replicates(np.ones(50), np.linspace(0, 1, 50), n_boot=20, seed=1)
    assert np.isnan(one_class["auroc"]).all() and one_class["accuracy"].std() > 0
