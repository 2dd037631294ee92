import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    recall_score,
    roc_auc_score,
)

from aigbench.metrics import compute_metrics, per_generator_metrics


def sklearn_reference(y, s, threshold=0.5):
    pred = (s > threshold).astype(int)  # the official rule: y_pred > 0.5
    return {
        "accuracy": accuracy_score(y, pred),
        "real_acc": recall_score(y, pred, pos_label=0),
        "fake_acc": recall_score(y, pred, pos_label=1),
        "balanced_acc": balanced_accuracy_score(y, pred),
        "auroc": roc_auc_score(y, s),
        "ap": average_precision_score(y, s),
        "f1": f1_score(y, pred),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_every_metric_equals_sklearn(seed, threshold):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.25), 0, 1).round(2)  # rounding creates ties
    s[:10] = threshold  # scores exactly at the threshold count as fake
    got = compute_metrics(y, s, threshold)
    ref = sklearn_reference(y, s, threshold)
    for k, v in ref.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k
    assert got["threshold"] == threshold
    assert (got["n"], got["n_real"], got["n_fake"]) == (500, int((y == 0).sum()), int((y == 1).sum()))


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_one_class_has_nan_ranking_metrics():
    got = compute_metrics([1, 1, 1], [0.9, 0.2, 0.7])
    assert math.isnan(got["auroc"]) and math.isnan(got["ap"]) and math.isnan(got["real_acc"])
    assert got["fake_acc"] == pytest.approx(2 / 3)
    assert got["balanced_acc"] == pytest.approx(balanced_accuracy_score([1, 1, 1], [1, 0, 1]))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="differ in length"):
        compute_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 \\(real\\) or 1 \\(fake\\)"):
        compute_metrics([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="NaN or infinite"):
        compute_metrics([0, 1], [0.5, float("nan")])


def test_per_generator_matches_sklearn_on_each_subset():
    rng = np.random.default_rng(5)
    gens = np.array(["progan", "stylegan", "biggan"])[rng.integers(0, 3, 300)]
    y = rng.integers(0, 2, 300)
    s = rng.random(300)
    out = per_generator_metrics(y, s, gens)
    assert sorted(out) == ["biggan", "progan", "stylegan"]
    for g, m in out.items():
        mask = gens == g
        ref = sklearn_reference(y[mask], s[mask])
        for k, v in ref.items():
            assert m[k] == pytest.approx(v, abs=1e-12), (g, k)
    assert per_generator_metrics(y, s, [""] * 300) == {}
