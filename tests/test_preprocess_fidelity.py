"""Evaluation preprocessing equals the official torchvision-on-PIL pipelines (issue 17, point 5).

The official pipelines, read at their source:
* CNNDetection ``data/datasets.py`` L23-48 (``binary_dataset``): ``Image.open(path).convert("RGB")`` then
  ``transforms.CenterCrop(opt.cropSize)`` (L28; no resize at test time with ``--no_resize``, L34), ``ToTensor``,
  ``Normalize``; UnivFD ``validate.py`` the same ``CenterCrop(224)``;
* NPR / FreqNet ``data/datasets.py``: ``transforms.Resize((256, 256))`` (squash) in their own tables;
* AIGCDetectBenchmark ``data/datasets.py``: ``transforms.Resize(256)`` then ``CenterCrop(224)``.

Each mode must match within mean |Δ| ≤ 0.5/255 and max |Δ| ≤ 3/255 per image, on JPEG photos of
odd sizes larger and smaller than the crop, decoded from the file as each pipeline decodes it.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from torchvision import transforms as T

from aigbench.datasets.layouts import DEMO_ROOT
from aigbench.datasets.preprocess import Preprocess
from aigbench.datasets.transforms import ImageTransform, decode_image

# (height, width): a camera-sized photo, odd web sizes, GenImage's 128 px BigGAN images, smaller ones
SIZES = [(1281, 961), (577, 1023), (257, 255), (161, 117), (128, 128), (225, 331)]


def mosaic(h: int, w: int, seed: int) -> np.ndarray:
    """A ``h x w`` photo tiled from real demo photos at their own 32 px resolution (full of edges
    and fine texture, as a camera photo is), in a seeded order."""
    folder = DEMO_ROOT / "test" / "REAL"
    names = sorted(os.listdir(folder))
    order = np.random.default_rng(seed).permutation(len(names))
    rows = []
    for r in range(-(-h // 32)):
        tiles = [cv2.imread(str(folder / names[order[(r * 64 + c) % len(names)]])) for c in range(-(-w // 32))]
        rows.append(np.concatenate(tiles, axis=1))
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:h, :w])


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """Photos of odd sizes tiled from real demo photos, saved as JPEG quality 92 (4:2:0)."""
    d = tmp_path_factory.mktemp("photos")
    out = []
    for i, (h, w) in enumerate(SIZES):
        p = d / f"photo_{h}x{w}.jpg"
        cv2.imwrite(str(p), mosaic(h, w, i), [cv2.IMWRITE_JPEG_QUALITY, 92])
        out.append(p)
    return out


def ours(path: Path, cfg: Preprocess, crops: int = 0) -> np.ndarray:
    return ImageTransform.from_preprocess(cfg, train=False, crops=crops).prepare(decode_image(str(path)))


def official(path: Path, pipeline: T.Compose) -> np.ndarray:
    with Image.open(path) as im:
        out = pipeline(im.convert("RGB"))
    if isinstance(out, tuple):  # FiveCrop
        return np.stack([np.asarray(o) for o in out])
    return np.asarray(out)


def assert_close(a: np.ndarray, b: np.ndarray, where: str) -> None:
    assert a.shape == b.shape, f"{where}: shape {a.shape} != {b.shape}"
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert diff.mean() <= 0.5 and diff.max() <= 3, f"{where}: mean |Δ| {diff.mean():.3f}, max {diff.max()}"


CASES = {
    "resize": (Preprocess(input_size=224, resize_mode="resize"), T.Compose([T.Resize((224, 224))])),
    "resize_256": (Preprocess(input_size=256, resize_mode="resize"), T.Compose([T.Resize((256, 256))])),
    "resize_crop": (
        Preprocess(input_size=224, resize_mode="resize_crop", crop_pct=224 / 256),
        T.Compose([T.Resize(256), T.CenterCrop(224)]),
    ),
    "crop": (Preprocess(input_size=224, resize_mode="crop"), T.Compose([T.CenterCrop(224)])),
    "bicubic": (
        Preprocess(input_size=224, resize_mode="resize", interpolation="bicubic"),
        T.Compose([T.Resize((224, 224), interpolation=T.InterpolationMode.BICUBIC)]),
    ),
}


@pytest.mark.parametrize("mode", list(CASES))
def test_each_mode_equals_torchvision_on_pil(photos, mode):
    cfg, pipeline = CASES[mode]
    for p in photos:
        assert_close(ours(p, cfg), official(p, pipeline), f"{mode} {p.name}")


def test_multicrop_equals_fivecrop(photos):
    cfg = Preprocess(input_size=224, resize_mode="multicrop")
    for p in photos[:3]:  # larger than the crop
        assert_close(ours(p, cfg, crops=5), official(p, T.Compose([T.FiveCrop(224)])), p.name)


def test_odd_margins_round_as_torchvision():
    """A 257 x 255 image: torchvision's centre crop starts at round(16.5) = 16 and round(15.5) = 16."""
    img = np.arange(257 * 255 * 3, dtype=np.uint32).reshape(257, 255, 3).astype(np.uint8)
    got = ours_array(img, Preprocess(input_size=224, resize_mode="crop"))
    want = np.asarray(T.CenterCrop(224)(Image.fromarray(img)))
    assert np.array_equal(got, want)


def ours_array(img: np.ndarray, cfg: Preprocess) -> np.ndarray:
    return ImageTransform.from_preprocess(cfg, train=False).prepare(img)


def test_small_images_are_zero_padded_as_torchvision_and_mirrored_on_request(photos):
    small = decode_image(str(photos[3]))  # 161 x 117
    got = ours_array(small, Preprocess(input_size=224, resize_mode="crop"))
    want = np.asarray(T.CenterCrop(224)(Image.fromarray(small)))
    assert np.array_equal(got, want)
    assert (got[:, :40] == 0).all()  # (224 - 117) // 2 = 53 zero columns on the left
    mirrored = ours_array(small, Preprocess(input_size=224, resize_mode="crop", pad_mode="reflect"))
    assert mirrored.shape == (224, 224, 3) and not (mirrored[:, :40] == 0).all()
    assert np.array_equal(mirrored[31:192, 53:170], small)  # the image itself sits where torchvision puts it


def test_wrap_tiles_from_the_corner_as_npr_then_crops_the_centre():
    """NPR's GenImage test (README L180-227, ``translate_duplicate``): a 128 px image tiled from
    the top-left corner to 256 px, then ``CenterCrop(224)`` (offset round(32 / 2) = 16)."""
    img = (np.arange(128 * 128 * 3).reshape(128, 128, 3) % 251).astype(np.uint8)
    got = ours_array(img, Preprocess(input_size=224, resize_mode="crop", pad_mode="wrap"))
    tiled = np.tile(img, (2, 2, 1))
    assert np.array_equal(got, tiled[16:240, 16:240])
