"""bench sweep (Optuna) over train.py's flags: trials as run folders, resume, importance."""

import csv
import json

import pytest

from conftest import bench

SPACE = """
metric: val_auroc
sampler: random
n_trials: 3
pruner: none
seed: 1
fixed:
  model: MyModel
  data_path: {train}
  test_data_path: {test}
  val_split: 0.25
  epochs: 2
  test_period: 1000
  device: cpu
  threads: 1
params:
  lr: {{low: 1.0e-3, high: 1.0e-2, log: true}}
  width: {{choices: [4, 8]}}
"""


def test_sweep_runs_trials_as_run_folders_and_resumes(project, subsets):
    space = project / "space.yaml"
    space.write_text(SPACE.format(train=subsets["train"], test=subsets["test"]))
    out = project / "sw"
    proc = bench("sweep", str(space), "--out", str(out), cwd=project)
    with open(out / "trials.csv") as f:
        trials = list(csv.DictReader(f))
    assert [t["state"] for t in trials] == ["COMPLETE"] * 3
    said = proc.stdout + proc.stderr  # one line per finished trial: parameters, value, best so far
    best = max(trials, key=lambda t: float(t["value"]))
    for t in trials:
        line = next(x for x in said.splitlines() if f"trial {t['number']} val_auroc {float(t['value']):.4f}" in x)
        assert f"--width {t['width']}" in line and "best so far: trial" in line, line
    last = next(x for x in said.splitlines() if "trial 2 val_auroc" in x)
    assert f"best so far: trial {best['number']}, {float(best['value']):.4f}" in last, last
    for t in trials:
        cfg = json.loads((out / f"trial_{t['number']}" / "config.json").read_text())
        assert cfg["width"] == int(t["width"]) and cfg["lr"] == pytest.approx(float(t["lr"]), rel=1e-5)
        log = [json.loads(x) for x in (out / f"trial_{t['number']}" / "log.jsonl").read_text().splitlines()]
        best = [r for r in log if r["selected"]][-1]  # the epoch test.py tests, not the last one
        assert float(t["value"]) == pytest.approx(best["val_auroc"])
    importance = json.loads((out / "importance.json").read_text())
    assert set(importance["importance"]) == {"lr", "width"}
    # the same command with more trials continues the study: the 3 finished trials are kept
    bench("sweep", str(space), "--out", str(out), "--n_trials", "4", cwd=project)
    with open(out / "trials.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    report = bench("report", str(out), "--out", str(project / "rep"), cwd=project)
    assert "report.html" in report.stdout
    assert (project / "rep" / "img" / "sw_trials.png").is_file()
    assert (project / "rep" / "img" / "sw_importance.png").is_file()


def test_sweep_space_errors_name_the_key(project, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sampler: grid\nparams:\n  lr: {low: 0.001, high: 0.01}\n")
    proc = bench("sweep", str(bad), cwd=project, check=False)
    assert proc.returncode and "grid sampler needs choices" in proc.stderr and "params.lr" in proc.stderr
    bad.write_text("paramz: {}\n")
    proc = bench("sweep", str(bad), cwd=project, check=False)
    assert "unknown key(s) paramz" in proc.stderr
