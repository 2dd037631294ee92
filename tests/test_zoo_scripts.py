"""`bench init model_zoo`: every zoo model trains briefly on CIFAKE through its generated script."""

import json
import sys

import pytest
import torch

from aigbench.scaffold import zoo_entries

from conftest import bench, cifake_subset, data_flags, run

pytestmark = pytest.mark.slow

# small-scale overrides (the scripts carry the papers' 224-pixel settings)
SMALL = {
    "cnnspot": [],
    "univfd": ["--clip_model", "ViT-B/32"],
    "npr": [],
    "dct": [],
    "pca_lr": ["--n_components", "20"],
    "timm_probe": ["--backbone", "resnet18"],
    "timm_tune": ["--backbone", "resnet18"],
    "freqnet": [],
    "rine": ["--clip_model", "ViT-B/32", "--nproj", "1", "--proj_dim", "16"],
    "drct_convnext": ["--accum_iter", "1"],
    "drct_clip": ["--clip_model", "ViT-B/32", "--accum_iter", "1"],
    "bfree": [],
    "c2pclip": ["--clip_model", "ViT-B/32"],
    "commfor_vit": ["--model_size", "tiny", "--accum_iter", "1"],
    "aigenbench_dinov2_vitl14_tune": ["--accum_iter", "1"],
    "aigenbench_dinov2_vitl14_probe": ["--accum_iter", "1"],
    "aigenbench_clipL14commonpool_tune": ["--accum_iter", "1"],
    "aigenbench_RN50_clip_probe": [],
}


@pytest.fixture(scope="module")
def small_subsets(tmp_path_factory):
    """JSON lists: 40+40 training and 25+25 test images of cifake-mini (ViT-L backbones train
    through their scripts on the CPU in seconds)."""
    d = tmp_path_factory.mktemp("small")
    paths = {}
    for name, split, n in (("train", "train", 40), ("test", "test", 25)):
        paths[name] = d / f"{name}.json"
        paths[name].write_text(json.dumps(cifake_subset(split, n)))
    return paths


def data_json(data, folder):
    """A test_datasets.json naming the test subset."""
    path = folder / "zoo_tests.json"
    path.write_text(json.dumps({"test": str(data["test"])}))
    return path


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
def test_zoo_model_trains_through_its_script(zoo_project, small_subsets, key):
    out = zoo_project / "output_dir" / key
    flags = ["--image_size", "32", "--resize_mode", "resize", "--batch_size", "32", "--epochs", "1", *SMALL[key]]
    data = small_subsets  # 80 training images: the workflow, not the accuracy, is under test
    run(["sh", f"train_{key}.sh", *data_flags(data), *flags], cwd=zoo_project, env={"PYTHON": sys.executable})
    # AI-GenBench's scripts evaluate through --eval_perturb aigenbench:1: their result sits in test+perturb_...
    result = next((out / "test" / "checkpoint-0").glob("test*/metrics.json"))
    metrics = json.loads(result.read_text())["metrics"]
    assert metrics["n"] == 50
    if key == "aigenbench_RN50_clip_probe":  # its robustness script sweeps the clean test images
        run(
            [
                "sh",
                f"test_robust_{key}.sh",
                "--test_data_json",
                str(data_json(data, zoo_project)),
                "--batch_size",
                "64",
            ],
            cwd=zoo_project,
            env={"PYTHON": sys.executable},
        )
        assert (out / "robustness" / "checkpoint-0" / "robustness.csv").is_file()
    if key in ("timm_tune", "pca_lr", "npr", "commfor_vit"):  # tested as trained: 32 px, its own flags
        sets = data_json(data, zoo_project)
        run(["sh", f"test_{key}.sh", "--test_data_json", str(sets), "--checkpoint", "last", "--no_progress"],
            cwd=zoo_project, env={"PYTHON": sys.executable})  # fmt: skip
        tested = json.loads(next((out / "test" / "checkpoint-0").glob("test*/metrics.json")).read_text())
        assert tested["provenance"]["preprocess"]["input_size"] == 32 and not tested["differs_from_training"]
        assert tested["metrics"]["auroc"] == pytest.approx(metrics["auroc"], abs=1e-6)
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


def test_script_headers_and_evaluation_flags(zoo_project):
    freqnet = (zoo_project / "test_freqnet.sh").read_text()
    assert "--image_size 256" in freqnet and "--lr" not in freqnet and "FreqNet-DeepfakeDetection" in freqnet
    aigb = (zoo_project / "test_aigenbench_dinov2_vitl14_tune.sh").read_text()
    assert "--eval_perturb aigenbench:1" in aigb
    assert "--eval_perturb" not in (zoo_project / "test_robust_aigenbench_dinov2_vitl14_tune.sh").read_text()
    assert not any(f in aigb for f in ("--optimizer", "--scheduler", "--clip_grad", "--accum_iter", "--aug_"))
    train = (zoo_project / "train_commfor_vit.sh").read_text()
    assert (
        "--rsa_ops default" in train and "--warmup_fraction 0.2" in train and "JeongsooP/Community-Forensics" in train
    )
    windows = sorted(p.name for p in zoo_project.glob("sliding_windows_*.sh") if p.name != "sliding_windows_mymodel.sh")
    assert windows == [
        "sliding_windows_aigenbench_RN50_clip_probe.sh",
        "sliding_windows_aigenbench_clipL14commonpool_tune.sh",
        "sliding_windows_aigenbench_dinov2_vitl14_probe.sh",
        "sliding_windows_aigenbench_dinov2_vitl14_tune.sh",
    ]


def test_aigenbench_sliding_windows_through_its_script(zoo_project, genimage_tree):
    """AI-GenBench's pipeline: chronological windows, warm starts, SGD + OneCycle, the mandatory
    evaluation distortions on validation and test images."""
    key = "aigenbench_RN50_clip_probe"
    run(
        ["sh", f"sliding_windows_{key}.sh", "--window_size", "2", "--image_size", "32", "--batch_size", "32"],
        cwd=zoo_project,
        env={"PYTHON": sys.executable, "DATA": str(genimage_tree)},
    )
    out = zoo_project / "output_dir" / f"sliding_windows_{key}"
    info = json.loads((out / "windows.json").read_text())
    assert list(info["windows"]) == ["w0", "w1"] and info["cumulative"]
    w1 = json.loads((out / "train_w1" / "config.json").read_text())
    assert w1["init_from"].endswith("checkpoint-0.pth") and "train_w0" in w1["init_from"]
    assert (w1["optimizer"], w1["scheduler"], w1["clip_grad"], w1["eval_perturb"]) == (
        "sgd",
        "onecycle",
        1.0,
        "aigenbench:1",
    )
    metrics = json.loads(next((out / "train_w1" / "test").glob("*/*/metrics.json")).read_text())
    assert metrics["eval_perturb"] == "aigenbench:1"


def test_community_forensics_script_mixes_hugging_face_fakes_and_local_reals(zoo_project, tmp_path):
    """train_commfor_vit.sh on its recipe's data: a Community Forensics parquet shard (its fakes)
    beside a local folder of real photos, reals drawn as often as fakes (--balance label), RSA."""
    import pyarrow.parquet as pq
    from test_sources import community_forensics_parquet

    from test_trust_data import cifake_files, fill

    fakes = tmp_path / "CommunityForensics" / "train-00000-of-00001.parquet"
    community_forensics_parquet(fakes, n=24, row_group_size=16)
    table = pq.read_table(fakes)
    pq.write_table(table.filter(table.column("label").to_numpy() == 1), fakes)  # the HF fakes only
    fill(tmp_path / "reals" / "real", cifake_files("train", "REAL", 60, 200))
    proc = run(
        [
            "sh",
            "train_commfor_vit.sh",
            "--data_path",
            f"{fakes}:1,{tmp_path / 'reals'}:1",
            "--val_split",
            "0.2",
            "--test_data_path",
            str(fakes),
            "--model_size",
            "tiny",
            "--image_size",
            "32",
            "--batch_size",
            "8",
            "--accum_iter",
            "1",
            "--epochs",
            "1",
            "--output_dir",
            "output_dir/commfor_mix",
        ],
        cwd=zoo_project,
        env={"PYTHON": sys.executable},
    )
    assert "real 50.0 %" in proc.stdout + proc.stderr
    config = json.loads((zoo_project / "output_dir" / "commfor_mix" / "config.json").read_text())
    assert (config["rsa_ops"], config["warmup_fraction"], config["clip_grad"], config["balance"]) == (
        "default",
        0.2,
        1.0,
        "label",
    )
