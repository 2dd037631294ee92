import json
import logging
import shutil

import cv2
import numpy as np
import pytest
import torch

from aigbench.datasets.dataset import ImageDataset, build_loader
from aigbench.datasets.layouts import DEMO_ALIAS, DatasetError, detect_layout, load_samples
from aigbench.datasets.transforms import ImageTransform, Normalizer
from aigbench.engine.dist import DistContext
from aigbench.engine.loop import predict

from conftest import CIFAKE, need_cifake, need_full_cifake


def write_img(path, value=128, size=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size, size, 3), value, np.uint8))


def test_cifake_layout_on_shared_data():
    full = need_full_cifake()
    train = load_samples(full, "train")
    test = load_samples(full, "test")
    assert detect_layout(full / "train") == "CIFAKE"
    assert (len(train), sum(s.label for s in train)) == (10000, 5000)
    assert (len(test), sum(s.label for s in test)) == (2000, 1000)
    assert all((s.label == 1) == ("/FAKE/" in s.path) for s in test)
    assert {s.generator for s in test} == {""}
    assert not {s.path for s in train} & {s.path for s in test}


def test_demo_alias_resolves_to_embedded_cifake_images():
    train = load_samples(DEMO_ALIAS, "train")
    test = load_samples(DEMO_ALIAS, "test")
    assert (len(train), sum(s.label for s in train)) == (400, 200)
    assert (len(test), sum(s.label for s in test)) == (200, 100)


def test_forensynths_layout_labels_and_generators(tmp_path):
    # '1_fake' sorts before 'real'-like names in no way that matters: labels come from names.
    for gen in ("progan", "stylegan"):
        write_img(tmp_path / gen / "cat" / "0_real" / "a.png")
        write_img(tmp_path / gen / "cat" / "1_fake" / "b.png")
    write_img(tmp_path / "biggan" / "1_fake" / "c.png")
    write_img(tmp_path / "biggan" / "0_real" / "d.png")
    samples = load_samples(tmp_path)
    assert detect_layout(tmp_path) == "ForenSynths"
    got = sorted((s.generator, s.path.rsplit("/", 1)[-1], s.label) for s in samples)
    assert got == [
        ("biggan", "c.png", 1),
        ("biggan", "d.png", 0),
        ("progan", "a.png", 0),
        ("progan", "b.png", 1),
        ("stylegan", "a.png", 0),
        ("stylegan", "b.png", 1),
    ]


def test_labels_never_follow_alphabetical_order(tmp_path):
    # GenImage: 'ai' sorts before 'nature', yet ai = fake = 1.
    write_img(tmp_path / "sdv4" / "val" / "ai" / "x.png")
    write_img(tmp_path / "sdv4" / "val" / "nature" / "y.png")
    samples = {s.path.rsplit("/", 1)[-1]: s for s in load_samples(tmp_path)}
    assert samples["x.png"].label == 1 and samples["y.png"].label == 0
    assert samples["x.png"].generator == "sdv4"


def test_json_list_layout(tmp_path):
    write_img(tmp_path / "imgs" / "a.png")
    write_img(tmp_path / "imgs" / "b.png")
    spec = tmp_path / "list.json"
    spec.write_text(json.dumps([["imgs/a.png", "real"], ["imgs/b.png", 1, "dalle"]]))
    s = load_samples(spec)
    assert [(x.label, x.generator) for x in s] == [(0, ""), (1, "dalle")]
    assert s[0].path == str(tmp_path / "imgs" / "a.png")
    spec.write_text(json.dumps([["imgs/a.png", "maybe"]]))
    with pytest.raises(DatasetError, match="entry 0 has label 'maybe'"):
        load_samples(spec)


def test_missing_and_empty_datasets_stop_early(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_samples(tmp_path / "nope")
    (tmp_path / "REAL").mkdir()
    (tmp_path / "FAKE").mkdir()
    with pytest.raises(DatasetError, match="found no images"):
        load_samples(tmp_path)
    (tmp_path / "other").mkdir()
    with pytest.raises(DatasetError, match="no known layout"):
        load_samples(tmp_path / "other")


def test_corrupt_file_is_skipped_named_and_counted(tmp_path, caplog):
    need_cifake()
    src = sorted((CIFAKE / "test" / "REAL").iterdir())[:5] + sorted((CIFAKE / "test" / "FAKE").iterdir())[:5]
    for p in src:
        dst = tmp_path / p.parent.name / p.name
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(p, dst)
    bad = tmp_path / "FAKE" / "broken (1).jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    ds = ImageDataset.from_path(str(tmp_path), ImageTransform(32, False))
    assert len(ds) == 11
    loader = build_loader(ds, batch_size=4, train=False)
    model = ConstantModel()
    with caplog.at_level(logging.WARNING, logger="aigbench"):
        preds = predict(model, loader, DistContext(torch.device("cpu")))
    assert preds.skipped == [str(bad)]
    assert len(preds.index) == 10
    assert any(str(bad) in r.getMessage() for r in caplog.records)


def test_transform_normalizes_and_resizes():
    img = np.full((20, 30, 3), 255, np.uint8)
    t = ImageTransform(16, train=False, normalizer=Normalizer((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)))
    x = t(img)
    assert x.shape == (3, 16, 16) and torch.allclose(x, torch.ones_like(x))
    crop = ImageTransform(16, train=False, resize_mode="crop")(np.zeros((40, 40, 3), np.uint8))
    assert crop.shape == (3, 16, 16)


class ConstantModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, image, label, *args, **kwargs):
        prob = torch.sigmoid(image.mean(dim=(1, 2, 3)) + self.p)
        return {"backward_loss": self.p.sum(), "pred_label": prob, "visual_loss": {}, "visual_image": {}}
