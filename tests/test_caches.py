"""Caches that are never stale (issue 18, point 4), with the files really replaced between runs."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from aigbench.datasets.cache import build_cache
from aigbench.datasets.layouts import DEMO_ROOT, load_samples

from conftest import script


def demo_folder(root: Path, n: int = 6) -> Path:
    for cls in ("REAL", "FAKE"):
        (root / cls).mkdir(parents=True)
        for name in sorted(os.listdir(DEMO_ROOT / "test" / cls))[:n]:
            shutil.copy(DEMO_ROOT / "test" / cls / name, root / cls / name)
    return root


def test_a_disk_cache_decodes_a_file_replaced_in_place_and_a_repaired_one(tmp_path):
    data = demo_folder(tmp_path / "data")
    broken = data / "REAL" / "broken.jpg"
    broken.write_text("not an image")
    samples = load_samples(data)
    cache = build_cache(samples, "disk", tmp_path / "cache", "train")
    k = next(i for i, s in enumerate(samples) if s.path == str(broken))
    assert cache[k] is None
    # replace one photo in place (same path, same size class of file), repair the broken one
    victim = next(i for i, s in enumerate(samples) if s.label == 1)
    other = sorted(os.listdir(DEMO_ROOT / "train" / "FAKE"))[0]
    time.sleep(0.01)
    shutil.copy(DEMO_ROOT / "train" / "FAKE" / other, samples[victim].path)
    shutil.copy(DEMO_ROOT / "train" / "REAL" / sorted(os.listdir(DEMO_ROOT / "train" / "REAL"))[0], broken)
    again = build_cache(samples, "disk", tmp_path / "cache", "train")
    want = cv2.cvtColor(cv2.imread(str(DEMO_ROOT / "train" / "FAKE" / other)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(again[victim], want)  # not the old pixels
    assert again[k] is not None  # the repaired file decodes
    same = build_cache(samples, "disk", tmp_path / "cache", "train")  # nothing changed: reused
    assert np.array_equal(same[victim], want)


@pytest.mark.slow
def test_cached_features_are_of_the_training_transform_not_the_evaluation_distortions(project, tmp_path):
    import timm
    import torch

    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(timm.create_model("resnet18", num_classes=0).state_dict(), weights)
    flags = [
        *("--pretrained_path", str(weights), "--data_path", "aigbench:demo", "--val_split", "0.2"),
        *("--model", "TimmDetector", "--backbone", "resnet18", "--mode", "probe", "--image_size", "32"),
        *("--epochs", "2", "--no-hflip", "--threads", "1", "--eval_perturb", "jpeg:30"),
        *("--test_data_path", "none", "--no_progress"),
    ]
    logs = {}
    for cached in (False, True):
        out = project / f"probe_{cached}"
        script(project, "train.py", *flags, "--output_dir", str(out), *(["--cache_features"] if cached else []))
        logs[cached] = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    for a, b in zip(logs[False], logs[True]):  # the head trains on the same (undistorted) features
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-4)
