"""Models fitted in closed form are saved fitted (issue 17, point 2).

PCALogReg (the CIFAKE paper's PCA + logistic regression) is trained through the generated
train.py on the embedded CIFAKE demo data; its checkpoint, re-tested by test.py and used by
``bench predict``, must score as the epoch scored during training, not AUROC 0.5.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from aigbench.datasets.layouts import DEMO_ROOT

from conftest import bench, script

pytestmark = pytest.mark.slow


def read_metrics(out, dataset="demo"):
    path = next((out / "test" / "checkpoint-0").glob("*/metrics.json"))
    return json.loads(path.read_text())["metrics"]


def test_pca_logreg_checkpoints_hold_the_fitted_model(project):
    out = project / "out"
    train = ["--model", "PCALogReg", "--n_components", "20", "--epochs", "1", "--no-hflip", "--no_progress"]
    proc = script(project, "train.py", *train, "--data_path", "aigbench:demo", "--output_dir", str(out))
    during = read_metrics(out)
    said = proc.stdout + proc.stderr  # what it fitted, not a training loss it does not have
    epoch_line = next(x for x in said.splitlines() if "epoch 0 |" in x)
    assert "fitted components 20, explained variance 0." in epoch_line and "train accuracy" in epoch_line
    assert "train loss" not in epoch_line, epoch_line
    assert during["auroc"] > 0.6  # fitted before the epoch's test

    state = torch.load(out / "checkpoint-0.pth", map_location="cpu", weights_only=True)["model"]
    assert bool(state["fitted"]) and state["coef"].abs().sum() > 0  # saved after the fit step

    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["train_fit_components"] == 20 and 0 < log[-1]["train_fit_explained_variance"] < 1

    script(project, "test.py", "--output_dir", str(out), "--checkpoint", "last", "--no_progress")
    retested = read_metrics(out)
    assert retested["auroc"] == pytest.approx(during["auroc"], abs=1e-9)
    assert retested["accuracy"] == pytest.approx(during["accuracy"], abs=1e-9)

    bench("predict", str(DEMO_ROOT / "test" / "FAKE"), "--run", str(out), "--out", "preds.csv", cwd=project)
    with open(project / "preds.csv", newline="") as f:
        scores = [float(r["score"]) for r in csv.DictReader(f) if r["score"]]
    assert len(scores) == 100 and np.std(scores) > 0.01 and np.mean(scores) > 0.5
