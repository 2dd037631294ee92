"""`bench init model_zoo`: every zoo model trains briefly on CIFAKE through its generated script."""

import json
import sys

import pytest
import torch

from aigbench.scaffold import zoo_entries

from conftest import bench, data_flags, run

pytestmark = pytest.mark.slow

# small-scale overrides (the scripts carry the papers' 224-pixel settings)
SMALL = {
    "cnnspot": [],
    "univfd": ["--clip_model", "ViT-B/32"],
    "npr": [],
    "dct": [],
    "pca_lr": [],
    "timm_probe": ["--backbone", "resnet18"],
    "timm_tune": ["--backbone", "resnet18"],
}


@pytest.fixture(scope="module")
def zoo_project(tmp_path_factory):
    d = tmp_path_factory.mktemp("zoo")
    bench("init", "model_zoo", cwd=d)
    return d


def test_init_model_zoo_writes_one_script_triple_per_model(zoo_project):
    names = {p.name for p in zoo_project.iterdir()}
    for key in SMALL:
        assert {f"train_{key}.sh", f"test_{key}.sh", f"test_robust_{key}.sh"} <= names, key
    cnnspot = (zoo_project / "train_cnnspot.sh").read_text()
    assert "PeterWang512/CNNDetection" in cnnspot and "--aug_blur_prob 0.5" in cnnspot and "--lr 1e-4" in cnnspot
    assert "--aug_" not in (zoo_project / "test_cnnspot.sh").read_text()
    assert "| npr | `NPR` |" in (zoo_project / "README-aigbench.md").read_text()


@pytest.mark.parametrize("key", list(SMALL))
def test_zoo_model_trains_through_its_script(zoo_project, subsets, key):
    out = zoo_project / "output_dir" / key
    flags = ["--image_size", "32", "--resize_mode", "resize", "--batch_size", "32", "--epochs", "1", *SMALL[key]]
    run(["sh", f"train_{key}.sh", *data_flags(subsets), *flags], cwd=zoo_project, env={"PYTHON": sys.executable})
    metrics = json.loads((out / "test" / "checkpoint-0" / "test" / "metrics.json").read_text())["metrics"]
    assert metrics["n"] == 201
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == zoo_entries("model_zoo")[key]["model"]
    assert torch.load(out / "checkpoint-0.pth", weights_only=True)["epoch"] == 0


def test_released_checkpoint_is_tested_with_checkpoint_pretrained(zoo_project, subsets, tmp_path):
    from test_model_zoo import npr_official_state

    torch.save(npr_official_state(), tmp_path / "NPR.pth")
    run(
        [
            "sh",
            "test_npr.sh",
            "--test_data_json",
            str(subsets["test_map"]),
            "--image_size",
            "32",
            "--resize_mode",
            "resize",
            "--pretrained_path",
            str(tmp_path / "NPR.pth"),
            "--checkpoint",
            "pretrained",
        ],
        cwd=zoo_project,
        env={"PYTHON": sys.executable},
    )
    res = zoo_project / "output_dir" / "npr" / "test" / "pretrained" / "cifake_sub" / "metrics.json"
    assert json.loads(res.read_text())["metrics"]["n"] == 201
