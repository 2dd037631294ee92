import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from aigbench.datasets.dataset import ImageDataset, build_loader
from aigbench.datasets.transforms import ImageTransform
from aigbench.engine.dist import DistContext
from aigbench.engine.loop import predict
from aigbench.errors import ConfigError
from aigbench.imageops.perturbations import Perturbation
from aigbench.registry import PERTURBATIONS
from aigbench.robustness.grid import build_grid, run_grid

from conftest import cifake_subset
from test_datasets import ConstantModel


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def test_clean_strengths_are_identity(image):
    for name, clean in (("blur", 0), ("noise", 0), ("jpeg", 100)):
        p = PERTURBATIONS.get(name)(clean)
        assert p.is_clean
        assert p(image) is image


def test_blur_is_gaussian_with_sigma_in_pixels(image):
    from scipy.ndimage import gaussian_filter

    for sigma in (0.5, 2, 4):
        out = PERTURBATIONS.get("blur")(sigma)(image)
        ref = gaussian_filter(image.astype(np.float64), sigma=(sigma, sigma, 0), mode="mirror", truncate=4.0)
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert np.abs(out.astype(np.float64) - ref).max() <= 1.0, sigma  # rounding to 8 bits only
    assert PERTURBATIONS.get("blur")(2)(image).std() < image.std()


def test_noise_std_on_255_scale_and_deterministic(image):
    flat = np.full((64, 64, 3), 128, np.uint8)
    out = PERTURBATIONS.get("noise")(10)(flat)
    assert abs(float(out.astype(np.float32).std()) - 10) < 0.5
    assert np.array_equal(out, PERTURBATIONS.get("noise")(10)(flat))
    assert not np.array_equal(out, PERTURBATIONS.get("noise")(10, seed=1)(flat))


def test_jpeg_quality(image):
    q90 = PERTURBATIONS.get("jpeg")(90)(image)
    q10 = PERTURBATIONS.get("jpeg")(10)(image)
    err = lambda x: np.abs(x.astype(int) - image).mean()  # noqa: E731
    assert 0 < err(q90) < err(q10)
    with pytest.raises(ValueError, match="quality must be in 1..100"):
        PERTURBATIONS.get("jpeg")(0)


def test_folders_and_bad_grid():
    assert PERTURBATIONS.get("blur")(2).folder == "blur/sigma_2"
    assert PERTURBATIONS.get("blur")(0.5).folder == "blur/sigma_0.5"
    assert PERTURBATIONS.get("jpeg")(75).folder == "jpeg/quality_75"
    with pytest.raises(ConfigError, match="GRID in test_robust.py: 'blurr' .* Did you mean 'blur'"):
        build_grid({"blurr": [1]})
    with pytest.raises(ConfigError, match="'blur' strength -1: .*sigma must be >= 0"):
        build_grid({"blur": [-1]})
    with pytest.raises(ConfigError, match="'noise' must list its strengths"):
        build_grid({"noise": 5})


class Scale(Perturbation):
    """A perturbation registered the way the module docstring shows: no ``name`` attribute."""

    param, unit, clean_strength = "scale", "resize factor", 1.0

    def apply(self, img):
        h, w = img.shape[:2]
        small = cv2.resize(img, (max(1, int(w * self.strength)), max(1, int(h * self.strength))))
        return cv2.resize(small, (w, h))


def test_unnamed_perturbation_is_named_by_its_key_and_stays_inside_output_dir(tmp_path, monkeypatch):
    PERTURBATIONS.register_module("scale_test", module=Scale, force=True)
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "list.json"
    spec.write_text(json.dumps(cifake_subset("test", 4)))
    ds = ImageDataset.from_path(str(spec), ImageTransform(32, False), name="sub")
    loaders = {"sub": build_loader(ds, 8, train=False)}
    rows = run_grid(ConstantModel(), loaders, {"scale_test": [1, 0.75]}, DistContext(torch.device("cpu")), "rob")
    assert [r["perturbation"] for r in rows] == ["scale_test", "scale_test"]
    assert (tmp_path / "rob" / "scale_test" / "scale_0.75" / "sub" / "metrics.json").is_file()
    assert not Path("/scale_0.75").exists()
    with open(tmp_path / "rob" / "robustness.csv") as f:
        assert [r["perturbation"] for r in csv.DictReader(f)] == ["scale_test", "scale_test"]
    # a name that would leave the output folder is refused before anything runs
    for bad in ("../escape", "a/b", ".."):
        PERTURBATIONS.register_module(bad, module=Scale, force=True)
        with pytest.raises(ConfigError, match="cannot name a folder"):
            run_grid(ConstantModel(), loaders, {bad: [0.5]}, DistContext(torch.device("cpu")), tmp_path / "rob2")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "rob2").exists()


def test_grid_points_are_views_and_shared_loaders_never_change(tmp_path):
    spec = tmp_path / "list.json"
    spec.write_text(json.dumps(cifake_subset("test", 10)))
    transform = ImageTransform(32, False)
    ds = ImageDataset.from_path(str(spec), transform, name="sub")
    loader = build_loader(ds, 8, train=False, num_workers=2)
    before = predict(ConstantModel(), loader, DistContext(torch.device("cpu"))).score
    rows = run_grid(
        ConstantModel(), {"sub": loader}, {"noise": [0, 30]}, DistContext(torch.device("cpu")), tmp_path / "rob"
    )
    assert rows[1]["accuracy"] is not None
    assert loader.dataset is ds and ds.transform is transform and transform.perturbation is None
    after = predict(ConstantModel(), loader, DistContext(torch.device("cpu"))).score
    assert np.array_equal(before, after)
    view = transform.with_perturbation(PERTURBATIONS.get("noise")(30), "after_resize")
    assert view is not transform and view.perturbation is not None and transform.perturbation is None


def test_grid_writes_results_and_shares_clean_point(tmp_path, aigbench_log):
    spec = tmp_path / "list.json"
    spec.write_text(json.dumps(cifake_subset("test", 20)))
    ds = ImageDataset.from_path(str(spec), ImageTransform(32, False), name="sub")
    loaders = {"sub": build_loader(ds, 16, train=False)}
    calls = []
    model = ConstantModel()
    model.register_forward_hook(lambda *a: calls.append(1))
    grid = {"blur": [0, 1], "noise": [0, 8], "jpeg": [100, 50]}
    rows = run_grid(model, loaders, grid, DistContext(torch.device("cpu")), tmp_path / "rob", checkpoint="c.pth")
    assert len(rows) == 6
    assert len(calls) == 4 * 3  # 4 distinct passes (one clean) x 3 batches of 40 images
    # the announcement and the counter count the same points (issue 22: "14 grid points", then 16)
    said = [r.getMessage() for r in aigbench_log.records]
    assert any("sub: 6 grid point(s), clean ones included" in m and "4 distinct view(s)" in m for m in said), said
    counted = [m for m in said if m.startswith("[") and "grid points]" in m]
    assert len(counted) == 6 and counted[-1].startswith("[6/6 grid points]"), counted
    with open(tmp_path / "rob" / "robustness.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["perturbation"], float(r["strength"]), r["clean"]) for r in table] == [
        ("blur", 0, "True"),
        ("blur", 1, "False"),
        ("noise", 0, "True"),
        ("noise", 8, "False"),
        ("jpeg", 100, "True"),
        ("jpeg", 50, "False"),
    ]
    assert table[0]["unit"] == "Gaussian sigma, pixels" and table[0]["stage"] == "before_resize"
    clean = [r["accuracy"] for r in table if r["clean"] == "True"]
    assert len(set(clean)) == 1
    m = json.loads((tmp_path / "rob" / "blur" / "sigma_1" / "sub" / "metrics.json").read_text())
    assert m["strength"] == 1 and m["metrics"]["n"] == 40
    assert float(table[1]["accuracy"]) == pytest.approx(m["metrics"]["accuracy"])
    assert (tmp_path / "rob" / "jpeg" / "quality_100" / "sub" / "metrics.json").exists()
    # the perturbation was really applied: blurred scores differ from clean ones
    assert table[1]["auroc"] != table[0]["auroc"]


class OldStyle(Perturbation):
    """A perturbation written for aigbench 0.1: its own __init__(strength, seed), no name."""

    param, unit, clean_strength = "gain", "brightness gain", 1.0

    def __init__(self, strength, seed=0):
        super().__init__(strength, seed)
        self.lut = np.clip(np.arange(256) * float(strength), 0, 255).astype(np.uint8)

    def apply(self, img):
        return self.lut[img]


def test_perturbations_with_their_own_init_still_build():
    PERTURBATIONS.register_module("gain_test", module=OldStyle, force=True)
    (point,) = build_grid({"gain_test": [1.5]})
    assert point.name == "gain_test" and point.folder == "gain_test/gain_1.5"


@pytest.fixture
def photo():
    """A real CIFAKE image enlarged to a full-size photo (1300 x 1200)."""
    path = cifake_subset("test", 1)[1][0]
    small = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    return cv2.resize(small, (1200, 1300), interpolation=cv2.INTER_CUBIC)


def test_new_perturbations_in_the_fields_units(photo):
    assert all(
        PERTURBATIONS.get(n)(c)(photo) is photo
        for n, c in (("webp", 100), ("resize", 1), ("crop", 1), ("grayscale", 0), ("social", 0))
    )
    # resize: down by the scale then back up, with the interpolation named
    small = cv2.resize(photo, (300, 325), interpolation=cv2.INTER_NEAREST)
    expected = cv2.resize(small, (1200, 1300), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(PERTURBATIONS.get("resize_nearest")(0.25)(photo), expected)
    assert "bicubic" in PERTURBATIONS.get("resize_bicubic")(0.5).unit
    assert not np.array_equal(PERTURBATIONS.get("resize")(0.25)(photo), expected)  # bilinear differs
    crop = PERTURBATIONS.get("crop")(0.5)(photo)
    assert crop.shape == (650, 600, 3) and np.array_equal(crop, photo[325:975, 300:900])
    gray = PERTURBATIONS.get("grayscale")(1)(photo)
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 0], gray[..., 2])
    assert np.array_equal(gray[..., 0], cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY))
    webp = PERTURBATIONS.get("webp")(30)(photo)
    assert webp.shape == photo.shape and 0 < np.abs(webp.astype(int) - photo).mean() < 10
    for bad in (("webp", 0), ("resize", 0), ("crop", 1.5), ("grayscale", 2), ("social", 5)):
        with pytest.raises(ValueError):
            PERTURBATIONS.get(bad[0])(bad[1])


def test_chains_apply_their_steps_in_order(photo):
    swept, fixed = build_grid({"jpeg:75>resize": [1, 0.5], "jpeg:75>resize:0.5": [0, 1]})[1::2]
    expected = PERTURBATIONS.get("resize")(0.5)(PERTURBATIONS.get("jpeg")(75)(photo))
    assert np.array_equal(swept(photo), expected) and np.array_equal(fixed(photo), expected)
    assert swept.param == "scale" and swept.folder == "jpeg=75+resize/scale_0.5"
    points = build_grid({"jpeg:75>resize": [1], "jpeg:75>resize:0.5": [0]})
    # the swept step at its clean strength still leaves JPEG 75: not clean; the fixed chain off is
    assert [p.is_clean for p in points] == [False, True]
    with pytest.raises(ConfigError, match="every strength fixed"):
        build_grid({"jpeg:75>resize:0.5": [0.5]})
    with pytest.raises(ConfigError, match="only one step"):
        build_grid({"jpeg>resize": [1]})
    with pytest.raises(ConfigError, match="Did you mean 'jpeg'"):
        build_grid({"jpg:75>resize": [1]})


def test_social_chain_levels_are_seeded_and_grow_harsher(photo):
    outs = {lvl: PERTURBATIONS.get("social")(lvl, seed=1)(photo) for lvl in (1, 4)}
    again = PERTURBATIONS.get("social")(4, seed=1)(photo)
    other_seed = PERTURBATIONS.get("social")(4, seed=2)(photo)
    assert np.array_equal(outs[4], again) and not np.array_equal(outs[4], other_seed)
    for out in outs.values():  # a random resized crop to a square of 256-512 px
        assert out.shape[0] == out.shape[1] and 256 <= out.shape[0] <= 512
    # the crop to 1080 px happens first: a small image keeps its size into the chain
    assert PERTURBATIONS.get("social")(2)(photo[:200, :300]).shape[0] <= 512


def test_size_changing_perturbations_after_resize_keep_the_model_size(photo):
    transform = ImageTransform(32, False)
    for name, s in (("crop", 0.5), ("social", 3)):
        view = transform.with_perturbation(PERTURBATIONS.get(name)(s), "after_resize")
        assert view.prepare(photo).shape == (32, 32, 3)


def test_robustness_csv_has_per_generator_rows(tmp_path):
    items = [[p, y, gen] for gen in ("gan", "sd") for p, y in cifake_subset("test", 6)]
    spec = tmp_path / "list.json"
    spec.write_text(json.dumps(items))
    ds = ImageDataset.from_path(str(spec), ImageTransform(32, False), name="multi")
    rows = run_grid(
        ConstantModel(),
        {"multi": build_loader(ds, 8, train=False)},
        {"blur": [0, 2]},
        DistContext(torch.device("cpu")),
        tmp_path / "rob",
        threshold=0.3,
    )
    with open(tmp_path / "rob" / "robustness.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["generator"], float(r["strength"])) for r in table] == [
        ("", 0),
        ("gan", 0),
        ("sd", 0),
        ("", 2),
        ("gan", 2),
        ("sd", 2),
    ]
    m = json.loads((tmp_path / "rob" / "blur" / "sigma_2" / "multi" / "metrics.json").read_text())
    assert float(table[4]["accuracy"]) == pytest.approx(m["per_generator"]["gan"]["accuracy"])
    assert all(float(r["threshold"]) == 0.3 for r in table) and rows[0]["threshold"] == 0.3


def test_one_pass_sweep_equals_one_pass_per_point(tmp_path, monkeypatch):
    from aigbench.datasets.dataset import MultiViewDataset

    items = [[p, y, g] for (p, y), g in zip(cifake_subset("test", 15), ["a", "b"] * 15)]
    spec = tmp_path / "list.json"
    spec.write_text(json.dumps(items))
    decodes = []
    real_getitem = MultiViewDataset.__getitem__

    def counting_getitem(self, index):
        decodes.append(index)
        return real_getitem(self, index)

    ds = ImageDataset.from_path(str(spec), ImageTransform(32, False), name="sub")
    loaders = {"sub": build_loader(ds, 8, train=False)}
    grid = {"blur": [0, 1], "noise": [0, 8], "jpeg": [100, 50], "social": [0, 2], "jpeg:75>resize": [1, 0.5]}
    ctx = DistContext(torch.device("cpu"))
    monkeypatch.setattr(MultiViewDataset, "__getitem__", counting_getitem)
    fast = run_grid(ConstantModel(), loaders, grid, ctx, tmp_path / "fast")
    slow = run_grid(ConstantModel(), loaders, grid, ctx, tmp_path / "slow", one_pass=False)
    assert len(decodes) == 30  # every image decoded once for the whole sweep
    assert fast == slow
    for point in ("blur/sigma_1", "social/level_2", "jpeg=75+resize/scale_0.5"):
        a = (tmp_path / "fast" / point / "sub" / "predictions.csv").read_text()
        assert a == (tmp_path / "slow" / point / "sub" / "predictions.csv").read_text()


@pytest.mark.parametrize("size, mode", [((1200, 1300), "crop"), ((517, 301), "center_crop"), ((240, 230), "crop")])
def test_centre_crops_perturb_only_the_pixels_they_keep_and_equal_perturbing_the_whole_photo(photo, size, mode):
    """A photo perturbed whole and then centre-cropped (the field's order) equals the crop
    computed from the kept box and its margin; the whole photo is perturbed only when needed."""
    img = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    transform = ImageTransform(224, False, resize_mode=mode)
    calls = []
    grid = {"blur": [0, 0.5, 2, 4], "noise": [0, 5, 20], "jpeg": [100, 95, 60, 30], "webp": [70], "resize": [0.5]}
    from aigbench.imageops.perturbations import JPEG, Chain, GaussianBlur

    class Stretched(GaussianBlur):  # a subclass whose own apply reads the whole image
        def apply(self, x):
            out = super().apply(x).astype(np.float32)
            return np.clip((out - out.min()) * 255 / max(1.0, float(out.max() - out.min())), 0, 255).astype(np.uint8)

    points = [PERTURBATIONS.get(name)(strength) for name, strengths in grid.items() for strength in strengths]
    points += [PERTURBATIONS.get(n)(v) for n, v in (("crop", 0.5), ("crop", 0.3), ("grayscale", 0.5), ("social", 2))]
    points += [PERTURBATIONS.get("aigenbench")(1), Chain("jpeg:75>crop:0.5", 1), Chain("crop:0.5>blur", 2)]
    points += [Stretched(2)]
    for point in points:
        real_apply = point.apply
        point.apply = lambda x, _f=real_apply: calls.append(x.shape[:2]) or _f(x)
        whole = transform.geometric(image=point(img))["image"]
        calls.clear()
        fast = transform.with_perturbation(point, "before_resize").finish(img)
        assert fast.shape == (224, 224, 3)
        assert np.array_equal(fast, whole), (point, size)
        if point.is_clean:
            assert not calls
        elif type(point) in (GaussianBlur, JPEG) and size == (1200, 1300):  # local: the box and its margin only
            assert calls and max(h * w for h, w in calls) < 0.2 * img.shape[0] * img.shape[1], (point, calls)
        elif isinstance(point, Stretched):  # its own apply: the whole photo
            assert calls == [img.shape[:2]]
    # training crops are random, resizing reads every pixel: the whole image is perturbed
    assert ImageTransform(224, True, resize_mode="crop").kept_box(*img.shape[:2]) is None
    assert ImageTransform(224, False, resize_mode="resize").kept_box(*img.shape[:2]) is None
    assert ImageTransform(224, False, resize_mode="crop").kept_box(100, 500) is None  # padded: smaller than the crop


def test_noise_of_a_box_is_the_box_of_the_noise(photo):
    noise = PERTURBATIONS.get("noise")(10)
    whole = noise(photo)
    for box in ((0, 0, 1300, 1200), (3, 7, 130, 300), (500, 400, 724, 624), (1299, 1199, 1300, 1200)):
        y0, x0, y1, x1 = box
        assert np.array_equal(noise.region(photo, box), whole[y0:y1, x0:x1]), box
    box = (500, 400, 724, 624)
    inside, outside = photo.copy(), photo.copy()
    inside[600, 500, 0] ^= 1  # one pixel of a tile in the box: that tile's noise is drawn anew
    outside[0, 0, 0] ^= 1  # a pixel far from the box: the box's noise does not depend on it
    changed = (
        noise.region(inside, box).astype(int) - inside[500:724, 400:624]
        != whole[500:724, 400:624].astype(int) - photo[500:724, 400:624]
    )
    assert changed[64:128, 64:128].any() and not changed[:64].any()  # tile (9, 7) only
    assert np.array_equal(noise.region(outside, box), whole[500:724, 400:624])
