"""Every result says what produced it (issue 17, point 6).

A run of the generated project is trained and tested on a GenImage-shaped tree
(``<Gen>/<sub>/{train,val}/{ai,nature}``, fakes as PNG, reals as ImageNet-style JPEGs, made from
the embedded demo images): GenImage ships no test/, so its val/ folders are the test set and
the result must say so.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import cv2
import pytest

from aigbench.datasets.layouts import DEMO_ROOT

from conftest import script

pytestmark = pytest.mark.slow

GENERATORS = {"BigGAN": "imagenet_ai_0419_biggan", "ADM": "imagenet_ai_0508_adm"}


def genimage(root: Path) -> Path:
    k = 0
    for gen, sub in GENERATORS.items():
        for split, n in (("train", 40), ("val", 10)):
            for cls, folder in (("ai", "FAKE"), ("nature", "REAL")):
                dest = root / gen / sub / split / cls
                dest.mkdir(parents=True)
                names = sorted(os.listdir(DEMO_ROOT / "train" / folder))[k : k + n]
                for i, name in enumerate(names):
                    img = cv2.resize(cv2.imread(str(DEMO_ROOT / "train" / folder / name)), (64, 64))
                    if cls == "ai":
                        cv2.imwrite(str(dest / f"{i}_{gen.lower()}_{k + i}.png"), img)
                    else:
                        cv2.imwrite(str(dest / f"n0144076{i % 10}_{k + i}.JPEG"), img)
        k += 50
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from conftest import bench

    project = tmp_path_factory.mktemp("proj")
    bench("init", cwd=project)
    data = genimage(tmp_path_factory.mktemp("data") / "GenImage")
    out = project / "out"
    script(project, "train.py", "--data_path", str(data), "--test_data_path", str(data), "--epochs", "1",
           "--batch_size", "16", "--image_size", "32", "--no_progress", "--output_dir", str(out))  # fmt: skip
    return project, data, out


def metrics_of(out: Path, folder: str = "GenImage") -> dict:
    return json.loads((out / "test" / "checkpoint-0" / folder / "metrics.json").read_text())


def test_metrics_json_records_data_preprocessing_checkpoint_and_versions(trained):
    project, data, out = trained
    m = metrics_of(out)
    prov = m["provenance"]
    assert prov["data"]["path"] == str(data) and prov["data"]["layout"] == "GenImage"
    assert prov["data"]["splits_read"] == ["val"]
    assert any("val/ used as the test set" in n for n in prov["data"]["notes"])
    assert any("val/ used as the test set" in n for n in m["notes"])
    assert prov["data"]["counts"] == {"ADM": {"real": 10, "fake": 10}, "BigGAN": {"real": 10, "fake": 10}}
    with open(out / "test" / "checkpoint-0" / "GenImage" / "predictions.csv", newline="") as f:
        paths = sorted(os.path.abspath(r["path"]) for r in csv.DictReader(f))
    assert prov["data"]["file_list_sha256"] == hashlib.sha256("\n".join(paths).encode()).hexdigest()
    assert prov["preprocess"]["input_size"] == 32 and prov["preprocess"]["pad_mode"] == "constant"
    assert len(prov["preprocess"]["mean"]) == 3 and prov["preprocess"]["interpolation"]
    ckpt = out / "checkpoint-0.pth"
    assert prov["checkpoint"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert prov["threshold"]["value"] == 0.5
    assert {"aigbench", "torch", "timm", "torchvision"} <= set(prov["versions"])


def test_a_flag_that_differs_from_training_is_named(trained):
    project, data, out = trained
    proc = script(project, "test.py", "--output_dir", str(out), "--checkpoint", "last", "--image_size", "48",
                  "--test_data_json", str(write_sets(project, data)), "--no_progress")  # fmt: skip
    assert "--image_size 48 (trained with 32)" in proc.stderr + proc.stdout
    m = metrics_of(out)
    assert m["differs_from_training"] == {"image_size": {"trained": 32, "now": 48}}
    assert m["provenance"]["preprocess"]["input_size"] == 48


def write_sets(project: Path, data: Path) -> Path:
    p = project / "sets.json"
    p.write_text(json.dumps({"GenImage": str(data)}))
    return p


def test_aligned_results_go_beside_the_raw_result(trained):
    project, data, out = trained
    sets = str(write_sets(project, data))
    script(project, "test.py", "--output_dir", str(out), "--checkpoint", "last", "--test_data_json", sets,
           "--no_progress")  # fmt: skip
    raw = metrics_of(out)
    script(project, "test.py", "--output_dir", str(out), "--checkpoint", "last", "--test_data_json", sets,
           "--align_format", "jpeg:96", "--no_progress")  # fmt: skip
    aligned = metrics_of(out, "GenImage+align_jpeg-96")
    assert aligned["align_format"] == "jpeg:96" and raw["align_format"] is None
    assert metrics_of(out)["align_format"] is None  # the raw result is still there, unchanged
    assert metrics_of(out)["metrics"] == raw["metrics"]
