"""The field's data as shipped: CSV lists, --label_map, format alignment, parquet and Arrow sources."""

import csv
import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from aigbench.datasets.dataset import ImageDataset, build_loader
from aigbench.datasets.layouts import DatasetError, detect_layout, load_samples, parse_label_map
from aigbench.datasets.transforms import ImageTransform
from aigbench.engine.dist import DistContext
from aigbench.engine.evaluate import evaluate_datasets
from aigbench.imageops import FormatAlign, decode_image

from test_datasets import ConstantModel
from test_trust_data import cifake_files, fill


def test_csv_list_with_generator_split_and_category_columns(tmp_path):
    fill(tmp_path / "imgs" / "r", cifake_files("test", "REAL", 4))
    fill(tmp_path / "imgs" / "f", cifake_files("test", "FAKE", 4))
    rows = [("imgs/r/000.png", "real", "", "train", "cat"), ("imgs/r/001.png", 0, "", "validation", "dog")]
    rows += [("imgs/f/000.png", "fake", "sdxl", "train", "cat"), ("imgs/f/001.png", "1", "flux", "test", "dog")]
    rows += [("imgs/r/002.png", 0, "", "test", "car")]
    spec = tmp_path / "list.csv"
    with open(spec, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_path", "label", "generator", "split", "category"])
        w.writerows(rows)
    assert detect_layout(spec) == "CsvList"
    train = load_samples(spec, "train")
    assert [(s.label, s.generator, s.category) for s in train] == [(0, "", "cat"), (1, "sdxl", "cat")]
    assert train[0].path == str(tmp_path / "imgs" / "r" / "000.png")
    assert [s.generator for s in load_samples(spec, "test")] == ["flux", ""]
    assert len(load_samples(spec, "val")) == 1  # "validation" is the val split
    with open(spec, "a", newline="") as f:
        csv.writer(f).writerow(["imgs/f/002.png", "maybe", "", "train", ""])
    with pytest.raises(DatasetError, match=r"line 7 has label 'maybe'.*--label_map maybe:0"):
        load_samples(spec, "train")
    assert [s.label for s in load_samples(spec, "train", label_map={"maybe": 1})][-1] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("file_name,y\na.png,1\n")
    with pytest.raises(DatasetError, match="needs a header with a path column"):
        load_samples(bad)


def test_label_map_names_the_folders_of_any_tree(tmp_path):
    fill(tmp_path / "dalle" / "synthetic", cifake_files("test", "FAKE", 3))
    fill(tmp_path / "ImageNet" / "authentic", cifake_files("test", "REAL", 3))
    with pytest.raises(DatasetError, match="no known layout.*--label_map"):
        load_samples(tmp_path)
    labels = parse_label_map("authentic:0,synthetic:1")
    samples = load_samples(tmp_path, label_map=labels)
    assert sorted((s.generator, s.label) for s in samples) == [("ImageNet", 0)] * 3 + [("dalle", 1)] * 3
    for bad in ("real", "real:2", "real:0,fake:0"):
        with pytest.raises(DatasetError, match="--label_map"):
            parse_label_map(bad)


def test_format_alignment_reencodes_every_evaluation_image_first(tmp_path):
    fill(tmp_path / "REAL", cifake_files("test", "REAL", 4))
    fill(tmp_path / "FAKE", cifake_files("test", "FAKE", 4))
    align = FormatAlign("jpeg:96")
    src = decode_image(str(tmp_path / "FAKE" / "000.png"))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(src, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 96])
    ref = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(align(src), ref) and not np.array_equal(src, ref)
    t = ImageTransform(32, False, align=align)
    assert np.array_equal(t.prepare(src), ImageTransform(32, False).prepare(ref))
    ds = ImageDataset(load_samples(tmp_path), t, "set")
    res = evaluate_datasets(
        ConstantModel(), {"set": build_loader(ds, 8, False)}, DistContext(torch.device("cpu")), tmp_path / "out"
    )
    assert res["set"]["align_format"] == "jpeg:96"
    assert json.loads((tmp_path / "out" / "set" / "metrics.json").read_text())["align_format"] == "jpeg:96"
    for bad in ("png", "jpeg:0", "jpeg:x", "gif:50"):
        with pytest.raises(ValueError, match="--align_format"):
            FormatAlign(bad)
    Image.open(tmp_path / "REAL" / "000.png")  # the files themselves are untouched
