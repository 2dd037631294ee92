"""One pairing rule everywhere, and what depends on the real:fake ratio (issue 17, point 8).

The scores are those of a detector on a mixed test set in the shapes the field ships: a
ForenSynths-style generator with its own reals (``progan``), two fake-only generators
(UnivFD ``diffusion_datasets``-style ``guided`` and ``ldm_200``) and a real pool
(``imagenet``, generator ``""`` for reals listed without one)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from aigbench.metrics import compute_metrics, generator_breakdown
from aigbench.metrics.binary import group_metrics, paired_selection


@pytest.fixture
def mixed():
    rng = np.random.default_rng(7)
    gens = ["progan"] * 60 + ["guided"] * 40 + ["ldm_200"] * 40 + ["imagenet"] * 50 + [""] * 10
    y = np.array([0] * 30 + [1] * 30 + [1] * 80 + [0] * 60, dtype=float)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    return gens, y, s


def test_per_generator_and_window_groups_pair_reals_the_same_way(mixed):
    gens, y, s = mixed
    per_gen = generator_breakdown(y, s, gens)
    for g in ("progan", "guided", "ldm_200"):
        assert group_metrics(y, s, gens, [g]) == per_gen["per_generator"][g]
    pooled = paired_selection(gens, y, ["guided"])
    g = np.asarray(gens, dtype=object)
    assert not (pooled & (g == "progan")).any()  # progan's own reals are not the pool
    assert pooled[(g == "imagenet") | (g == "")].all()
    ref = (y[pooled], s[pooled])
    assert per_gen["per_generator"]["guided"]["ap"] == pytest.approx(average_precision_score(*ref))
    assert per_gen["per_generator"]["guided"]["auroc"] == pytest.approx(roc_auc_score(*ref))
    assert per_gen["pairing"] == {"progan": "own_reals", "guided": "pooled_reals", "ldm_200": "pooled_reals"}


def test_ap_and_accuracy_depend_on_the_ratio_auroc_and_balanced_accuracy_do_not(mixed):
    _, y, s = mixed
    reals = y == 0
    y2, s2 = np.r_[y, y[reals]], np.r_[s, s[reals]]  # the same scores, every real twice
    a, b = compute_metrics(y, s), compute_metrics(y2, s2)
    assert b["ap"] < a["ap"] - 0.02
    assert a["accuracy"] != pytest.approx(b["accuracy"])
    for k in ("auroc", "balanced_acc", "real_acc", "fake_acc"):
        assert a[k] == pytest.approx(b[k])
