"""Splits that keep copies together, fractions of the whole, and a test set that can be switched
off (issue 17, point 3). The data is a CIFAKE-shaped folder ``{REAL,FAKE}`` of the embedded
demo images (real photos and Stable Diffusion images), with the byte-identical copies and
re-encoded near-copies that web-scraped sets hold."""

from __future__ import annotations

import csv
import os
import shutil
from collections import Counter
from pathlib import Path

import cv2
import pytest

from aigbench.datasets.layouts import DEMO_ROOT, load_samples
from aigbench.datasets.splits import content_groups, split_three

from conftest import script


def own_data(root: Path, with_test: bool = False) -> Path:
    """``root/{REAL,FAKE}`` (or ``root/{train,test}/{REAL,FAKE}``) of demo images, where 10 images
    of each class have a byte-identical copy and 5 a re-encoded, enlarged near-copy."""
    for cls in ("REAL", "FAKE"):
        names = sorted(os.listdir(DEMO_ROOT / "train" / cls))
        dest = root / ("train" if with_test else "") / cls
        dest.mkdir(parents=True)
        for n in names[:150]:
            shutil.copy(DEMO_ROOT / "train" / cls / n, dest / n)
        for n in names[:10]:
            shutil.copy(DEMO_ROOT / "train" / cls / n, dest / f"copy of {n}")
        for n in names[10:15]:
            img = cv2.imread(str(DEMO_ROOT / "train" / cls / n))
            big = cv2.resize(img, (64, 64), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(dest / f"{Path(n).stem}_large.png"), big)
        if with_test:
            test = root / "test" / cls
            test.mkdir(parents=True)
            for n in sorted(os.listdir(DEMO_ROOT / "test" / cls))[:20]:
                shutil.copy(DEMO_ROOT / "test" / cls / n, test / n)
    return root


def test_copies_and_near_copies_share_a_group(tmp_path):
    samples = load_samples(own_data(tmp_path / "wild"))
    groups = content_groups(samples)
    sizes = Counter(Counter(groups).values())
    assert sizes[2] == 30  # 20 byte-identical pairs and 10 enlarged PNG near-copies of JPEGs
    by_name = {Path(s.path).name: g for s, g in zip(samples, groups)}
    some = sorted(os.listdir(DEMO_ROOT / "train" / "REAL"))[12]
    assert by_name[some] == by_name[f"{Path(some).stem}_large.png"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_group_straddles_splits_and_fractions_are_of_the_whole(tmp_path, seed):
    samples = load_samples(own_data(tmp_path / "wild"))
    train, val, test = split_three(samples, 0.1, 0.2, seed)
    groups = content_groups(samples)
    part = {}
    for name, idx in (("train", train), ("val", val), ("test", test)):
        for i in idx:
            assert part.setdefault(groups[i], name) == name, f"a copy of {samples[i].path} is in two splits"
    n = len(samples)
    assert sorted(train + val + test) == list(range(n))
    assert abs(len(test) - 0.2 * n) <= 4 and abs(len(val) - 0.1 * n) <= 4  # 70/10/20, not 72/8/20
    assert split_three(samples, 0.1, 0.2, seed) == (train, val, test)


def read_split_csv(out: Path) -> Counter:
    with open(out / "val_split.csv", newline="") as f:
        return Counter(r["split"] for r in csv.DictReader(f))


def test_own_data_is_never_tested_on_the_demo_and_splits_are_of_the_whole(project, tmp_path):
    data = own_data(tmp_path / "wild")
    out = project / "out"
    flags = ["--epochs", "1", "--batch_size", "16", "--no_progress", "--image_size", "32"]
    script(project, "train.py", "--data_path", str(data), "--val_split", "0.1", "--test_split", "0.2",
           "--output_dir", str(out), *flags)  # fmt: skip
    counts = read_split_csv(out)
    n = sum(counts.values())
    assert abs(counts["test"] - 0.2 * n) <= 4 and abs(counts["val"] - 0.1 * n) <= 4
    assert sorted(p.name for p in (out / "test" / "checkpoint-0").iterdir()) == ["heldout"]  # no demo

    with_test = own_data(tmp_path / "with_test", with_test=True)
    out2 = project / "out2"
    script(project, "train.py", "--data_path", str(with_test), "--val_split", "0.1", "--output_dir", str(out2), *flags)
    tested = [p.name for p in (out2 / "test" / "checkpoint-0").iterdir()]
    assert tested == ["with_test"]  # auto: the data's own test/ split

    out3 = project / "out3"
    script(project, "train.py", "--data_path", str(with_test), "--val_split", "0.1", "--test_data_path", "",
           "--output_dir", str(out3), *flags)  # fmt: skip
    assert not (out3 / "test").exists()
