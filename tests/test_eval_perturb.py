"""--eval_perturb: AI-GenBench's mandatory evaluation distortions (and any fixed chain) on every
validation and test image, recorded in the results, never in bench predict or robustness sweeps."""

from __future__ import annotations

import csv
import json
import os

import cv2
import numpy as np
import pytest

from aigbench.errors import ConfigError
from aigbench.imageops.perturbations import AIGenBenchChain

from conftest import bench, cifake_subset, need_cifake, script


def photos(n, h=600, w=800):
    root = need_cifake() / "test" / "FAKE"
    files = sorted(os.listdir(root))[:n]
    return [cv2.resize(cv2.cvtColor(cv2.imread(str(root / f)), cv2.COLOR_BGR2RGB), (w, h)) for f in files]


def test_aigenbench_chain_applies_each_step_at_its_probability():
    chain = AIGenBenchChain(1.0)
    imgs = photos(300)
    outs = [chain(img) for img in imgs]
    assert all(np.array_equal(chain(img), out) for img, out in zip(imgs[:5], outs[:5]))  # seeded per image
    resized = [o for o in outs if o.shape[0] == o.shape[1]]  # the random resized crop gives a square
    assert 0.17 < len(resized) / len(outs) < 0.33  # p = 0.25
    assert all(256 <= o.shape[0] <= 512 for o in resized)
    gray = [o for o in outs if np.array_equal(o[..., 0], o[..., 1]) and np.array_equal(o[..., 1], o[..., 2])]
    assert 0.04 < len(gray) / len(outs) < 0.17  # p = 0.1
    untouched = [o for o, i in zip(outs, imgs) if o.shape == i.shape and np.array_equal(o, i)]
    # nothing at all: no grayscale, no JPEG (x3), no noise, no crop: 0.9*0.5*0.7*0.8*0.75*0.9 = 0.17
    assert 0.1 < len(untouched) / len(outs) < 0.25
    big = np.zeros((1500, 1300, 3), np.uint8)
    assert max(chain(big).shape[:2]) <= 1080
    assert np.array_equal(AIGenBenchChain(0.0)(imgs[0]), imgs[0])


def test_eval_perturb_spec_is_checked():
    from aigbench.engine.build import eval_perturbation

    assert eval_perturbation("jpeg:75>resize:0.5").spec == "jpeg:75>resize:0.5"
    with pytest.raises(ConfigError, match="give every step a strength"):
        eval_perturbation("jpeg")
    with pytest.raises(ConfigError, match="--eval_perturb 'sharpen:1'"):
        eval_perturbation("sharpen:1")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalperturb")
    bench("init", cwd=root)
    (root / "train.json").write_text(json.dumps(cifake_subset("train", 100)))
    (root / "test.json").write_text(json.dumps(cifake_subset("test", 60)))
    (root / "test_datasets.json").write_text(json.dumps({"cifake": str(root / "test.json")}))
    return root


def scores(path):
    with open(path, newline="") as f:
        return {r["path"]: float(r["score"]) for r in csv.DictReader(f)}


def test_validation_and_test_see_the_chain_and_record_it(project):
    common = [
        "--data_path",
        "train.json",
        "--test_data_path",
        "test.json",
        "--val_split",
        "0.2",
        "--epochs",
        "1",
        "--width",
        "8",
        "--device",
        "cpu",
    ]
    script(project, "train.py", *common, "--output_dir", "run", "--eval_perturb", "jpeg:30")
    config = json.loads((project / "run" / "config.json").read_text())
    assert config["eval_perturb"] == "jpeg:30"
    script(project, "test.py", "--output_dir", "run", "--device", "cpu")  # inherits the run's chain
    res = project / "run" / "test" / "checkpoint-best" / "cifake"
    metrics = json.loads((res.with_name("cifake+perturb_jpeg-30") / "metrics.json").read_text())  # beside the raw
    assert metrics["eval_perturb"] == "jpeg:30"
    perturbed = scores(res.with_name("cifake+perturb_jpeg-30") / "predictions.csv")
    script(project, "test.py", "--output_dir", "run", "--device", "cpu", "--eval_perturb", "")
    clean = scores(res / "predictions.csv")
    assert json.loads((res / "metrics.json").read_text())["eval_perturb"] is None
    assert perturbed.keys() == clean.keys() and any(abs(perturbed[k] - clean[k]) > 1e-4 for k in clean)
    # bench predict scores the files as they are
    folder = project / "imgs"
    folder.mkdir()
    path = next(iter(clean))
    (folder / "a.jpg").write_bytes(open(path, "rb").read())
    bench("predict", str(folder), "--run", "run", "--out", "preds.csv", "--device", "cpu", cwd=project)
    pred = scores(project / "preds.csv")
    assert list(pred.values())[0] == pytest.approx(clean[path], abs=1e-5)
    # a robustness sweep starts from the clean images; asking for both is an error
    robust = project / "test_robust.py"
    text = robust.read_text()
    start, end = text.index("GRID = {"), text.index("}\n", text.index("GRID = {")) + 2
    robust.write_text(text[:start] + 'GRID = {"jpeg": [100, 50]}\n' + text[end:])
    script(project, "test_robust.py", "--output_dir", "run", "--device", "cpu")
    proc = script(
        project,
        "test_robust.py",
        "--output_dir",
        "run",
        "--device",
        "cpu",
        "--eval_perturb",
        "aigenbench:1",
        check=False,
    )
    assert proc.returncode == 2 and "already perturbed by --eval_perturb" in proc.stderr
