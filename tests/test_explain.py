"""Issue 21: where a detector looks (bench explain, with model-randomisation and ROAD checks), and
what the data carries (bench data spectrum), on trees in the benchmarks' own shape built from
real CIFAKE photos."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aigbench.datasets.layouts import load_samples
from aigbench.explain import cam
from aigbench.explain.run import full_image_map, view_boxes

from conftest import bench, headless_chromium, need_cifake, script

pytest.importorskip("pytorch_grad_cam")

SIDE = 64
PATCH = 32  # fakes carry a bright square in their top-left corner


def _real_photos(n: int, start: int = 0) -> list[np.ndarray]:
    root = need_cifake() / "train" / "REAL"
    files = sorted(os.listdir(root))[start : start + n]
    return [np.asarray(Image.open(root / f).convert("RGB").resize((SIDE, SIDE), Image.BICUBIC)) for f in files]


@pytest.fixture(scope="module")
def patch_tree(tmp_path_factory) -> Path:
    """ForenSynths shape, ``<split>/patch/{0_real,1_fake}``: reals are CIFAKE photos at 64 px, fakes
    other photos with a white 32 x 32 corner patch, as PNG."""
    root = tmp_path_factory.mktemp("patch") / "patchset"
    photos = _real_photos(320)
    splits = (("train", 0, 100), ("val", 100, 120), ("test", 120, 160))
    for split, a, b in splits:
        for k in range(a, b):
            for label, cls in ((0, "0_real"), (1, "1_fake")):
                img = photos[k + 160 * label].copy()
                if label:
                    img[:PATCH, :PATCH] = 255
                d = root / split / "patch" / cls
                d.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(d / f"{k:04d}.png")
    return root


@pytest.fixture(scope="module")
def patch_run(patch_tree, tmp_path_factory) -> Path:
    """MyModel trained by the generated train.py on the patch data (its test/ is tested)."""
    project = tmp_path_factory.mktemp("explain_project")
    bench("init", cwd=project)
    flags = [
        *("--data_path", str(patch_tree), "--image_size", str(SIDE), "--epochs", "4", "--lr", "3e-3"),
        *("--batch_size", "32", "--no-hflip", "--threads", "2", "--no_progress", "--seed", "0"),
    ]
    script(project, "train.py", *flags, "--output_dir", "run")
    return project / "run"


def _test_fakes(run: Path, n: int = 8) -> tuple[torch.nn.Module, torch.Tensor]:
    from aigbench.engine import build
    from aigbench.evaluation.predict import load_run

    args, _, model, _, _ = load_run(run, device="cpu")
    transform = build.build_transform(args, False)
    tree = Path(json.loads((run / "config.json").read_text())["data_path"])
    paths = [s.path for s in load_samples(tree, "test") if s.label == 1][:n]
    views = np.stack([transform.prepare(np.asarray(Image.open(p).convert("RGB"))) for p in paths])
    return model, transform.normalizer.batch(views)


def test_maps_of_a_trained_cnn_sit_on_the_patch_and_pass_both_checks(patch_run):
    model, x = _test_fakes(patch_run)
    model = cam.explainable(model)
    target = cam.resolve_target(model, x)
    assert target.source.startswith("default"), target  # a user model: its last conv/norm before pooling
    maps = cam.compute_maps(model, x, target, "gradcam")
    assert maps.shape == (8, SIDE, SIDE)
    inside = maps[:, :PATCH, :PATCH].sum((1, 2)) / maps.sum((1, 2))
    assert inside.mean() > 0.5, inside  # most of the mass on a quarter of the image
    rand_model, rand_target = cam.randomised(model, x, target, seed=0)
    rand = cam.compute_maps(rand_model, x, rand_target, "gradcam")
    rho = np.array([cam.rank_correlation(a, b) for a, b in zip(maps, rand)])
    assert (rho <= cam.MAX_RANK_CORRELATION).sum() >= 7, rho  # the maps depend on the trained weights
    road = cam.road_scores(model, x[:4], maps[:4])
    assert (road >= cam.MIN_ROAD).all(), road  # removing the patch first moves the score most
    # the randomised copy leaves the layers below the target as they were
    below = [n for n, _ in model.named_parameters() if n.startswith("stem.")]
    assert below and all(
        torch.equal(dict(model.named_parameters())[n], dict(rand_model.named_parameters())[n]) for n in below
    )


def test_maps_of_an_untrained_model_are_flagged(patch_run):
    from aigbench.registry import MODELS

    trained, x = _test_fakes(patch_run)
    torch.manual_seed(0)
    untrained = cam.explainable(MODELS.get(type(trained).__name__)())
    target = cam.resolve_target(untrained, x)
    # the untrained model's Grad-CAM++ and EigenCAM maps follow the input (the bright patch), not
    # its random weights: re-initialising it draws the same maps, which the randomisation check flags
    rm, rt = cam.randomised(untrained, x, target, seed=1)
    for method in ("gradcam++", "eigencam"):
        maps, again = cam.compute_maps(untrained, x, target, method), cam.compute_maps(rm, x, rt, method)
        rho = np.array([cam.rank_correlation(a, b) for a, b in zip(maps, again)])
        assert (rho > cam.MAX_RANK_CORRELATION).sum() >= 7, (method, rho)
    # Grad-CAM of the untrained model: removing its "most relevant" pixels does not move the score
    g = cam.compute_maps(untrained, x[:4], target, "gradcam")
    road = cam.road_scores(untrained, x[:4], g)
    assert (np.abs(road) < cam.MIN_ROAD).all(), road
    inside = g[:, :PATCH, :PATCH].sum((1, 2)) / np.maximum(g.sum((1, 2)), 1e-9)
    assert inside.mean() < 0.5, inside


def test_bench_explain_writes_overlays_grids_csv_and_tensorboard(patch_run, patch_tree, tmp_path):
    out = tmp_path / "explained"
    proc = bench(
        "explain",
        "--run",
        str(patch_run),
        str(patch_tree),
        "--limit",
        "3",
        "--out",
        str(out),
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    assert "image(s) explained with gradcam at features." in proc.stdout, proc.stdout
    with open(out / "explanations.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["label"] for r in rows} == {"0", "1"}  # labels from the ForenSynths layout
    assert {r["generator"] for r in rows} == {"patch"}
    for r in rows:
        assert r["status"] == "ok" and r["method"] == "gradcam"
        assert -1 <= float(r["randomisation_spearman"]) <= 1 and r["explains_model"] in ("True", "False")
        assert r["faithful"] in ("True", "False") and r["road"]
        overlay = np.asarray(Image.open(out / r["overlay"]))
        assert overlay.ndim == 3 and overlay.shape[0] > 200
    fakes = [r for r in rows if r["label"] == "1"]
    assert all(r["faithful"] == "True" for r in fakes), fakes
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_explained"] == 6 and sorted(summary["grids"]) == ["grids/fake_patch.png", "grids/real_patch.png"]
    assert all((out / g).is_file() for g in summary["grids"])
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tensorboard").iterdir())
    # the scores are those test.py recorded for the same files
    from aigbench.engine.checkpoint import pick_checkpoint

    pred = patch_run / "test" / pick_checkpoint(patch_run).stem / "patchset" / "predictions.csv"
    with open(pred, newline="") as f:
        recorded = {r["path"]: float(r["score"]) for r in csv.DictReader(f)}
    for r in rows:
        assert float(r["score"]) == pytest.approx(recorded[r["path"]], abs=2e-4)


def test_a_bad_target_layer_is_named(patch_run, patch_tree, tmp_path):
    proc = bench(
        "explain",
        "--run",
        str(patch_run),
        str(patch_tree / "test"),
        "--target_layer",
        "features.99",
        "--device",
        "cpu",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode != 0 and "--target_layer 'features.99'" in proc.stderr, proc.stderr


def test_vit_maps_pass_through_the_reshape_and_have_the_image_shape():
    from aigbench.datasets.transforms import ImageTransform
    from aigbench.registry import MODELS

    torch.manual_seed(0)
    bfree = cam.explainable(MODELS.get("BFree")(image_size=56))  # DINOv2 ViT-B/14, 4 registers, random weights
    calls = []
    original = bfree.cam_reshape
    bfree.cam_reshape = lambda t, hw: calls.append((tuple(t.shape), hw)) or original(t, hw)
    image = np.ascontiguousarray(np.tile(_real_photos(1)[0], (2, 2, 1))[:70, :98])  # 70 x 98, scored whole
    transform = ImageTransform.from_preprocess(MODELS.get("BFree").preprocess, False)  # resize_mode none
    x = transform.normalizer.batch(transform.prepare(image)[None])
    target = cam.resolve_target(bfree, x)
    assert target.name == "model.blocks.11.norm1" and target.source == "declared by BFree"
    maps = cam.compute_maps(bfree, x, target, "gradcam")
    assert maps.shape == (1, 70, 98) and np.isfinite(maps).all() and maps.max() > 0
    assert calls and calls[0][0][0] == 5 and calls[0][1] == (70, 98)  # five crops folded back
    full = full_image_map(maps, view_boxes(transform, 70, 98), 70, 98)
    assert full.shape == image.shape[:2] and not np.isnan(full).any()
    commfor = cam.explainable(MODELS.get("CommForViT")(model_size="tiny", image_size=64))
    y = torch.randn(2, 3, 64, 64)
    t = cam.resolve_target(commfor, y)
    assert t.tokens and cam.compute_maps(commfor, y, t, "gradcam").shape == (2, 64, 64)


@pytest.mark.parametrize("mode", ["crop", "resize_crop", "multicrop", "resize"])
def test_views_map_back_onto_the_full_image(mode):
    from aigbench.datasets.transforms import ImageTransform
    from aigbench.imageops import geometry

    h, w, s = 90, 120, 64
    t = ImageTransform(s, False, mode, crop_pct=0.875, crops=5 if mode == "multicrop" else 0)
    boxes = view_boxes(t, h, w)
    if mode == "crop":
        y0, x0 = geometry.center_offsets(h, w, s)
        assert boxes == [{"view": (0, s, 0, s), "image": (y0, y0 + s, x0, x0 + s), "flip": False}]
    elif mode == "resize":
        assert boxes == [{"view": (0, s, 0, s), "image": (0, h, 0, w), "flip": False}]
    elif mode == "multicrop":
        assert len(boxes) == 5 and boxes[1]["image"][3] == w and boxes[0]["image"][:1] == (0,)
    else:  # shorter side to 64 / 0.875 = 73, then the centre 64: a centred box inside the image
        (y0, y1, x0, x1) = boxes[0]["image"]
        assert 0 < y0 < y1 < h and 0 < x0 < x1 < w and abs((y0 + y1) - h) <= 2 and abs((x0 + x1) - w) <= 2
    maps = np.ones((len(boxes), s, s), np.float32)
    full = full_image_map(maps, boxes, h, w)
    assert full.shape == (h, w) and np.nanmax(full) == 1.0


# ---- spectra ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upsampled_tree(tmp_path_factory) -> Path:
    """ForenSynths shape: reals and originals are 256 px photos (CIFAKE, bicubic x8, with sensor-like
    noise), the generator nn2 the same kind of photos upsampled x2 by nearest neighbour (512 px);
    one real too small for the crop."""
    root = need_cifake() / "train" / "REAL"
    files = sorted(os.listdir(root))[:120]
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("spectrum") / "upsampled"
    for k, f in enumerate(files):
        photo = np.asarray(Image.open(root / f).convert("RGB").resize((256, 256), Image.BICUBIC)).astype(np.float32)
        img = Image.fromarray(np.clip(photo + rng.normal(0, 3, photo.shape), 0, 255).round().astype(np.uint8))
        kind = k % 3
        d = out / "test" / ("nn2", "originals", "nn2")[kind] / ("0_real", "1_fake", "1_fake")[kind]
        d.mkdir(parents=True, exist_ok=True)
        (img.resize((512, 512), Image.NEAREST) if kind == 2 else img).save(d / f"{k:04d}.png")
    Image.fromarray(np.zeros((100, 300, 3), np.uint8)).save(out / "test" / "nn2" / "0_real" / "small.png")
    return out


def test_nearest_upsampling_peaks_at_half_a_cycle_per_pixel_and_originals_do_not(upsampled_tree, tmp_path):
    out = tmp_path / "spec"
    proc = bench("data", "spectrum", str(upsampled_tree), "--out", str(out), cwd=tmp_path)
    report = json.loads((out / "spectrum.json").read_text())
    assert report["size"] == 256 and "3x3 median" in report["residual"] and "256x256" in report["crop"]
    groups = {g["group"]: g for g in report["groups"]}
    assert groups["real_nn2"]["n_images"] == 40 and groups["real_nn2"]["n_too_small"] == 1
    top = groups["fake_nn2"]["peaks"][0]
    on_axis = sorted([abs(top["fy"]), abs(top["fx"])])
    assert on_axis[0] <= 0.01 and on_axis[1] >= 0.48 and abs(top["period_px"] - 2) < 0.1, top
    assert top["strength_db"] > 10 and groups["fake_nn2"]["compared_with"] == "real_nn2"
    for p in groups["fake_originals"]["peaks"]:  # compared with all reals: no trace of x2 upsampling
        near_nyquist = max(abs(p["fy"]), abs(p["fx"])) >= 0.45 and min(abs(p["fy"]), abs(p["fx"])) <= 0.02
        assert not (near_nyquist and p["strength_db"] > 3), p
    assert groups["fake_originals"]["compared_with"] == "real (all)"
    for g in groups.values():
        assert np.asarray(Image.open(out / g["png"])).ndim == 3
    assert (out / "differences.png").is_file() and "period 2" in proc.stdout


def test_spectrum_refuses_data_smaller_than_the_crop(upsampled_tree, tmp_path):
    proc = bench(
        "data",
        "spectrum",
        str(upsampled_tree),
        "--size",
        "1024",
        "--out",
        str(tmp_path / "s"),
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode != 0 and "no image is at least 1024x1024" in proc.stderr


def test_report_shows_where_it_looks_and_the_spectra(patch_run, tmp_path):
    out = tmp_path / "report"
    bench("report", str(patch_run), "--out", str(out), "--explain", "2", "--spectrum", "--device", "cpu", cwd=tmp_path)
    html = (out / "report.html").read_text()
    assert "Where it looks" in html and "Artefact spectra of the test data" in html
    assert "most confident mistakes" in html or "a seeded random sample per class" in html
    sample = out / "analysis" / "run" / "explain" / "patchset" / "sample"
    rows = list(csv.DictReader(open(sample / "explanations.csv", newline="")))
    assert sorted(r["label"] for r in rows) == ["0", "0", "1", "1"]
    assert (out / "analysis" / "run" / "spectrum" / "patchset" / "spectrum.json").is_file()
    md = (out / "report.md").read_text()
    assert "### Where it looks" in md and "img/run_patchset_sample_" in md
    with headless_chromium(1400) as driver:  # the sections render: their maps and spectra load
        driver.get((out / "report.html").as_uri())
        shown = driver.execute_script(
            "const h = Array.from(document.querySelectorAll('h3')).map(x => x.textContent);"
            "const imgs = Array.from(document.images).filter(i => /sample per class|mistakes|patchset: /.test(i.alt));"
            "return [h, imgs.map(i => [i.complete, i.naturalWidth])];"
        )
    assert "Where it looks" in shown[0] and "Artefact spectra of the test data" in shown[0]
    assert shown[1] and all(done and width > 0 for done, width in shown[1]), shown[1]
