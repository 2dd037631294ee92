"""Runs that survive interruptions (issue 18, point 1): a real train.py process is killed with
SIGKILL in the middle of an epoch's validation, then resumed; and a run is resumed from an
older checkpoint, and with another --best_metric. The data is the embedded CIFAKE demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import script

pytestmark = pytest.mark.slow

HANG = '''

import os as _os
import time as _time


@MODELS.register_module()
class HangingModel(MyModel):
    """MyModel that blocks in evaluation while the file ``hang`` exists (so a test can kill it there)."""

    def forward(self, image, label, *args, **kwargs):
        if not self.training and _os.path.exists("hang"):
            open("hung", "w").close()
            _time.sleep(600)
        return super().forward(image, label, *args, **kwargs)
'''

FLAGS = ["--data_path", "aigbench:demo", "--val_split", "0.1", "--width", "8", "--batch_size", "32", "--no_progress",
         "--image_size", "32"]  # fmt: skip


def log_rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()] if (out / "log.jsonl").exists() else []


def kill_during_validation(project: Path, out: Path, epochs: int, at_epoch: int) -> None:
    """Start train.py; once ``at_epoch`` epochs are logged, make evaluation block; SIGKILL it there."""
    cmd = [sys.executable, "train.py", "--model", "HangingModel", "--epochs", str(epochs), "--output_dir", str(out)]
    proc = subprocess.Popen([*cmd, *FLAGS], cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    try:
        while len(log_rows(out)) < at_epoch:
            assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()[-3000:]
            time.sleep(0.05)
        (project / "hang").touch()
        while not (project / "hung").exists():
            assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()[-3000:]
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        (project / "hang").unlink(missing_ok=True)
        (project / "hung").unlink(missing_ok=True)


@pytest.fixture
def hanging(project) -> Path:
    with open(project / "mymodel.py", "a") as f:
        f.write(HANG)
    return project


def test_a_run_killed_while_validating_its_last_epoch_finishes_it_on_resume(hanging):
    out = hanging / "run"
    kill_during_validation(hanging, out, epochs=3, at_epoch=2)
    assert [r["epoch"] for r in log_rows(out)] == [0, 1]  # epoch 2 trained and saved, never validated
    assert (out / "checkpoint-2.pth").is_file() and not (out / "test" / "checkpoint-2").exists()

    script(hanging, "train.py", "--model", "HangingModel", "--epochs", "3", "--output_dir", str(out),
           "--resume", "auto", *FLAGS)  # fmt: skip
    rows = log_rows(out)
    assert [r["epoch"] for r in rows] == [0, 1, 2]  # each epoch once
    assert rows[2]["val_auroc"] is not None and "test_demo_auroc" in rows[2]  # validated and tested
    best = torch.load(out / "checkpoint-best.pth", weights_only=True)["best"]
    aurocs = [r["val_auroc"] for r in rows]
    assert best["metric"] == "auroc" and best["epoch"] == aurocs.index(max(aurocs))  # epoch 2 was a candidate
    assert json.loads((out / "progress.json").read_text())["steps"] == ["trained", "validated", "tested", "logged"]


def test_resume_from_an_older_checkpoint_starts_a_branch_and_reranks_under_a_new_metric(project):
    out = project / "run"
    script(project, "train.py", "--epochs", "3", "--output_dir", str(out), *FLAGS)
    thresholds = {r["epoch"]: r["val_threshold"] for r in log_rows(out)}
    script(project, "train.py", "--epochs", "3", "--output_dir", str(out), "--resume", str(out / "checkpoint-0.pth"),
           "--seed", "5", *FLAGS)  # fmt: skip
    rows = log_rows(out)
    assert [r["epoch"] for r in rows] == [0, 1, 2]  # no epoch twice
    aside = list((out / "abandoned").glob("after-epoch-0*"))
    assert len(aside) == 1 and (aside[0] / "checkpoint-2.pth").is_file() and (aside[0] / "log.jsonl").is_file()
    best = torch.load(out / "checkpoint-best.pth", weights_only=True)["best"]
    assert best["epoch"] == [r["val_auroc"] for r in rows].index(max(r["val_auroc"] for r in rows))
    assert best["threshold"] == pytest.approx(rows[best["epoch"]]["val_threshold"])  # its own threshold
    assert rows[0]["val_threshold"] == thresholds[0]

    # another --best_metric re-ranks the stored validation results of this branch
    script(project, "train.py", "--epochs", "3", "--output_dir", str(out), "--resume", "auto",
           "--best_metric", "val_loss", *FLAGS)  # fmt: skip
    best = torch.load(out / "checkpoint-best.pth", weights_only=True)["best"]
    losses = [r["val_loss"] for r in log_rows(out)]
    assert best["metric"] == "val_loss" and best["epoch"] == losses.index(min(losses))


def test_early_stop_decides_on_validation(project):
    out = project / "run"
    script(project, "train.py", "--epochs", "8", "--output_dir", str(out), "--early_stop", "1", "--lr", "0",
           "--no-batch_norm", *FLAGS)  # fmt: skip
    rows = log_rows(out)
    assert [r["epoch"] for r in rows] == [0, 1]  # lr 0: epoch 1 cannot beat epoch 0 (a tie keeps epoch 0)
    assert "test_demo_auroc" in rows[-1]  # the stopping epoch is tested


def test_results_of_a_checkpoint_that_changed_since_are_refused(project):
    import shutil

    from aigbench.fileio import stale_result

    from conftest import bench

    out = project / "run"
    script(project, "train.py", "--epochs", "2", "--output_dir", str(out), *FLAGS)
    script(project, "test.py", "--output_dir", str(out), "--no_progress")
    metrics = out / "test" / "checkpoint-best" / "demo" / "metrics.json"
    best = torch.load(out / "checkpoint-best.pth", weights_only=True)["best"]
    assert json.loads(metrics.read_text())["checkpoint_epoch"] == best["epoch"]
    assert stale_result(metrics) is None
    shutil.copy(out / f"checkpoint-{1 - best['epoch']}.pth", out / "checkpoint-best.pth")  # another epoch is best now
    assert "earlier checkpoint-best.pth" in stale_result(metrics)
    proc = bench("report", str(out), "--out", str(project / "report"), cwd=project)
    assert "not in the report" in proc.stderr + proc.stdout
