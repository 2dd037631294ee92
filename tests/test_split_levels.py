"""Split folders belong to the layout's level (issue 17, point 1).

ForenSynths (CNNDetection, Wang et al. CVPR 2020) ships ``{train,val,test}`` at its root; its
train and val sets hold 20 ProGAN object classes, one of which is named ``train``
(CNNDetection's README, "(2) Download the dataset": ``train/{airplane,...,train,tvmonitor}``),
and its ProGAN test set holds the same 20 classes (``test/progan/train/{0_real,1_fake}``).
GenImage (Zhu et al. NeurIPS 2023) puts the split just above the label folders:
``<Gen>/<sub>/{train,val}/{ai,nature}``. The fixtures are in those trees, made from the
embedded CIFAKE demo images (real photos and Stable Diffusion images), upscaled to the 256 px
PNGs that ForenSynths ships.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import cv2
import pytest

from aigbench.datasets.layouts import DEMO_ROOT, DatasetError, load_samples

CLASSES = ("airplane", "train", "tvmonitor")  # three of ForenSynths' 20, the `train` class among them


def demo_images(split: str, cls: str, n: int, start: int = 0) -> list[Path]:
    folder = DEMO_ROOT / split / cls
    return [folder / f for f in sorted(os.listdir(folder))[start : start + n]]


def write_pngs(dest: Path, files: list[Path], size: int = 256) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        img = cv2.resize(cv2.imread(str(f)), (size, size), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(dest / f"{i:03d}.png"), img)


def forensynths_tree(root: Path) -> Path:
    """ROOT/train/<class>/{0_real,1_fake}, ROOT/val/<class>/..., ROOT/test/progan/<class>/...,
    ROOT/test/stylegan/bedroom/..., ROOT/test/biggan/{0_real,1_fake}; 2 images per folder."""
    k = 0

    def fill(folder: Path) -> None:
        nonlocal k
        write_pngs(folder / "0_real", demo_images("train", "REAL", 2, k))
        write_pngs(folder / "1_fake", demo_images("train", "FAKE", 2, k))
        k += 2

    for split in ("train", "val"):
        for c in CLASSES:
            fill(root / split / c)
    for c in CLASSES:
        fill(root / "test" / "progan" / c)
    fill(root / "test" / "stylegan" / "bedroom")
    fill(root / "test" / "biggan")
    return root


@pytest.fixture(scope="module")
def forensynths(tmp_path_factory) -> Path:
    return forensynths_tree(tmp_path_factory.mktemp("CNNDetection") / "dataset")


def parts_below(samples, root: Path) -> Counter:
    return Counter(Path(os.path.relpath(s.path, root)).parts[0] for s in samples)


def test_training_on_the_root_reads_train_only_with_its_train_class(forensynths):
    samples = load_samples(forensynths, "train")
    assert parts_below(samples, forensynths) == {"train": 4 * len(CLASSES)}  # no val/train, no test/progan/train
    assert {s.generator for s in samples} == set(CLASSES)
    assert {s.split for s in samples} == {"train"}


@pytest.mark.parametrize("split", ["train", "val"])
def test_a_flag_at_the_split_folder_reads_all_its_classes(forensynths, split):
    samples = load_samples(forensynths / split, split)  # --val_data_path ROOT/val failed: "has no val/ split"
    assert len(samples) == 4 * len(CLASSES)
    assert {s.generator for s in samples} == set(CLASSES)


def test_the_progan_test_set_keeps_its_train_class(forensynths):
    samples = load_samples(forensynths / "test", "test")
    progan = [s for s in samples if s.generator == "progan"]
    assert len(progan) == 4 * len(CLASSES)
    assert {s.category for s in progan} == set(CLASSES)
    assert {s.generator for s in samples} == {"progan", "stylegan", "biggan"}
    assert load_samples(forensynths, "test") == samples  # the root's test split is the same


def test_a_test_set_read_at_its_generator_keeps_every_class(forensynths):
    samples = load_samples(forensynths / "test" / "progan", "test")
    assert {s.category for s in samples} == set(CLASSES)
    assert {s.split for s in samples} == {"test"}


@pytest.mark.parametrize("path", ["test", "test/progan", "val"])
def test_training_from_a_held_out_folder_is_an_error(forensynths, path):
    with pytest.raises(DatasetError, match="train"):
        load_samples(forensynths / path, "train")


def test_generators_progan_on_the_root_no_longer_trains_on_test_images(forensynths):
    from aigbench.datasets.layouts import filter_generators

    train = load_samples(forensynths, "train")
    with pytest.raises(DatasetError, match="progan"):  # the training split has no generator named progan
        filter_generators(train, ["progan"], where="--data_path")


def test_a_test_set_inside_a_data_folder_keeps_its_test_split(tmp_path):
    """AIGCDetectBenchmark ships ``test/<generator>/{0_real,1_fake}``; a folder holding the whole
    benchmark one level down still finds its splits."""
    for gen in ("progan", "stylegan", "ADM"):
        write_pngs(tmp_path / "AIGCDetectBenchmark" / "test" / gen / "0_real", demo_images("test", "REAL", 2))
        write_pngs(tmp_path / "AIGCDetectBenchmark" / "test" / gen / "1_fake", demo_images("test", "FAKE", 2))
    write_pngs(tmp_path / "AIGCDetectBenchmark" / "train" / "car" / "0_real", demo_images("train", "REAL", 2))
    write_pngs(tmp_path / "AIGCDetectBenchmark" / "train" / "car" / "1_fake", demo_images("train", "FAKE", 2))
    test = load_samples(tmp_path / "AIGCDetectBenchmark" / "test", "test")
    assert {s.generator for s in test} == {"progan", "stylegan", "ADM"}
    assert len(load_samples(tmp_path, "test")) == 12
    assert len(load_samples(tmp_path, "train")) == 4


def test_genimage_splits_sit_above_the_label_folders(tmp_path):
    for gen, sub in (("BigGAN", "imagenet_ai_0419_biggan"), ("ADM", "imagenet_ai_0508_adm")):
        for split in ("train", "val"):
            write_pngs(tmp_path / gen / sub / split / "ai", demo_images("train", "FAKE", 2), 128)
            write_pngs(tmp_path / gen / sub / split / "nature", demo_images("train", "REAL", 2), 128)
    assert {s.split for s in load_samples(tmp_path, "train")} == {"train"}
    assert len(load_samples(tmp_path, "test")) == 8  # GenImage ships no test/: val/ is evaluated
    sub = tmp_path / "BigGAN" / "imagenet_ai_0419_biggan"
    assert len(load_samples(sub / "val", "val")) == 4
    with pytest.raises(DatasetError, match="train"):
        load_samples(sub / "val", "train")


def test_a_folder_named_like_a_split_above_ones_own_data_is_not_a_split(tmp_path):
    """``~/test/mydata``: ``test`` is not a split folder of ``~`` (which holds other folders)."""
    data = tmp_path / "test" / "mydata"
    write_pngs(data / "0_real", demo_images("test", "REAL", 2))
    write_pngs(data / "1_fake", demo_images("test", "FAKE", 2))
    (tmp_path / "models").mkdir()
    (tmp_path / "notes").mkdir()
    assert len(load_samples(data, "train")) == 4  # one's own data, trainable
    assert {s.generator for s in load_samples(data, "test")} == {""}


def test_genimage_repacked_under_split_folders_keeps_its_splits(tmp_path):
    """``ROOT/{train,val}/<gen>/{ai,nature}`` (a common repackaging): the split is the top folder."""
    for split in ("train", "val"):
        write_pngs(tmp_path / split / "sdv4" / "ai", demo_images("train", "FAKE", 2), 64)
        write_pngs(tmp_path / split / "sdv4" / "nature", demo_images("train", "REAL", 2), 64)
    assert {s.split for s in load_samples(tmp_path, "train")} == {"train"}
    assert {s.generator for s in load_samples(tmp_path, "test")} == {"sdv4"}  # val/, as GenImage is evaluated
