"""Issue 9's CPU-side logic: thread choice, checkpoint pruning."""

import pytest
import torch

from aigbench.engine import threads
from aigbench.engine.checkpoint import list_epoch_checkpoints, prune_checkpoints, save_checkpoint

from conftest import data_flags, script


def test_cgroup_quota_from_v2_and_v1_files(tmp_path):
    v2 = tmp_path / "cpu.max"
    v1 = (tmp_path / "quota", tmp_path / "period")
    v2.write_text("max 100000\n")
    assert threads.cgroup_cpu_quota(v2, v1) is None
    v2.write_text("150000 100000\n")
    assert threads.cgroup_cpu_quota(v2, v1) == 1.5
    v2.unlink()
    v1[0].write_text("-1\n")
    v1[1].write_text("100000\n")
    assert threads.cgroup_cpu_quota(v2, v1) is None
    v1[0].write_text("300000\n")
    assert threads.cgroup_cpu_quota(v2, v1) == 3.0


def test_threads_divide_the_usable_cpus_among_processes_and_workers(monkeypatch):
    monkeypatch.setattr(threads, "available_cpus", lambda: (16, "affinity 16 CPUs"))
    assert threads.choose_threads(None, 1, 0)[0] == 16
    assert threads.choose_threads(None, 4, 0)[0] == 4
    assert threads.choose_threads(None, 4, 2)[0] == 2
    assert threads.choose_threads(None, 8, 4)[0] == 1  # never 0
    assert threads.choose_threads(3, 8, 4) == (3, "--threads")
    monkeypatch.undo()
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: 1.5)  # a quota below the affinity set wins
    assert threads.available_cpus()[0] == min(2, len(threads.os.sched_getaffinity(0)))


def test_threads_leave_out_the_cpus_that_other_processes_keep_busy(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    cpus = sorted(threads.os.sched_getaffinity(0))[:2]
    head = "cpu  1 2 3 4 5 6 7 8 0 0\n"

    def snapshot(busy_jiffies: list[int], idle_jiffies: list[int]) -> str:
        # user nice system idle iowait irq softirq steal (steal is the hypervisor's: ignored)
        lines = [f"cpu{c} {b} 0 0 {i} 0 0 0 500 0 0" for c, b, i in zip(cpus, busy_jiffies, idle_jiffies)]
        return head + "\n".join(lines) + "\nintr 1 2 3\n"

    stat.write_text(snapshot([100, 100], [100, 100]))
    later = snapshot([100 + 95, 100 + 10], [100 + 5, 100 + 90])  # cpu A 95 % busy, cpu B 10 %
    busy = threads.busy_cpus(0.0, stat, sleep=lambda s: stat.write_text(later))
    assert busy == pytest.approx(0.95 + 0.10 if len(cpus) == 2 else 0.95)
    assert threads.busy_cpus(0.0, tmp_path / "missing") is None

    monkeypatch.setattr(threads, "available_cpus", lambda: (2, "affinity 2 CPUs"))
    assert threads.choose_threads(None, 1, 0, busy=0.05, affinity=2)[0] == 2  # idle: every CPU
    n, why = threads.choose_threads(None, 1, 0, busy=1.0, affinity=2)  # one competing process: the free CPU
    assert n == 1 and "1.0 CPU(s) busy with other processes" in why
    assert threads.choose_threads(4, 1, 0, busy=1.0, affinity=2) == (4, "--threads")  # the flag wins
    monkeypatch.setattr(threads, "available_cpus", lambda: (16, "affinity 16 CPUs"))
    assert threads.choose_threads(None, 1, 0, busy=3.2, affinity=16)[0] == 13
    # a cgroup quota of 4 CPUs on a 64-CPU node where others keep 30 busy: the quota's 4
    monkeypatch.setattr(threads, "available_cpus", lambda: (4, "cgroup quota 4 CPUs (affinity 64)"))
    assert threads.choose_threads(None, 1, 0, busy=30.0, affinity=64)[0] == 4


def test_busy_cpus_sees_a_competing_process():
    import subprocess
    import sys

    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.5)
        assert threads.busy_cpus(0.5) >= 0.6
    finally:
        hog.kill()


def test_keep_last_prunes_old_epochs_but_never_the_best(tmp_path):
    model = torch.nn.Linear(2, 1)
    for e in range(4):
        save_checkpoint(tmp_path, e, model)
    save_checkpoint(tmp_path, 1, model, name="checkpoint-best.pth")
    assert prune_checkpoints(tmp_path, 0) == []
    removed = prune_checkpoints(tmp_path, 2)
    assert [p.name for p in removed] == ["checkpoint-0.pth", "checkpoint-1.pth"]
    assert [p.name for p in list_epoch_checkpoints(tmp_path)] == ["checkpoint-2.pth", "checkpoint-3.pth"]
    assert (tmp_path / "checkpoint-best.pth").is_file()


def test_train_logs_its_thread_choice_and_keeps_the_last_checkpoints(project, subsets):
    proc = script(
        project,
        "train.py",
        *data_flags(subsets),
        "--epochs",
        "3",
        "--keep_last",
        "1",
        "--val_split",
        "0.2",
        "--threads",
        "1",
        "--output_dir",
        "kl",
    )
    assert "threads: 1 intra-op per process (--threads; OMP_WAIT_POLICY=PASSIVE)" in proc.stdout
    assert sorted(p.name for p in (project / "kl").glob("*.pth")) == ["checkpoint-2.pth", "checkpoint-best.pth"]


def test_uint8_batches_are_normalized_on_the_device_as_before(subsets):
    import json

    import numpy as np

    from aigbench.datasets.dataset import ImageDataset, build_loader, model_input
    from aigbench.datasets.layouts import Sample
    from aigbench.datasets.transforms import ImageTransform

    items = json.loads(subsets["test"].read_text())[:10]
    ds = ImageDataset([Sample(p, y, "") for p, y in items], ImageTransform(32, False))
    batch = next(iter(build_loader(ds, 10, train=False)))
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (10, 32, 32, 3)
    x = model_input(batch, torch.device("cpu"))
    expected = ds.transform.normalizer.batch(np.stack([ds[i]["image"] for i in range(10)]))
    assert x.dtype == torch.float32 and x.is_contiguous() and torch.allclose(x, expected, atol=1e-6)
    nhwc = model_input(batch, torch.device("cpu"), channels_last=True)
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and torch.equal(nhwc, x)


def test_compiled_and_channels_last_models_save_their_own_key_names(tmp_path):
    from aigbench.engine.checkpoint import load_checkpoint, unwrap
    from aigbench.engine.loop import channels_last_of

    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    assert not channels_last_of(conv)
    conv.to(memory_format=torch.channels_last)
    assert channels_last_of(conv)
    compiled = torch.compile(conv)
    assert unwrap(compiled) is conv
    save_checkpoint(tmp_path, 0, compiled)
    assert set(load_checkpoint(tmp_path / "checkpoint-0.pth")["model"]) == {"0.weight", "0.bias"}


def test_decoded_cache_in_ram_and_on_disk_returns_the_decoded_pixels(tmp_path, subsets):
    import json

    import numpy as np

    from aigbench.datasets.cache import build_cache
    from aigbench.datasets.layouts import Sample
    from aigbench.datasets.sources import load_image

    items = json.loads(subsets["test"].read_text())[:20]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    big = tmp_path / "big.png"  # a second size in the same cache
    import cv2

    cv2.imwrite(str(big), cv2.resize(cv2.imread(items[0][0]), (70, 50)))
    samples = [Sample(p, y, "") for p, y in items] + [Sample(str(broken), 0, ""), Sample(str(big), 1, "")]
    for mode in ("ram", "disk"):
        cache = build_cache(samples, mode, tmp_path / "cache", "test")
        for i, s in enumerate(samples):
            expected = load_image(s.path)
            if expected is None:
                assert cache[i] is None
            else:
                assert np.array_equal(cache[i], expected)
        assert cache[len(samples) - 1].shape == (50, 70, 3)
    assert (tmp_path / "cache" / "test.u8").is_file()
    again = build_cache(samples, "disk", tmp_path / "cache", "test")  # reused, not decoded again
    assert isinstance(again.buffer, np.memmap) and np.array_equal(again[3], load_image(samples[3].path))


def test_cached_training_equals_uncached_training(project, subsets):
    import json

    runs = {}
    for mode in ("none", "ram"):
        script(
            project,
            "train.py",
            *data_flags(subsets),
            "--epochs",
            "2",
            "--cache_decoded",
            mode,
            "--output_dir",
            f"c_{mode}",
            "--threads",
            "1",
        )
        runs[mode] = [json.loads(x) for x in (project / f"c_{mode}" / "log.jsonl").read_text().splitlines()]
    for a, b in zip(runs["none"], runs["ram"]):
        assert a["train_loss"] == b["train_loss"] and a["test_test_auroc"] == b["test_test_auroc"]


def test_sample_table_is_a_sequence_of_the_same_samples():
    import numpy as np

    from aigbench.datasets.layouts import Sample
    from aigbench.datasets.table import SampleTable

    samples = [
        Sample("a/ü.png", 0, "", "", "train"),
        Sample("b.jpg", 1, "sd", "cat", "train"),
        Sample("/x/c.webp#3", 1, "gan", "", "test"),
    ]
    table = SampleTable(samples)
    assert list(table) == samples and len(table) == 3 and table[-1] == samples[-1] and table[1:] == samples[1:]
    assert table.path(0) == "a/ü.png" and list(table.generators) == ["", "sd", "gan"]
    assert SampleTable.of(table) is table and list(SampleTable([])) == []
    # about 42 bytes an entry in flat arrays (a list of Sample tuples takes some 300)
    big = SampleTable([Sample(f"/data/gen/{i:07d}.png", i % 2, f"g{i % 5}") for i in range(100_000)])
    assert big.nbytes < 100_000 * 60 and big[99_999].path == "/data/gen/0099999.png"
    assert isinstance(big.labels, np.ndarray) and big.labels.dtype == np.int8


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    """A timm resnet18 weight file, as --pretrained_path of a probe."""
    import timm

    path = tmp_path_factory.mktemp("weights") / "resnet18_weights.pth"
    torch.manual_seed(0)
    torch.save(timm.create_model("resnet18", num_classes=0).state_dict(), path)
    return path


def test_frozen_backbone_checkpoints_hold_the_head_and_the_backbones_identity(tmp_path, resnet_weights):
    from aigbench.engine.checkpoint import CheckpointError, load_checkpoint, load_weights_into
    from aigbench.model_zoo.timm_backbone import TimmDetector

    probe = TimmDetector("resnet18", mode="probe", pretrained_path=str(resnet_weights), image_size=32)
    torch.nn.init.normal_(probe.head.weight)
    path = save_checkpoint(tmp_path, 0, probe)
    state = load_checkpoint(path)
    assert set(state["model"]) == {"head.weight", "head.bias"}
    identity = state["frozen"]["identity"]
    assert identity["backbone"] == "resnet18" and identity["file"] == "resnet18_weights.pth"
    assert identity["bytes"] == resnet_weights.stat().st_size and len(identity["sha256_head_tail"]) == 64
    again = TimmDetector("resnet18", mode="probe", pretrained_path=str(resnet_weights), image_size=32)
    load_weights_into(again, path)
    for k, v in probe.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k
    import timm

    twin = tmp_path / "other" / "resnet18_weights.pth"  # same name and size, other weights
    twin.parent.mkdir()
    torch.manual_seed(1)
    torch.save(timm.create_model("resnet18", num_classes=0).state_dict(), twin)
    assert twin.stat().st_size == resnet_weights.stat().st_size
    other = TimmDetector("resnet18", mode="probe", pretrained_path=str(twin), image_size=32)
    with pytest.raises(CheckpointError, match="frozen backbone"):
        load_weights_into(other, path)
    random_probe = TimmDetector("resnet18", mode="probe", image_size=32)  # no weight file: saved whole
    assert "backbone.conv1.weight" in load_checkpoint(save_checkpoint(tmp_path, 2, random_probe))["model"]
    tuned = TimmDetector("resnet18", mode="tune", image_size=32)
    assert "backbone.conv1.weight" in load_checkpoint(save_checkpoint(tmp_path, 1, tuned))["model"]


def test_cache_features_trains_the_head_on_features_computed_once(project, subsets, resnet_weights):
    import json

    flags = [
        *data_flags(subsets),
        "--model",
        "TimmDetector",
        "--backbone",
        "resnet18",
        "--mode",
        "probe",
        "--pretrained_path",
        str(resnet_weights),
        "--image_size",
        "32",
        "--epochs",
        "3",
        "--no-hflip",
        "--val_split",
        "0.2",
        "--threads",
        "1",
        "--lr",
        "1e-2",
    ]
    logs = {}
    for cached in (False, True):
        out = f"probe_{cached}"
        proc = script(project, "train.py", *flags, "--output_dir", out, *(["--cache_features"] if cached else []))
        logs[cached] = [json.loads(x) for x in (project / out / "log.jsonl").read_text().splitlines()]
        if cached:
            assert "features [512] of 480 training images computed once" in proc.stdout
    for a, b in zip(logs[False], logs[True]):  # the same head training, up to float rounding
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-4)
        assert a["val_auroc"] == pytest.approx(b["val_auroc"], abs=1e-3)
    ckpt = torch.load(project / "probe_True" / "checkpoint-2.pth", weights_only=True)
    assert set(ckpt["model"]) == {"head.weight", "head.bias"}
    script(project, "test.py", "--output_dir", "probe_True", "--test_data_json", str(subsets["test"]), "--threads", "1")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_node_run(project, script_name: str, *args: str) -> None:
    """``script_name`` under two torchrun agents (``--nnodes 2``, one process each) that meet
    through torchrun's c10d rendezvous on 127.0.0.1, as two machines would."""
    import os
    import subprocess
    import sys

    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--nproc_per_node",
        "1",
        "--rdzv_backend",
        "c10d",
        "--rdzv_endpoint",
        f"127.0.0.1:{port}",
        "--rdzv_id",
        f"t{port}",
        script_name,
        "--device",
        "cpu",
        "--threads",
        "1",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    agents = [
        subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outs = [a.communicate(timeout=600)[0] for a in agents]
    assert all(a.returncode == 0 for a in agents), "\n----\n".join(o[-3000:] for o in outs)


def test_two_nodes_by_torchrun_rendezvous_train_and_test_like_one_process(project, subsets):
    import json

    _two_node_run(
        project, "train.py", *data_flags(subsets), "--epochs", "1", "--val_split", "0.2", "--output_dir", "nodes"
    )
    cfg = json.loads((project / "nodes" / "config.json").read_text())
    assert cfg["world_size"] == 2 and (project / "nodes" / "checkpoint-0.pth").is_file()
    test_flags = ["--output_dir", "nodes", "--test_data_json", str(subsets["test"]), "--checkpoint", "0"]
    _two_node_run(project, "test.py", *test_flags)
    two = json.loads((project / "nodes" / "test" / "checkpoint-0" / "test" / "metrics.json").read_text())
    script(project, "test.py", *test_flags, "--device", "cpu", "--threads", "1")
    one = json.loads((project / "nodes" / "test" / "checkpoint-0" / "test" / "metrics.json").read_text())
    assert one["metrics"]["n"] == two["metrics"]["n"] == 201  # every image exactly once
    assert one["metrics"] == two["metrics"]


def test_channels_last_by_default_on_cuda_and_for_large_inputs_on_the_cpu():
    import argparse

    from aigbench.engine.build import CHANNELS_LAST_CPU_MIN_SIZE, use_channels_last
    from aigbench.engine.dist import DistContext

    def args(**kw):
        base = dict(model="TimmDetector", backbone="resnet18", image_size=None, resize_mode=None, channels_last=None)
        return argparse.Namespace(**{**base, **kw})

    cpu = DistContext(torch.device("cpu"))
    assert use_channels_last(args(), cpu)  # the model's own 224 px
    assert not use_channels_last(args(image_size=32), cpu)
    assert use_channels_last(args(image_size=CHANNELS_LAST_CPU_MIN_SIZE), cpu)
    assert not use_channels_last(args(image_size=224, channels_last=False), cpu)  # the flag wins
    assert use_channels_last(args(image_size=32, channels_last=True), cpu)
    assert use_channels_last(args(image_size=32), DistContext(torch.device("cuda", 0)))
