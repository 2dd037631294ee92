"""Sweeps that continue honestly (issue 18, point 3): a real Optuna study on the embedded demo
data is continued, interrupted with SIGKILL and continued again."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import bench

pytestmark = pytest.mark.slow

SPACE = """
metric: {metric}
sampler: {sampler}
n_trials: {n}
pruner: none
seed: 3
fixed:
  data_path: aigbench:demo
  test_data_path: none
  val_split: 0.2
  epochs: 1
  batch_size: 64
  device: cpu
  threads: 1
params:
  lr: {{choices: [0.001, 0.002, 0.003, 0.004, 0.005, 0.006]}}
  width: {{choices: [4, 8]}}
"""


def trials(out: Path) -> list[dict]:
    with open(out / "trials.csv") as f:
        return list(csv.DictReader(f))


def write_space(project: Path, sampler: str = "random", n: int = 2, metric: str = "val_auroc") -> Path:
    p = project / f"space_{sampler}_{metric}.yaml"
    p.write_text(SPACE.format(sampler=sampler, n=n, metric=metric))
    return p


def test_a_continued_seeded_search_draws_new_points(project):
    out = project / "sw"
    space = write_space(project)
    bench("sweep", str(space), "--out", str(out), cwd=project)
    first = [(t["lr"], t["width"]) for t in trials(out)]
    bench("sweep", str(space), "--out", str(out), "--n_trials", "4", cwd=project)
    done = [(t["lr"], t["width"]) for t in trials(out)]
    assert done[:2] == first and len(done) == 4
    assert done[2:] != first  # seeded 3 + 2: new draws, not a replay of trials 0 and 1


def test_an_interrupted_grid_point_is_run_again(project):
    out = project / "grid"
    space = write_space(project, "grid", 3)
    space.write_text(space.read_text().replace("[0.001, 0.002, 0.003, 0.004, 0.005, 0.006]", "[0.001, 0.002, 0.003]")
                     .replace("choices: [4, 8]", "choices: [4]"))  # fmt: skip
    cmd = [sys.executable, "-c", "from aigbench.cli.main import main; main()", "sweep", str(space), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    deadline = time.time() + 120
    while not (out / "trial_0" / "config.json").exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its train.py, in the middle of trial 0
    proc.wait(30)
    bench("sweep", str(space), "--out", str(out), cwd=project)
    rows = trials(out)
    complete = sorted(float(t["lr"]) for t in rows if t["state"] == "COMPLETE")
    assert complete == [0.001, 0.002, 0.003]  # every grid point, the interrupted one too
    assert [t["state"] for t in rows].count("FAIL") == 1


def test_a_test_metric_or_a_changed_metric_is_refused(project):
    proc = bench("sweep", str(write_space(project, metric="test_demo_auroc")), "--out", "x", cwd=project, check=False)
    assert proc.returncode and "not a validation metric" in proc.stderr
    out = project / "sw"
    bench("sweep", str(write_space(project, n=1)), "--out", str(out), cwd=project)
    proc = bench("sweep", str(write_space(project, n=2, metric="val_ap")), "--out", str(out), cwd=project, check=False)
    assert proc.returncode and "study of val_auroc (maximize), not val_ap" in proc.stderr
