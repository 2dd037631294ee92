"""Real runs of the generated scripts on the shared CIFAKE data: train → test → robustness."""

import csv
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

from aigbench.engine.loggers import clean_float

from conftest import data_flags, script, torchrun

pytestmark = pytest.mark.slow


def read_predictions(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows, np.array([int(r["label"]) for r in rows]), np.array([float(r["score"]) for r in rows])


def event_tags(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_train_test_robust_on_cifake(project, subsets):
    out = project / "out"
    common = ["--output_dir", str(out), "--image_size", "32", "--batch_size", "32"]
    script(
        project,
        "train.py",
        "--data_path",
        str(subsets["train"]),
        "--test_data_path",
        str(subsets["test_map"]),
        "--epochs",
        "3",
        "--lr",
        "2e-3",
        "--val_split",
        "0.2",
        *common,
        cold=True,  # the main scripts once in a fresh interpreter, as a user starts them
    )

    # checkpoints: atomic files, weights_only-loadable, plain config
    names = sorted(p.name for p in out.glob("checkpoint-*.pth"))
    assert names == ["checkpoint-0.pth", "checkpoint-1.pth", "checkpoint-2.pth", "checkpoint-best.pth"]
    # the validation split: 20 % of each (label, generator) group, recorded
    with open(out / "val_split.csv") as f:
        split_rows = list(csv.DictReader(f))
    assert len(split_rows) == 600
    val_rows = [r for r in split_rows if r["split"] == "val"]
    assert len(val_rows) == 120 and sum(int(r["label"]) for r in val_rows) == 60
    ck = torch.load(out / "checkpoint-2.pth", weights_only=True)
    assert ck["epoch"] == 2 and ck["config"]["epochs"] == 3 and isinstance(ck["config"], dict)
    assert json.loads((out / "config.json").read_text())["model"] == "MyModel"
    assert not list(out.glob(".*tmp"))

    # log.jsonl: one line per epoch with train and test scalars
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [0, 1, 2]
    assert {"train_loss", "train_bce", "train_lr", "test_cifake_sub_auroc", "test_cifake_sub_f1"} <= set(lines[-1])
    assert {"val_accuracy", "val_auroc", "val_threshold", "selected"} <= set(lines[-1])
    assert lines[-1]["val_n"] == 120

    # metrics.json equals scikit-learn on the predictions.csv written beside it; every image once
    res = out / "test" / "checkpoint-2" / "cifake_sub"
    metrics = json.loads((res / "metrics.json").read_text())["metrics"]
    rows, y, s = read_predictions(res / "predictions.csv")
    assert len(rows) == len({r["path"] for r in rows}) == metrics["n"] == 201
    # the scores in the CSV give back exactly the metrics of the JSON (rounded to 6 significant digits)
    assert metrics["auroc"] == clean_float(roc_auc_score(y, s))
    assert metrics["ap"] == clean_float(average_precision_score(y, s))
    assert metrics["accuracy"] == clean_float(accuracy_score(y, s > 0.5))
    assert metrics["auroc"] > 0.6, metrics  # it learned something real
    assert lines[-1]["test_cifake_sub_auroc"] == pytest.approx(metrics["auroc"])

    # the best checkpoint is the best epoch on validation, never chosen by a test number
    best = torch.load(out / "checkpoint-best.pth", weights_only=True)["best"]
    assert best["metric"] == "auroc"  # the threshold-free default
    assert best["value"] == pytest.approx(max(x["val_auroc"] for x in lines))
    assert [x["selected"] for x in lines].index(True) == 0 and lines[best["epoch"]]["selected"]
    assert 0 < best["threshold"] < 1 and "Youden" in best["threshold_rule"]

    # TensorBoard: loss curves, learning rate, metrics, images
    tb = event_tags(out / "tensorboard" / "train")
    scalars = set(tb.Tags()["scalars"])
    assert {
        "train_step/bce",
        "train_step/lr",
        "train/loss",
        "test/cifake_sub/auroc",
        "test/cifake_sub/accuracy",
    } <= scalars
    images = set(tb.Tags()["images"])
    assert {"test/cifake_sub/inputs_label_score", "test/cifake_sub/visual_image/stem_energy"} <= images

    # test.py: the best checkpoint by default, with the threshold calibrated on validation
    script(project, "test.py", "--test_data_json", str(subsets["test_map"]), "--output_dir", str(out), cold=True)
    best_dir = out / "test" / "checkpoint-best" / "cifake_sub"
    tested = json.loads((best_dir / "metrics.json").read_text())
    assert tested["at_val_threshold"]["threshold"] == pytest.approx(best["threshold"], rel=1e-5)
    _, yb, sb = read_predictions(best_dir / "predictions.csv")
    t = tested["at_val_threshold"]["threshold"]
    assert tested["at_val_threshold"]["accuracy"] == clean_float(accuracy_score(yb, sb > t))
    # --checkpoint all: every epoch, and the summary warns that choosing among them is selection on test
    proc = script(
        project, "test.py", "--test_data_json", str(subsets["test_map"]), "--checkpoint", "all", *common, cold=True
    )
    assert "selection on the test set" in proc.stderr
    for ckpt in ("checkpoint-0", "checkpoint-1", "checkpoint-2", "checkpoint-best"):
        assert (out / "test" / ckpt / "cifake_sub" / "metrics.json").exists()
    again = json.loads((res / "metrics.json").read_text())["metrics"]
    assert again["auroc"] == pytest.approx(metrics["auroc"], abs=1e-6)

    # test_robust.py: one checkpoint, the whole grid, one CSV
    proc = script(project, "test_robust.py", "--test_data_json", str(subsets["test_map"]), *common, cold=True)
    assert "blur/sigma" in proc.stdout + proc.stderr
    with open(out / "robustness" / "checkpoint-best" / "robustness.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 16
    assert {r["perturbation"] for r in table} == {"blur", "noise", "jpeg"}
    assert all(r["dataset"] == "cifake_sub" and r["checkpoint"] == "checkpoint-best.pth" for r in table)
    by = {(r["perturbation"], float(r["strength"])): r for r in table}
    assert float(by[("blur", 0)]["auroc"]) == pytest.approx(best_auroc(out), abs=1e-6)
    assert (out / "robustness" / "checkpoint-best" / "jpeg" / "quality_50" / "cifake_sub" / "predictions.csv").exists()
    rtb = event_tags(out / "tensorboard" / "robustness")
    assert "robustness/cifake_sub/blur_sigma_x10/auroc" in rtb.Tags()["scalars"]
    steps = [e.step for e in rtb.Scalars("robustness/cifake_sub/jpeg_quality/accuracy")]
    assert sorted(steps) == [30, 50, 75, 90, 95, 100]


def best_auroc(out):
    return json.loads((out / "test" / "checkpoint-best" / "cifake_sub" / "metrics.json").read_text())["metrics"][
        "auroc"
    ]


def test_resume_continues_exactly(project, subsets):
    common = [
        "--data_path",
        str(subsets["train"]),
        "--test_data_path",
        str(subsets["test"]),
        "--batch_size",
        "32",
        "--accum_iter",
        "2",
        "--lr",
        "1e-3",
        "--test_period",
        "2",
        "--epochs",
        "3",
    ]
    script(project, "train.py", *common, "--output_dir", "straight")
    # a run that stopped after epoch 1: only its checkpoint-1.pth is left
    (project / "resumed").mkdir()
    (project / "resumed" / "checkpoint-1.pth").write_bytes((project / "straight" / "checkpoint-1.pth").read_bytes())
    script(project, "train.py", *common, "--output_dir", "resumed", "--resume", "auto")
    a = torch.load(project / "straight" / "checkpoint-2.pth", weights_only=True)
    b = torch.load(project / "resumed" / "checkpoint-2.pth", weights_only=True)
    assert a["global_step"] == b["global_step"] == 3 * 9  # ceil(600 / 32 / 2) optimizer steps per epoch
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in a["optimizer"]["state"][0]:
        assert torch.equal(a["optimizer"]["state"][0][k], b["optimizer"]["state"][0][k]), k
    assert a["scheduler"] == b["scheduler"]
    la = json.loads((project / "straight" / "log.jsonl").read_text().splitlines()[-1])
    lb = json.loads((project / "resumed" / "log.jsonl").read_text().splitlines()[-1])
    assert la["epoch"] == lb["epoch"] == 2 and la["train_loss"] == lb["train_loss"]


NAN_MODEL = '''
import torch
from aigbench.registry import MODELS

@MODELS.register_module()
class MyModel(torch.nn.Module):
    """Goes NaN at its third step."""
    def __init__(self, bad_shape: bool = False):
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)
        self.bad_shape = bad_shape
        self.steps = 0

    def forward(self, image, label, *args, **kwargs):
        self.steps += 1
        logit = self.lin(image.mean((2, 3)))
        if not self.bad_shape:
            logit = logit.squeeze(1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit.reshape(-1), label)
        if self.training and self.steps >= 3:
            loss = loss * float("nan")
        return {"backward_loss": loss, "pred_label": torch.sigmoid(logit), "visual_loss": {}, "visual_image": {}}
'''


def test_nan_loss_stops_with_message_and_saves(project, subsets):
    (project / "mymodel.py").write_text(NAN_MODEL)
    proc = script(
        project, "train.py", *data_flags(subsets), *"--batch_size 32 --epochs 2 --output_dir nan".split(), check=False
    )
    assert proc.returncode == 2
    assert "backward_loss is nan at epoch 0, step 2" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    saved = torch.load(project / "nan" / "checkpoint-nonfinite.pth", weights_only=True)
    assert all(torch.isfinite(v).all() for v in saved["model"].values())
    assert saved["global_step"] == 2


def test_contract_violation_names_key_and_shape(project, subsets):
    (project / "mymodel.py").write_text(NAN_MODEL)
    proc = script(
        project,
        "train.py",
        *data_flags(subsets),
        *"--batch_size 32 --epochs 1 --bad_shape --output_dir bad".split(),
        check=False,
    )
    assert proc.returncode == 2
    assert "['pred_label'] must have shape [32]" in proc.stderr and "got shape [32, 1]" in proc.stderr


def test_bad_inputs_fail_before_work_with_clear_messages(project, subsets, tmp_path):
    proc = script(project, "train.py", "--data_path", str(tmp_path / "missing"), check=False)
    assert proc.returncode == 2 and "missing' does not exist" in proc.stderr and "--data_path" in proc.stderr
    assert not (project / "output_dir").exists()
    proc = script(project, "train.py", "--model", "MyModle", check=False)
    assert proc.returncode == 2 and "Did you mean 'MyModel'" in proc.stderr
    proc = script(
        project,
        "test.py",
        "--output_dir",
        str(tmp_path / "empty"),
        "--test_data_json",
        str(subsets["test_map"]),
        check=False,
    )
    assert proc.returncode == 2 and "no checkpoint-*.pth" in proc.stderr
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    proc = script(
        project, "test.py", "--checkpoint", str(bad), "--test_data_json", str(subsets["test_map"]), check=False
    )
    assert proc.returncode == 2 and "cannot load checkpoint" in proc.stderr


def test_torchrun_two_cpu_processes_count_each_image_once(project, subsets):

    out = project / "ddp"
    torchrun(
        project,
        "--data_path",
        str(subsets["train"]),
        "--test_data_path",
        str(subsets["test_map"]),
        "--batch_size",
        "16",
        "--epochs",
        "1",
        "--output_dir",
        str(out),
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["world_size"] == 2
    res = out / "test" / "checkpoint-0" / "cifake_sub"
    metrics = json.loads((res / "metrics.json").read_text())["metrics"]
    rows, y, s = read_predictions(res / "predictions.csv")
    # 201 images over 2 ranks: the padded sampler repeats one; it must be counted once
    assert metrics["n"] == len(rows) == len({r["path"] for r in rows}) == 201
    assert metrics["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-5)
    # the same checkpoint tested by one process gives the same scores
    script(
        project,
        "test.py",
        "--output_dir",
        str(out),
        "--test_data_json",
        str(subsets["test_map"]),
        "--checkpoint",
        str(out / "checkpoint-0.pth"),
        "--batch_size",
        "64",
    )
    _, y1, s1 = read_predictions(res / "predictions.csv")
    assert np.array_equal(y, y1) and np.allclose(s, s1, atol=1e-5)


def test_corrupt_training_file_is_skipped_named_and_counted(project, subsets, tmp_path):
    items = json.loads(subsets["train"].read_text())[:64]
    bad = tmp_path / "broken (2).jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    items.append([str(bad), 1])
    spec = tmp_path / "train_with_bad.json"
    spec.write_text(json.dumps(items))
    proc = script(
        project,
        "train.py",
        "--data_path",
        str(spec),
        "--test_data_path",
        str(subsets["test"]),
        *"--batch_size 13 --epochs 1 --output_dir skip".split(),
    )
    assert f"skipped undecodable image file: {bad}" in proc.stderr
    assert "1 undecodable training file(s); each was replaced by the next decodable one" in proc.stderr
    record = json.loads((project / "skip" / "log.jsonl").read_text().splitlines()[-1])
    assert record["train_skipped_files"] == 1
