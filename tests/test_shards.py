"""Sharded data (WebDataset tar shards, sharded parquet) read shard by shard: every process and
loader worker reads its own shards, evaluation counts each image once, built from cifake-mini."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch

from aigbench.datasets.layouts import load_samples
from aigbench.datasets.shards import ShardBatchSampler

from conftest import need_cifake, run, script


def cifake_rows(split, n):
    root = need_cifake() / split
    rows = []
    for cls, label in (("REAL", 0), ("FAKE", 1)):
        for f in sorted(os.listdir(root / cls))[:n]:
            rows.append((root / cls / f, label))
    rng = np.random.default_rng(0)
    return [rows[i] for i in rng.permutation(len(rows))]  # shards mix both classes, as shipped


def write_tar_shards(folder, rows, per_shard, prefix="train"):
    """WebDataset shards written by webdataset's own ``ShardWriter`` (``<prefix>-000000.tar``, each
    sample ``<key>.jpg`` with ``<key>.cls`` and ``<key>.json``)."""
    wds = pytest.importorskip("webdataset")
    folder.mkdir(parents=True, exist_ok=True)
    with wds.ShardWriter(str(folder / f"{prefix}-%06d.tar"), maxcount=per_shard, verbose=0) as sink:
        for i, (path, label) in enumerate(rows):
            meta = {"generator": "stable_diffusion" if label else "", "source": "cifake"}
            sink.write({"__key__": f"{i:08d}", "jpg": path.read_bytes(), "cls": label, "json": meta})
    return folder


def write_parquet_shards(folder, rows, per_shard, prefix="test"):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    n = -(-len(rows) // per_shard)
    for s in range(n):
        part = rows[s * per_shard : (s + 1) * per_shard]
        table = pa.table(
            {"image": [{"bytes": p.read_bytes(), "path": p.name} for p, _ in part], "label": [y for _, y in part]}
        )
        pq.write_table(table, folder / f"{prefix}-{s:05d}-of-{n:05d}.parquet", row_group_size=8)
    return folder


def test_webdataset_shards_are_a_layout(tmp_path):
    rows = cifake_rows("train", 20)
    root = write_tar_shards(tmp_path / "wds", rows, 10)
    samples = load_samples(str(root), None, "auto")
    assert len(samples) == 40 and [s.label for s in samples] == [y for _, y in rows]
    assert {s.generator for s in samples if s.label} == {"stable_diffusion"} and all(
        s.split == "train" for s in samples
    )
    import cv2

    from aigbench.datasets.sources import load_image

    want = cv2.cvtColor(cv2.imread(str(rows[13][0])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(load_image(samples[13].path), want)  # the bytes of the right member


@pytest.mark.parametrize("train", [False, True])
def test_each_process_and_worker_reads_its_own_shards(train):
    files = np.repeat(np.arange(8), [30, 25, 40, 10, 35, 30, 20, 50])  # 8 shards of unequal sizes
    world, workers, bs = 2, 2, 8
    seen_files, seen_rows, lengths = [], [], []
    for rank in range(world):
        sampler = ShardBatchSampler(files, bs, train, workers, rank, world, seed=3)
        sampler.set_epoch(1)
        batches = list(sampler)
        lengths.append(len(batches))
        assert len(batches) == len(sampler) and len(batches) % workers == 0 and all(len(b) == bs for b in batches)
        for w in range(workers):
            rows = np.concatenate([batches[j] for j in range(w, len(batches), workers)])
            seen_files.append(set(files[rows].tolist()))
            seen_rows.append(rows)
    assert len(set(lengths)) == 1  # DDP: every process takes the same number of steps
    if not train:  # evaluation: (rank, worker) readers never share a shard; every row read
        for a in range(len(seen_files)):
            for b in range(a + 1, len(seen_files)):
                assert not seen_files[a] & seen_files[b]
        assert set(np.concatenate(seen_rows).tolist()) == set(range(len(files)))
    else:  # training: readers share at most the shards at the ends of their runs; reshuffled by epoch
        for a in range(len(seen_files)):
            others = set().union(*(seen_files[b] for b in range(len(seen_files)) if b != a))
            assert len(seen_files[a] & others) <= 2
        s0 = ShardBatchSampler(files, bs, True, workers, 0, world, seed=3)
        assert [b for b in s0] != [b for b in (s0.set_epoch(2) or s0)]


@pytest.mark.parametrize("workers", [2, 5])
def test_training_draws_every_row_once_per_epoch_whatever_the_shard_sizes(workers):
    """Four 100-row shards and a 7-row tail: each row is drawn once, up to one batch of fill-up."""
    files = np.repeat(np.arange(5), [100, 100, 100, 100, 7])
    bs = 8
    for epoch in range(3):
        draws = np.zeros(len(files), dtype=int)
        for rank in range(2):
            sampler = ShardBatchSampler(files, bs, True, workers, rank, 2, seed=1)
            sampler.set_epoch(epoch)
            for batch in sampler:
                np.add.at(draws, batch, 1)
        assert (draws >= 1).all()  # no row skipped (was ~18 % with 5 workers)
        assert draws.max() <= 2 and (draws == 2).sum() < bs * 2 * workers  # only last-batch fill-up repeats


def test_fewer_shards_than_readers_split_rows():
    files = np.repeat(np.arange(2), [21, 19])
    rows = [np.concatenate(list(ShardBatchSampler(files, 4, False, 4, r, 2))) for r in range(2)]
    assert set(np.concatenate(rows).tolist()) == set(range(40))


def test_loader_workers_open_only_their_shards(tmp_path, monkeypatch):
    from aigbench.datasets import sources
    from aigbench.datasets.dataset import ImageDataset, build_loader
    from aigbench.datasets.transforms import ImageTransform

    root = write_tar_shards(tmp_path / "wds", cifake_rows("train", 40), 10)  # 8 shards
    log = tmp_path / "reads.txt"
    original = sources._tar_row

    def logged(file, row):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {os.path.basename(file)}\n")
        return original(file, row)

    monkeypatch.setattr(sources, "_tar_row", logged)  # forked workers inherit it
    ds = ImageDataset(load_samples(str(root), None, "auto"), ImageTransform(32, False), "wds")
    loader = build_loader(ds, 8, False, num_workers=2)
    seen = [int(i) for b in loader for i in b["index"]]
    assert set(seen) == set(range(80))
    readers: dict[str, set] = {}
    for line in log.read_text().splitlines():
        pid, name = line.split()
        readers.setdefault(name, set()).add(pid)
    assert len(readers) == 8 and all(len(p) == 1 for p in readers.values())  # one worker per shard
    assert len({p for ps in readers.values() for p in ps}) == 2
    # training reads shard by shard only when asked (--stream_shards): the shards must be shuffled
    assert not isinstance(build_loader(ds, 8, True).batch_sampler, ShardBatchSampler)
    assert isinstance(build_loader(ds, 8, True, stream_shards=True).batch_sampler, ShardBatchSampler)


@pytest.mark.slow
def test_train_on_tar_shards_and_test_on_parquet_shards_with_two_processes(project, tmp_path):
    train = write_tar_shards(tmp_path / "wds_train", cifake_rows("train", 100), 25)  # 8 shards
    test = write_parquet_shards(tmp_path / "pq_test", cifake_rows("test", 45), 15, prefix="test")  # 6 shards
    (tmp_path / "tests.json").write_text(json.dumps({"pq": str(test)}))
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    common = ["--device", "cpu", "--num_workers", "2", "--batch_size", "16"]
    run(
        [
            *cmd,
            "train.py",
            "--data_path",
            str(train),
            "--test_data_path",
            str(tmp_path / "tests.json"),
            "--epochs",
            "1",
            "--stream_shards",
            "--width",
            "8",
            "--output_dir",
            str(out),
            *common,
        ],
        cwd=project,
        env={"OMP_NUM_THREADS": "1"},
    )
    res = out / "test" / "checkpoint-0" / "pq"
    metrics = json.loads((res / "metrics.json").read_text())["metrics"]
    with open(res / "predictions.csv") as f:
        paths = [line.split(",")[0] for line in f.read().splitlines()[1:]]
    assert metrics["n"] == len(paths) == len(set(paths)) == 90  # each test image once
    # the same checkpoint tested by one process gives the same metrics
    script(
        project,
        "test.py",
        "--output_dir",
        str(out),
        "--test_data_json",
        str(tmp_path / "tests.json"),
        "--checkpoint",
        str(out / "checkpoint-0.pth"),
        *common,
    )
    single = json.loads((res / "metrics.json").read_text())["metrics"]
    assert single["n"] == 90 and single["auroc"] == pytest.approx(metrics["auroc"], abs=1e-6)
    torch.load(out / "checkpoint-0.pth", weights_only=True)
