"""RandomStateAugmentation (Community Forensics): the official sampling of operations, each
operation's range on real images, and its place in the training transform."""

from __future__ import annotations

import collections
import os

import cv2
import numpy as np
import pytest

from aigbench.datasets.rsa import RSA_OPS, RandomStateAugmentation, parse_rsa_ops
from aigbench.errors import ConfigError

from conftest import data_flags, need_cifake, script


def real_photo(h=300, w=400, i=0) -> np.ndarray:
    """A CIFAKE real image enlarged to a non-square full-size photo."""
    root = need_cifake() / "train" / "REAL"
    img = cv2.cvtColor(cv2.imread(str(root / sorted(os.listdir(root))[i])), cv2.COLOR_BGR2RGB)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)


def test_each_operation_runs_zero_one_or_two_times_in_random_order():
    rsa = RandomStateAugmentation(224, seed=0)
    counts = collections.Counter()
    first = collections.Counter()
    n = 3000
    for _ in range(n):
        order = rsa.draw()
        per_op = collections.Counter(order)
        for op in RSA_OPS:
            counts[(op, per_op[op])] += 1
        if order:
            first[order[0]] += 1
    for op in RSA_OPS:  # randint(0, 2) inclusive: 0, 1 and 2 each a third of the time
        for k in (0, 1, 2):
            assert abs(counts[(op, k)] / n - 1 / 3) < 0.04, (op, k, counts[(op, k)])
    assert set(first) == set(RSA_OPS)  # any op can come first: the order is random
    assert max(first.values()) / min(first.values()) < 1.6
    assert RandomStateAugmentation(224, num=(1, 1), seed=0).draw().__len__() == len(RSA_OPS)


def test_operations_keep_the_official_ranges_on_a_real_photo():
    img = real_photo()
    rsa = RandomStateAugmentation(224, seed=1)
    for _ in range(20):
        out = rsa.random_resize(img)
        assert 225 <= min(out.shape[:2]) <= round(224 * 1.228)
        assert abs(out.shape[1] / out.shape[0] - 4 / 3) < 0.02  # aspect kept
        assert rsa.random_crop(img).shape == (224, 224, 3)
        assert rsa.random_resized_crop(img).shape == (224, 224, 3)
        for op in (rsa.rotation, rsa.translate, rsa.shear, rsa.padding, rsa.cutout, rsa.jpeg):
            assert op(img).shape == img.shape and op(img).dtype == np.uint8
    rot = RandomStateAugmentation(224, seed=3).rotation(img)
    assert (rot[0, 0] == 0).all() or (rot[0, -1] == 0).all()  # black corners, no expansion
    erased = [RandomStateAugmentation(224, seed=s).cutout(img) for s in range(40)]
    changed = [(e != img).any(axis=2) for e in erased if (e != img).any()]
    assert 5 < len(changed) < 35  # p = 0.5
    for mask in changed:
        ys, xs = np.nonzero(mask)
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert 0.02 * img.shape[0] * img.shape[1] * 0.8 <= box <= 0.06 * img.shape[0] * img.shape[1] * 1.2
    q = np.abs(RandomStateAugmentation(224, seed=4).jpeg(img).astype(int) - img).mean()
    assert 0 < q < 8  # quality 75..100: close to the original


def test_full_augmentation_is_seeded_and_resizes_first():
    img = real_photo()
    a = RandomStateAugmentation(224, resize_to=256, seed=7)(img)
    b = RandomStateAugmentation(224, resize_to=256, seed=7)(img)
    assert np.array_equal(a, b)
    plain = RandomStateAugmentation(224, num=(0, 0), resize_to=256)(img)
    assert plain.shape == (256, 341, 3)  # torchvision's Resize(256) of a 300x400 photo


def test_rsa_flags_are_checked():
    assert parse_rsa_ops("default") == RSA_OPS
    assert parse_rsa_ops("RandomCrop, JPEGinMemory") == ("RandomCrop", "JPEGinMemory")
    with pytest.raises(ConfigError, match="RandomBlur"):
        parse_rsa_ops("RandomCrop,RandomBlur")
    with pytest.raises(ConfigError, match="--rsa_num"):
        RandomStateAugmentation(224, num=(2, 1))


def test_training_transform_with_rsa_ends_in_the_input_size():
    from aigbench.engine.args import parse_args, train_parser
    from aigbench.engine.build import build_transform

    args = parse_args(
        train_parser(),
        [
            "--model",
            "CNNSpot",
            "--rsa_ops",
            "default",
            "--image_size",
            "64",
            "--resize_mode",
            "resize_crop",
            "--crop_pct",
            "0.875",
        ],
    )
    tf = build_transform(args, train=True)
    assert isinstance(tf.augment, RandomStateAugmentation) and tf.augment.resize_to == 73
    tf.set_random_seed(0)
    for i in range(10):
        assert tf.prepare(real_photo(120 + 10 * i, 200, i)).shape == (64, 64, 3)
    assert build_transform(args, train=False).augment is None  # training only


def test_train_with_rsa_on_cifake(project, subsets):
    out = project / "output_dir" / "rsa"
    script(
        project,
        "train.py",
        *data_flags(subsets),
        "--val_split",
        "0.2",
        "--epochs",
        "1",
        "--image_size",
        "32",
        "--rsa_ops",
        "default",
        "--no-hflip",
        "--output_dir",
        str(out),
        "--device",
        "cpu",
    )
    assert (out / "checkpoint-0.pth").is_file()
    import json

    config = json.loads((out / "config.json").read_text())
    assert config["rsa_ops"] == "default" and config["rsa_num"] == [0, 2]
