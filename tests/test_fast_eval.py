"""Issue 23: full-size photos faster than a bare loop. Fused evaluation (exact), micro-batches
(same scores), --fast_decode (on request, recorded, refused by exact protocols), a data check that
hashes only the files whose sizes collide, and robustness sweeps that draw noise once."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from aigbench.datasets.dataset import ImageDataset, build_loader
from aigbench.datasets.layouts import Sample
from aigbench.datasets.transforms import ImageTransform
from aigbench.engine.dist import DistContext
from aigbench.engine.fusion import MIN_PIXELS, fused_for_eval
from aigbench.engine.loop import predict

from conftest import bench, cifake_subset, need_cifake, script


class SmallCNN(nn.Module):
    """conv-BN-ReLU blocks, as most detectors' stems are; BN statistics that are not the identity."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Linear(32, 1)
        gen = torch.Generator().manual_seed(0)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)

    def forward(self, image, label, *args, **kwargs):
        logit = self.head(self.features(image)).squeeze(1)
        return {
            "backward_loss": logit.mean(),
            "pred_label": torch.sigmoid(logit),
            "visual_loss": {},
            "visual_image": {},
        }


SIDE = 64  # CIFAKE photos enlarged: enough of them to be worth folding
ENOUGH = -(-MIN_PIXELS // (SIDE * SIDE * 2)) + 4  # per class


def _cifake_loader(n_per_class: int, batch: int = 64):
    samples = [Sample(p, y, "") for p, y in cifake_subset("train", n_per_class)]
    ds = ImageDataset(samples, ImageTransform(SIDE, False), "cifake")
    return build_loader(ds, batch, False, 0)


def test_fused_evaluation_gives_the_same_scores_and_says_so():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    loader = _cifake_loader(ENOUGH)
    cpu = torch.device("cpu")
    fused = predict(model, loader, DistContext(cpu, fuse_eval=True), show_progress=False)
    plain = predict(model, loader, DistContext(cpu, fuse_eval=False, micro_batch=0), show_progress=False)
    assert fused.fusion["fused"] and fused.fusion["batchnorms_folded"] == 2, fused.fusion
    assert plain.fusion == {"fused": False, "note": "--no_fuse"}
    assert np.array_equal(fused.index, plain.index)
    assert np.abs(fused.score - plain.score).max() <= 1e-6
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the model itself is not changed
    small = predict(model, _cifake_loader(20), DistContext(cpu), show_progress=False)
    assert not small.fusion["fused"] and "too few to gain" in small.fusion["note"]


def test_a_fusion_that_would_change_the_scores_is_not_used():
    class Sneaky(SmallCNN):  # reads a conv's output twice: folding its BN there would be wrong
        def forward(self, image, label, *args, **kwargs):
            conv, bn = self.features[0], self.features[1]
            x = conv(image)
            y = bn(x) + 0.1 * x
            logit = self.head(self.features[3:](self.features[2](y))).squeeze(1)
            return {"backward_loss": logit.mean(), "pred_label": torch.sigmoid(logit), "visual_loss": {},
                    "visual_image": {}}  # fmt: skip

    model = Sneaky().eval()
    x = torch.randn(2, 3, 32, 32)
    out, info = fused_for_eval(model, x)
    # torch.fx keeps a conv whose output has two users: only the second block's BN folds
    if info["fused"]:
        with torch.inference_mode():
            n = {"path": ["", ""], "generator": ["", ""], "index": torch.arange(2)}
            a = model(x, torch.zeros(2), **n)["pred_label"]
            b = out(x, torch.zeros(2), **n)["pred_label"]
        assert (a - b).abs().max() <= 1e-6


def test_micro_batches_give_the_same_scores():
    model = SmallCNN().eval()
    loader = _cifake_loader(40, batch=50)
    cpu = torch.device("cpu")
    whole = predict(model, loader, DistContext(cpu, fuse_eval=False, micro_batch=0), show_progress=False)
    micro = predict(model, loader, DistContext(cpu, fuse_eval=False, micro_batch=16), show_progress=False)
    assert np.abs(whole.score - micro.score).max() <= 1e-6 and len(micro.score) == 80
    assert micro.first_batch["image"].shape[0] == 32  # the first-batch grid still gets its images


def _photo(h: int, w: int, seed: int, tile: int = 128) -> np.ndarray:
    """A full-size photo tiled from real CIFAKE photos, each enlarged to ``tile`` pixels (bicubic):
    smooth regions and edges, as a camera photo has at this size."""
    root = need_cifake() / "train" / "REAL"
    files = sorted(os.listdir(root))[:64]
    rng = np.random.default_rng(seed)
    per_row = w // tile + 1
    rows = []
    for _ in range(h // tile + 1):
        picks = rng.integers(0, 64, per_row)
        row = [
            np.asarray(Image.open(root / files[i]).convert("RGB").resize((tile, tile), Image.BICUBIC)) for i in picks
        ]
        rows.append(np.concatenate(row, axis=1)[:, :w])
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:h])


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("fullsize")
    out = []
    for k, (h, w) in enumerate(((1536, 2048), (1200, 901), (480, 640))):
        p = d / f"photo_{k}.jpg"
        Image.fromarray(_photo(h, w, k)).save(p, quality=92)
        out.append(p)
    return out


def test_fast_decode_reduces_only_what_keeps_twice_the_target_and_stays_close(jpegs):
    from aigbench.evaluation.evaluate import provenance
    from aigbench.imageops import decode_image
    from aigbench.imageops.io import decode_image_reduced

    t = ImageTransform(224, False, "resize")
    assert t.decode_floor() == 448 and ImageTransform(224, False, "crop").decode_floor() is None
    factors = []
    for p in jpegs:
        reduced, f = decode_image_reduced(str(p), t.decode_floor())
        full = decode_image(str(p))
        factors.append(f)
        assert reduced.shape[0] >= 448 and reduced.shape[1] >= 448 or f == 1
        assert reduced.shape[:2] == (-(-full.shape[0] // f), -(-full.shape[1] // f))
        diff = np.abs(t.prepare(reduced).astype(np.int16) - t.prepare(full).astype(np.int16))
        # grey levels after the resize to 224: within one on average; an odd side (901 px) decodes to
        # ceil(901 / 2) pixels, which shifts the sampling grid by up to half a pixel at the far edge
        assert diff.mean() <= (1.0 if full.shape[1] % f == 0 else 2.5), (p.name, f, diff.mean())
        assert np.percentile(diff, 50) <= 1, (p.name, f)
    assert factors == [2, 2, 1], factors  # 2048x1536: x2 (x4 leaves 512x384 < 448); 901x1200: x2; 640x480: none
    samples = [Sample(str(p), 1, "") for p in jpegs]
    fast = ImageDataset(samples, t, "photos", fast_decode=True)
    exact = ImageDataset(samples, t, "photos")
    assert fast[0]["image"].shape == exact[0]["image"].shape == (224, 224, 3)
    assert not np.array_equal(fast[0]["image"], exact[0]["image"])
    loader = build_loader(fast, 2, False, 0)
    record = provenance(loader, {"metrics": {"threshold": 0.5}}, None)
    assert record["preprocess"]["fast_decode"] is True
    assert (
        provenance(build_loader(exact, 2, False, 0), {"metrics": {"threshold": 0.5}}, None)["preprocess"]["fast_decode"]
        is False
    )


def test_bench_eval_refuses_fast_decode(tmp_path):
    proc = bench("eval", "--run", str(tmp_path), "--suite", "synthbuster=x", "--fast_decode", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "--fast_decode is refused by bench eval" in proc.stderr


def test_data_check_hashes_only_files_whose_sizes_collide(tmp_path, monkeypatch):
    from aigbench.audit import check_dataset
    from aigbench.audit import files as audit_files

    src = need_cifake() / "test"
    for split in ("train", "test"):
        for cls, folder in (("REAL", "0_real"), ("FAKE", "1_fake")):
            d = tmp_path / "data" / split / "gen" / folder
            d.mkdir(parents=True)
            for f in sorted(os.listdir(src / cls))[(0 if split == "train" else 30) :][:30]:
                shutil.copy(src / cls / f, d / f)
    dup = tmp_path / "data" / "test" / "gen" / "0_real" / "copy_of_train.jpg"
    shutil.copy(next((tmp_path / "data" / "train" / "gen" / "0_real").iterdir()), dup)
    hashed = []
    real_digest = audit_files._digest
    monkeypatch.setattr(audit_files, "_digest", lambda data: hashed.append(len(data)) or real_digest(data))
    report = check_dataset(str(tmp_path / "data"), workers=1)
    sizes = [p.stat().st_size for p in (tmp_path / "data").rglob("*.jpg")]
    colliding = sum(1 for s in sizes if sizes.count(s) > 1)
    assert len(hashed) == colliding < len(sizes)  # the unique sizes were never hashed
    leaks = [g for g in report["leaks"] if g["kind"] == "split"]
    assert len(leaks) == 1 and any(p.endswith("copy_of_train.jpg") for p in leaks[0]["paths"])
    metadata = report["metadata"]["real"]
    assert metadata["format"][0]["value"] == "JPEG" and metadata["jpeg_quality"][0]["value"] > 0


def test_a_noise_sweep_draws_each_images_noise_once(monkeypatch):
    from aigbench.imageops import perturbations as P

    img = _photo(300, 400, 3)
    P._LAST_NOISE.clear()
    fresh = []
    for s in (2.0, 4.0, 8.0, 16.0):
        P._LAST_NOISE.clear()
        fresh.append(P.GaussianNoise(s, seed=5)(img))
    calls = []
    real = P._draw_noise
    monkeypatch.setattr(P, "_draw_noise", lambda *a: calls.append(1) or real(*a))
    P._LAST_NOISE.clear()
    swept = [P.GaussianNoise(s, seed=5)(img) for s in (2.0, 4.0, 8.0, 16.0)]
    assert len(calls) == 1
    assert all(np.array_equal(a, b) for a, b in zip(fresh, swept))  # bit-identical
    P.GaussianNoise(2.0, seed=6)(img)  # another seed: drawn again
    assert len(calls) == 2


@pytest.mark.slow
def test_test_py_records_fusion_and_no_fuse_gives_the_same_scores(project, tmp_path):
    items = cifake_subset("train", ENOUGH)
    (tmp_path / "big.json").write_text(json.dumps(items))
    (tmp_path / "small.json").write_text(json.dumps(cifake_subset("test", 40)))
    flags = ["--data_path", str(tmp_path / "small.json"), "--test_data_path", str(tmp_path / "big.json")]
    (tmp_path / "sets.json").write_text(json.dumps({"big": str(tmp_path / "big.json")}))
    size = ["--image_size", str(SIDE)]
    script(project, "train.py", *flags, *size, "--epochs", "1", "--output_dir", "out", "--no_progress", "--width", "8")
    results = {}
    for name, extra in (("fused", []), ("plain", ["--no_fuse", "--micro_batch", "0"])):
        script(
            project, "test.py", "--output_dir", "out", "--no_progress", "--checkpoint", "last",
            "--test_data_json", str(tmp_path / "sets.json"), *extra,
        )  # fmt: skip
        folder = next((project / "out" / "test").iterdir()) / "big"
        m = json.loads((folder / "metrics.json").read_text())
        with open(folder / "predictions.csv", newline="") as f:
            results[name] = (m, {r["path"]: float(r["score"]) for r in csv.DictReader(f)})
    assert results["fused"][0]["model_fusion"]["fused"] is True
    assert results["fused"][0]["model_fusion"]["batchnorms_folded"] == 4
    assert results["plain"][0]["model_fusion"] == {"fused": False, "note": "--no_fuse"}
    a, b = results["fused"][1], results["plain"][1]
    assert a.keys() == b.keys() and max(abs(a[k] - b[k]) for k in a) <= 1e-6
