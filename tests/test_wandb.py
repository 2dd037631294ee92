"""--wandb: every scalar that TensorBoard gets also goes to Weights & Biases, offline, inside the run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import data_flags, script

# A stand-in for the wandb package that records what the logger sends (the real offline run
# below checks the real package; its binary run file has no reader in wandb's Python API).
RECORDING_WANDB = """
import json, os
_log = os.environ["WANDB_RECORD"]
def _write(kind, **kw):
    with open(_log, "a") as f:
        f.write(json.dumps({"kind": kind, **kw}) + "\\n")
class Settings:
    def __init__(self, **kw): pass
class _Run:
    def define_metric(self, name, step_metric=None): _write("define", name=name, step_metric=step_metric)
    def log(self, values): _write("log", values=values)
    def finish(self): _write("finish")
def init(**kw):
    _write("init", **{k: v for k, v in kw.items() if k != "settings"})
    return _Run()
"""


def tensorboard_scalars(run_dir: Path, phase: str) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard" / phase))
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def test_wandb_mirrors_every_tensorboard_scalar(project, subsets, tmp_path):
    fake = tmp_path / "fake_wandb"
    fake.mkdir()
    (fake / "wandb.py").write_text(RECORDING_WANDB)
    record = tmp_path / "wandb_calls.jsonl"
    out = project / "output_dir" / "wb"
    script(
        project,
        "train.py",
        *data_flags(subsets),
        "--val_split",
        "0.2",
        "--epochs",
        "2",
        "--batch_size",
        "64",
        "--image_size",
        "32",
        "--log_every",
        "2",
        "--output_dir",
        str(out),
        "--wandb",
        "--device",
        "cpu",
        env={"PYTHONPATH": str(fake), "WANDB_RECORD": str(record)},
    )
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    init = calls[0]
    assert init["kind"] == "init" and init["mode"] == "offline" and init["dir"] == str(out)
    assert init["config"]["epochs"] == 2 and init["config"]["image_size"] == 32
    assert calls[-1]["kind"] == "finish"
    axes = {c["name"]: c["step_metric"] for c in calls if c["kind"] == "define"}
    logged: dict[str, list[tuple[int, float]]] = {}
    for c in calls:
        if c["kind"] == "log":
            values = dict(c["values"])
            axis = next(k for k in values if k.endswith("step") and k in axes)
            step = values.pop(axis)
            for k, v in values.items():
                assert axes.get(k.rsplit("/", 1)[0] + "/*") == axis
                logged.setdefault(k, []).append((step, v))
    tb = tensorboard_scalars(out, "train")
    assert tb, "TensorBoard got no scalars"
    assert set(logged) == set(tb)
    for tag, points in tb.items():
        assert [s for s, _ in logged[tag]] == [s for s, _ in points], tag
        assert [v for _, v in logged[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag


def test_wandb_offline_run_stays_in_the_output_folder(project, subsets, tmp_path):
    pytest.importorskip("wandb")
    home = tmp_path / "home"
    home.mkdir()
    out = project / "output_dir" / "wb"
    script(
        project,
        "train.py",
        *data_flags(subsets),
        "--val_split",
        "0.2",
        "--epochs",
        "1",
        "--batch_size",
        "128",
        "--image_size",
        "32",
        "--output_dir",
        str(out),
        "--wandb",
        "--device",
        "cpu",
        env={"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config")},
    )
    runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and runs[0].stat().st_size > 0
    assert not any(home.rglob("*")), f"wandb wrote outside the output folder: {list(home.rglob('*'))}"


def test_wandb_missing_package_is_a_clear_error(project, subsets, tmp_path):
    blocker = tmp_path / "no_wandb"
    blocker.mkdir()
    (blocker / "wandb.py").write_text("raise ImportError('no wandb here')\n")
    proc = script(
        project,
        "train.py",
        *data_flags(subsets),
        "--val_split",
        "0.2",
        "--epochs",
        "1",
        "--image_size",
        "32",
        "--output_dir",
        "output_dir/nowb",
        "--wandb",
        "--device",
        "cpu",
        check=False,
        env={"PYTHONPATH": str(blocker)},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--wandb needs the wandb package" in proc.stderr
