"""Numbers a reviewer accepts, at the level of real runs of the generated scripts."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aigbench.engine.amp import AmpPolicy, amp_policy
from aigbench.engine.dist import DistContext
from aigbench.engine.loop import train_one_epoch

from conftest import data_flags, script, sigint_default, torchrun

pytestmark = pytest.mark.slow


def one_class_list(subsets, tmp_path):
    items = [x for x in json.loads(subsets["train"].read_text()) if x[1] == 0]
    p = tmp_path / "reals_only.json"
    p.write_text(json.dumps(items))
    return p


def test_one_class_training_data_stops_unless_allowed(project, subsets, tmp_path):
    reals = one_class_list(subsets, tmp_path)
    args = ["--data_path", str(reals), "--test_data_path", str(subsets["test"]), "--epochs", "1"]
    proc = script(project, "train.py", *args, "--output_dir", "one", check=False)
    assert proc.returncode == 2
    assert "every one of its 300 training images is real" in proc.stderr and "--allow_one_class" in proc.stderr
    assert not (project / "one" / "checkpoint-0.pth").exists()
    script(project, "train.py", *args, "--output_dir", "one", "--allow_one_class")
    assert (project / "one" / "checkpoint-0.pth").exists()


def test_test_scripts_rebuild_the_model_from_config_and_take_any_checkpoint_spec(project, subsets):
    out = project / "w16"
    script(
        project,
        "train.py",
        *data_flags(subsets),
        "--width",
        "16",
        "--epochs",
        "2",
        "--output_dir",
        str(out),
        "--batch_size",
        "64",
        "--image_size",
        "32",
    )
    assert json.loads((out / "config.json").read_text())["width"] == 16
    common = ["--test_data_json", str(subsets["test"]), "--output_dir", str(out)]
    proc = script(project, "test.py", *common)  # no --width: it comes from config.json
    assert "model flags from" in proc.stdout + proc.stderr
    # no validation data: no best checkpoint; the last epoch is tested
    assert (out / "test" / "checkpoint-1" / "test" / "metrics.json").exists()
    assert not (out / "checkpoint-best.pth").exists()
    for spec, folder in (
        ("0", "checkpoint-0"),
        ("last", "checkpoint-1"),
        ("checkpoint-0.pth", "checkpoint-0"),
        (str(out / "checkpoint-1.pth"), "checkpoint-1"),
    ):
        (out / "test" / folder / "test" / "metrics.json").unlink(missing_ok=True)
        script(project, "test.py", *common, "--checkpoint", spec)
        assert (out / "test" / folder / "test" / "metrics.json").exists(), spec
    proc = script(project, "test.py", *common, "--checkpoint", "7", check=False)
    assert proc.returncode == 2 and "epochs saved: 0, 1" in proc.stderr
    # a flag on the command line wins over config.json (and here no longer fits the weights)
    proc = script(project, "test.py", *common, "--width", "8", check=False)
    assert proc.returncode == 2 and "does not fit MyModel" in proc.stderr
    # the robustness script rebuilds the same way
    script(project, "test_robust.py", *common)
    assert (out / "robustness" / "checkpoint-1" / "robustness.csv").exists()


def test_help_lists_the_model_flags(project):
    proc = script(project, "train.py", "--help")
    assert "--width" in proc.stdout and "--batch_norm" in proc.stdout and "MyModel parameters" in proc.stdout
    proc = script(project, "test.py", "--help")
    assert "--width" in proc.stdout


def test_logs_without_a_terminal_have_no_progress_fragments(project, subsets):
    proc = script(project, "train.py", *data_flags(subsets), "--epochs", "1", "--output_dir", "log")
    assert "\r" not in proc.stderr and "\r" not in proc.stdout
    assert "epoch 0 | train loss" in proc.stdout


CRASH_IN_EVAL = '''
import torch
from aigbench.registry import MODELS

@MODELS.register_module()
class MyModel(torch.nn.Module):
    """Trains fine, then crashes when evaluated."""
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def forward(self, image, label, *args, **kwargs):
        if not self.training:
            raise RuntimeError("evaluation crashed")
        logit = self.lin(image.mean((2, 3))).squeeze(1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, label)
        return {"backward_loss": loss, "pred_label": torch.sigmoid(logit), "visual_loss": {}, "visual_image": {}}
'''


def test_the_trained_epoch_is_saved_before_evaluation(project, subsets):
    (project / "mymodel.py").write_text(CRASH_IN_EVAL)
    proc = script(project, "train.py", *data_flags(subsets), "--epochs", "2", "--output_dir", "crash", check=False)
    assert proc.returncode != 0 and "evaluation crashed" in proc.stderr
    saved = torch.load(project / "crash" / "checkpoint-0.pth", weights_only=True)
    assert saved["epoch"] == 0 and saved["global_step"] > 0


def test_ctrl_c_keeps_checkpoints_and_prints_the_resume_command(project, subsets):
    cmd = [sys.executable, "train.py", *data_flags(subsets), "--epochs", "200", "--output_dir", "intr"]
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}  # a run that hangs shows where (SIGABRT below)
    proc = subprocess.Popen(
        cmd,
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=sigint_default,
    )
    deadline = time.time() + 120
    while not (project / "intr" / "checkpoint-0.pth").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        status = [x for x in Path(f"/proc/{proc.pid}/status").read_text().splitlines() if x.startswith("Sig")]
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate()
        err = "\n".join(x for x in err.splitlines() if not x.startswith("Extension modules"))
        pytest.fail(f"train.py did not stop within 60 s of Ctrl-C ({status}); its threads:\n{err[-8000:]}")
    assert proc.returncode == 130
    assert "--resume auto" in err and "--output_dir intr" in err
    assert (project / "intr" / "checkpoint-0.pth").exists() and not list((project / "intr").glob(".*tmp"))
    resumed = script(
        project, "train.py", *data_flags(subsets), "--epochs", "2", "--output_dir", "intr", "--resume", "auto"
    )
    assert "resuming from" in resumed.stdout and "continuing at epoch" in resumed.stdout


def test_ddp_rank_with_an_all_corrupt_batch_does_not_hang(project, subsets, tmp_path):
    from torch.utils.data import DistributedSampler

    all_items = json.loads(subsets["train"].read_text())
    items = all_items[:48] + all_items[-48:]
    # the first batch of rank 1 in epoch 0 (same sampler and seed as train.py): every image corrupt
    sampler = DistributedSampler(range(len(items)), num_replicas=2, rank=1, shuffle=True, seed=42)
    sampler.set_epoch(0)
    for k, i in enumerate(list(sampler)[:8]):
        bad = tmp_path / f"corrupt_{k}.jpg"
        bad.write_bytes(b"\xff\xd8\xff broken")
        items[i] = [str(bad), items[i][1]]
    spec = tmp_path / "train.json"
    spec.write_text(json.dumps(items))
    out = project / "ddp_bad"
    proc = torchrun(
        project,
        "--data_path",
        str(spec),
        "--test_data_path",
        str(subsets["test"]),
        "--batch_size",
        "8",
        "--epochs",
        "1",
        "--max_skip_ratio",
        "0.1",
        "--output_dir",
        str(out),
        "--no_progress",
    )
    assert "8 undecodable training file(s)" in proc.stderr
    record = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert record["train_skipped_files"] == 8 and record["test_test_n"] == 201


class SpikeModel(torch.nn.Module):
    """A float16 overflow at its second step: the loss is inf."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)
        self.steps = 0

    def forward(self, image, label, *args, **kwargs):
        self.steps += 1
        logit = self.lin(image.mean((2, 3))).squeeze(1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, label)
        if self.steps == 2:
            loss = loss * float("inf")
        return {
            "backward_loss": loss,
            "pred_label": torch.sigmoid(logit.float()),
            "visual_loss": {},
            "visual_image": {},
        }


def fake_loader(n_batches=4, b=4):
    g = torch.Generator().manual_seed(0)
    return [
        {
            "image": torch.randn(b, 3, 8, 8, generator=g),
            "label": torch.tensor([0.0, 1.0] * (b // 2)),
            "path": [f"{i}" for i in range(b)],
            "generator": [""] * b,
            "index": torch.arange(b),
            "skipped": [],
        }
        for _ in range(n_batches)
    ]


def test_float16_overflow_that_the_grad_scaler_skips_does_not_stop_training():
    model = SpikeModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    ctx = DistContext(torch.device("cpu"))
    weights = []
    model.lin.register_forward_pre_hook(lambda m, a: weights.append(m.weight.detach().clone()))
    result = train_one_epoch(
        model, fake_loader(), opt, None, scaler, ctx, 0, amp=AmpPolicy("cpu", None), show_progress=False
    )
    assert result.global_step == 4
    assert torch.equal(weights[1], weights[2])  # the overflowing step was skipped, the weights untouched
    assert not torch.equal(weights[2], weights[3]) and scaler.get_scale() < 65536.0
    # without a scaler (float32 / bfloat16) the same loss is an error
    from aigbench.engine.contract import NonFiniteLossError

    plain = SpikeModel()
    with pytest.raises(NonFiniteLossError, match="backward_loss is inf at epoch 0, step 1"):
        train_one_epoch(
            plain, fake_loader(), torch.optim.SGD(plain.parameters(), lr=0.1), None, None, ctx, 0, show_progress=False
        )


def test_amp_prefers_bfloat16_and_falls_back_to_float16_with_a_scaler(monkeypatch):
    assert not amp_policy(torch.device("cpu"), True).enabled
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: asked.append(d) or (8, 0))
    bf = amp_policy(torch.device("cuda", 1), True)
    assert bf.dtype == torch.bfloat16 and not bf.needs_scaler
    assert asked == [torch.device("cuda", 1)]  # the run's own GPU, not the current one
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (7, 0))  # V100: emulated bf16 only
    fp = amp_policy(torch.device("cuda", 0), True)
    assert fp.dtype == torch.float16 and fp.needs_scaler
    assert not amp_policy(torch.device("cuda", 0), False).enabled


def test_val_data_path_selects_and_validation_equal_to_test_is_refused(project, tmp_path):
    import shutil

    from test_trust_data import genimage_tree

    root = genimage_tree(tmp_path / "GenImage")

    def train(out, *flags):
        common = f"--data_path {root} --test_data_path {root} --epochs 2 --batch_size 8 --image_size 32".split()
        return script(project, "train.py", *common, *flags, "--output_dir", out, check=False)

    # GenImage's val/ is its test set: validating on it too would be selection on test
    proc = train("same", "--val_data_path", str(root))
    assert proc.returncode == 2 and "share 12 file(s)" in proc.stderr and "selection on test" in proc.stderr
    assert not (project / "same" / "checkpoint-0.pth").exists()
    # a separate validation tree (its val/ split) selects checkpoint-best.pth
    other = genimage_tree(tmp_path / "GenImageVal")
    for p in sorted(other.rglob("*.*")):
        if "/train/" not in str(p):
            p.rename(p.with_name("v_" + p.name))
    assert train("sel", "--val_data_path", str(other)).returncode == 0
    lines = [json.loads(x) for x in (project / "sel" / "log.jsonl").read_text().splitlines()]
    assert all(x["val_n"] == 12 for x in lines) and lines[0]["selected"]
    assert (project / "sel" / "checkpoint-best.pth").exists()
    assert "test_GenImage_accuracy" in lines[-1]
    # a fresh run into a folder that holds a run stops and overwrites nothing
    before = (project / "sel" / "checkpoint-1.pth").stat().st_mtime_ns
    proc = train("sel", "--val_split", "0.2")
    assert proc.returncode == 2 and "already holds a run" in proc.stderr and "--resume auto" in proc.stderr
    assert (project / "sel" / "checkpoint-1.pth").stat().st_mtime_ns == before
    # one-class validation data is refused
    (other / "Midjourney").rename(tmp_path / "mj")
    for p in list(other.rglob("nature")):
        shutil.rmtree(p)
    proc = train("onecls", "--val_data_path", str(other))
    assert proc.returncode == 2 and "validation data holds one class only" in proc.stderr


def test_a_model_parameter_named_like_a_framework_flag_is_refused(project):
    text = (
        (project / "mymodel.py")
        .read_text()
        .replace("dropout: float = 0.1", "lr: float = 0.1")
        .replace("nn.Dropout(dropout)", "nn.Dropout(lr)")
    )
    (project / "mymodel.py").write_text(text)
    proc = script(project, "train.py", "--epochs", "1", check=False)
    assert proc.returncode == 2 and "parameter 'lr' has the name of the framework flag --lr" in proc.stderr
    assert "Traceback" not in proc.stderr
