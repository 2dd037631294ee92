"""bench ensemble keeps every scored row, also of a file listed twice (issue 18, point 5)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from aigbench.evaluation.ensemble import ensemble_runs


def fake_run(root, scores, paths, labels):
    d = root / "test" / "checkpoint-best" / "set"
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"dataset": "set", "metrics": {}}))
    with open(d / "predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "score", "generator", "category"])
        for p, y, s in zip(paths, labels, scores):
            w.writerow([p, y, s, "", ""])
    return root


def test_duplicate_paths_are_kept_not_dropped(tmp_path):
    rng = np.random.default_rng(0)
    paths = [f"img_{i}.png" for i in range(60)] + [f"img_{i}.png" for i in range(20)]  # 20 listed twice
    labels = [i % 2 for i in range(60)] + [i % 2 for i in range(20)]
    a = rng.random(80).round(4)
    b = rng.random(80).round(4)
    runs = [fake_run(tmp_path / "a", a, paths, labels), fake_run(tmp_path / "b", b, paths, labels)]
    result = ensemble_runs(runs, tmp_path / "ens")["set"]
    assert result["metrics"]["n"] == 80  # was 60: the second row of each duplicate was dropped
    assert result["metrics"]["auroc"] == pytest.approx(roc_auc_score(labels, (a + b) / 2), abs=1e-6)
