"""Numbers a reviewer accepts, at the data and metrics level: splits found at any depth,
pooled reals per generator, no silent empties, antialiased resizing, EXIF convention."""

import json
import logging
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

from aigbench.datasets.dataset import ImageDataset, build_loader, check_skipped, model_input
from aigbench.datasets.layouts import DatasetError, load_samples
from aigbench.datasets.splits import split_train_val
from aigbench.datasets.transforms import ImageTransform
from aigbench.engine.contract import OutputContractError, validate_output
from aigbench.engine.dist import DistContext
from aigbench.engine.loggers import clean_float, to_jsonable
from aigbench.engine.loop import predict
from aigbench.evaluation.evaluate import format_score, score_predictions
from aigbench.imageops import decode_image
from aigbench.metrics import generator_breakdown, youden_threshold

from conftest import need_cifake
from test_datasets import ConstantModel


def cifake_files(split: str, cls: str, n: int, start: int = 0) -> list:
    root = need_cifake() / split / cls
    return sorted(root.iterdir())[start : start + n]


def fill(folder, files, ext=".png"):
    """Copy real CIFAKE images into ``folder``, re-encoded to ``ext``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, src in enumerate(files):
        img = Image.open(src).convert("RGB")
        img.save(folder / f"{i:03d}{ext}")


def genimage_tree(root):
    """GenImage as shipped: root/<generator>/<subfolder>/{train,val}/{ai,nature}."""
    for k, (gen, sub) in enumerate(
        (("stable_diffusion_v_1_4", "imagenet_ai_0419_sdv4"), ("Midjourney", "imagenet_midjourney"))
    ):
        for split, n in (("train", 6), ("val", 3)):
            start = 20 * k + (0 if split == "train" else 10)
            fill(root / gen / sub / split / "ai", cifake_files("train", "FAKE", n, start))
            fill(root / gen / sub / split / "nature", cifake_files("train", "REAL", n, start), ".JPEG")
    return root


def test_genimage_splits_never_leak_and_generator_is_the_top_folder(tmp_path):
    root = genimage_tree(tmp_path / "GenImage")
    train = load_samples(root, "train")
    val = load_samples(root, "val")
    assert len(train) == 24 and len(val) == 12
    assert {os.path.basename(os.path.dirname(os.path.dirname(s.path))) for s in train} == {"train"}
    assert not {s.path for s in train} & {s.path for s in val}
    assert {s.generator for s in train} == {"stable_diffusion_v_1_4", "Midjourney"}
    assert {s.category for s in train} == {""}  # GenImage's subfolder is not a category
    assert all((s.label == 1) == ("/ai/" in s.path) for s in train + val)
    # GenImage ships no test split: the test request takes val (the benchmark's protocol)
    assert {s.path for s in load_samples(root, "test")} == {s.path for s in val}
    with pytest.raises(DatasetError, match=r"several splits: train/ \(24 images\), val/ \(12 images\)"):
        load_samples(root)
    # one generator's folder alone
    assert len(load_samples(root / "Midjourney", "val")) == 6


def test_forensynths_split_generator_and_category(tmp_path):
    root = tmp_path / "CNNDetection"
    fill(root / "train" / "progan" / "car" / "0_real", cifake_files("train", "REAL", 3))
    fill(root / "train" / "progan" / "car" / "1_fake", cifake_files("train", "FAKE", 3))
    fill(root / "train" / "progan" / "cat" / "0_real", cifake_files("train", "REAL", 2, 5))
    fill(root / "train" / "progan" / "cat" / "1_fake", cifake_files("train", "FAKE", 2, 5))
    fill(root / "val" / "progan" / "car" / "0_real", cifake_files("train", "REAL", 2, 10))
    fill(root / "val" / "progan" / "car" / "1_fake", cifake_files("train", "FAKE", 2, 10))
    fill(root / "test" / "stylegan" / "bedroom" / "0_real", cifake_files("test", "REAL", 2))
    fill(root / "test" / "stylegan" / "bedroom" / "1_fake", cifake_files("test", "FAKE", 2))
    fill(root / "test" / "biggan" / "0_real", cifake_files("test", "REAL", 2, 4))
    fill(root / "test" / "biggan" / "1_fake", cifake_files("test", "FAKE", 2, 4))
    train = load_samples(root, "train")
    assert len(train) == 10 and {s.generator for s in train} == {"progan"}
    assert sorted({s.category for s in train}) == ["car", "cat"]
    test = load_samples(root, "test")
    assert {(s.generator, s.category) for s in test} == {("stylegan", "bedroom"), ("biggan", "")}
    assert len(load_samples(root, "val")) == 4
    with pytest.raises(DatasetError, match="several splits"):
        load_samples(root)


def univfd_tree(root, n=8):
    """UnivFD diffusion_datasets: real pools beside fake-only generator folders."""
    fill(root / "imagenet" / "0_real", cifake_files("test", "REAL", n))
    fill(root / "laion" / "0_real", cifake_files("test", "REAL", n, n))
    fill(root / "guided" / "1_fake", cifake_files("test", "FAKE", n))
    fill(root / "ldm_200" / "1_fake", cifake_files("test", "FAKE", n, n))
    fill(root / "glide_100_27" / "1_fake", cifake_files("test", "FAKE", n, 2 * n))
    return root


def test_pooled_reals_per_generator_match_sklearn(tmp_path):
    root = univfd_tree(tmp_path / "diffusion_datasets")
    samples = load_samples(root, "test")
    rng = np.random.default_rng(0)
    y = np.array([s.label for s in samples], float)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    gens = [x.generator for x in samples]
    out = generator_breakdown(y, s, gens)
    assert sorted(out["per_generator"]) == ["glide_100_27", "guided", "ldm_200"]
    assert set(out["pairing"].values()) == {"pooled_reals"}
    assert out["real_pools"]["imagenet"]["n_real"] == 8
    reals = y == 0
    per_acc, per_ap, per_auc = [], [], []
    for g, m in out["per_generator"].items():
        sel = (np.array(gens) == g) | reals
        assert m["n_real"] == 16 and m["n_fake"] == 8
        assert m["auroc"] == pytest.approx(roc_auc_score(y[sel], s[sel]), abs=1e-12)
        assert m["ap"] == pytest.approx(average_precision_score(y[sel], s[sel]), abs=1e-12)
        assert m["accuracy"] == pytest.approx(accuracy_score(y[sel], s[sel] > 0.5), abs=1e-12)
        per_acc.append(m["accuracy"])
        per_ap.append(m["ap"])
        per_auc.append(m["auroc"])
    summ = out["summary"]
    assert summ["mean_accuracy"] == pytest.approx(np.mean(per_acc))
    assert summ["mean_ap"] == pytest.approx(np.mean(per_ap))
    assert summ["mean_auroc"] == pytest.approx(np.mean(per_auc))
    worst = min(out["per_generator"], key=lambda g: out["per_generator"][g]["accuracy"])
    assert summ["worst_accuracy"]["generator"] == worst


def test_own_reals_kept_and_reals_tagged_empty_are_pooled():
    y = np.array([0, 1, 0, 1, 0, 0, 1, 1])
    s = np.array([0.1, 0.9, 0.6, 0.4, 0.2, 0.3, 0.8, 0.7])
    own = generator_breakdown(y, s, ["a", "a", "a", "a", "b", "b", "b", "b"])
    assert own["pairing"] == {"a": "own_reals", "b": "own_reals"}
    assert own["per_generator"]["a"]["auroc"] == roc_auc_score(y[:4], s[:4])
    # AI-GenBench style list: reals carry generator "", each generator's fakes meet all reals
    pooled = generator_breakdown(y, s, ["", "g1", "", "g2", "", "", "g1", "g2"])
    assert pooled["pairing"] == {"g1": "pooled_reals", "g2": "pooled_reals"}
    sel = np.array([True, True, True, False, True, True, True, False])
    assert pooled["per_generator"]["g1"]["auroc"] == roc_auc_score(y[sel], s[sel])
    assert pooled["per_generator"]["g1"]["n_real"] == 4


def test_one_class_test_set_says_auroc_is_undefined(tmp_path):
    fill(tmp_path / "fakes" / "1_fake", cifake_files("test", "FAKE", 6))
    ds = ImageDataset(load_samples(tmp_path / "fakes"), ImageTransform(32, False), "fakes")
    loader = build_loader(ds, 4, train=False)
    preds = predict(ConstantModel(), loader, DistContext(torch.device("cpu")))
    result = score_predictions(preds, loader)
    assert result["notes"] == ["only fake images: AUROC and AP are undefined (n/a); accuracy is the recall of fakes"]
    from aigbench.evaluation.evaluate import results_table

    table = results_table("c.pth", {"fakes": result})
    assert "n/a" in table and "nan" not in table.lower()
    assert to_jsonable(result)["metrics"]["auroc"] is None


def test_val_split_is_stratified_seeded_and_disjoint():
    from aigbench.datasets.layouts import Sample

    samples = [Sample(f"{g}/{y}/{i}.png", y, g) for g in ("a", "b") for y in (0, 1) for i in range(50)]
    train, val = split_train_val(samples, 0.2, seed=3)
    assert len(val) == 40 and len(train) == 160
    for g in ("a", "b"):
        for y in (0, 1):
            assert sum(1 for s in val if s.generator == g and s.label == y) == 10
    assert not {s.path for s in train} & {s.path for s in val}
    assert split_train_val(samples, 0.2, seed=3) == (train, val)
    assert split_train_val(samples, 0.2, seed=4)[1] != val


def test_json_list_with_missing_paths_and_contradictions_fails_before_work(tmp_path):
    good = cifake_files("test", "REAL", 2)
    spec = tmp_path / "list.json"
    spec.write_text(json.dumps([[str(good[0]), 0], ["nope/a.png", 1], ["nope/b.png", 1]]))
    with pytest.raises(DatasetError, match=r"2 of 3 listed image\(s\) do not exist") as e:
        load_samples(spec)
    assert "nope/a.png" in str(e.value)
    spec.write_text(json.dumps([[str(good[0]), 0], [str(good[1]), 0], [str(good[0]), "fake"]]))
    with pytest.raises(DatasetError, match="listed both as real and as fake") as e:
        load_samples(spec)
    assert str(good[0]) in str(e.value)
    with pytest.raises(DatasetError, match=r"--layout: 'GenImag' .* Did you mean 'GenImage'"):
        load_samples(spec, layout="GenImag")


def test_skip_ratio_and_all_undecodable_are_errors():
    check_skipped("d", 5, 100, 0.05)
    with pytest.raises(DatasetError, match=r"d: 6 of 100 image\(s\) \(6.0 %\) are undecodable.*--max_skip_ratio"):
        check_skipped("d", 6, 100, 0.05)
    with pytest.raises(DatasetError, match="none of its 3 image"):
        check_skipped("d", 3, 3, 1.0)


def test_evaluation_stops_when_too_many_files_are_corrupt(tmp_path):
    from aigbench.evaluation.evaluate import evaluate_datasets

    root = tmp_path / "set"
    fill(root / "REAL", cifake_files("test", "REAL", 5))
    fill(root / "FAKE", cifake_files("test", "FAKE", 5))
    (root / "FAKE" / "bad.png").write_bytes(b"\x89PNG broken")
    ds = ImageDataset(load_samples(root), ImageTransform(32, False), "set")
    loaders = {"set": build_loader(ds, 4, train=False)}
    with pytest.raises(DatasetError, match=r"test dataset 'set': 1 of 11 image\(s\)"):
        evaluate_datasets(ConstantModel(), loaders, DistContext(torch.device("cpu")))
    assert evaluate_datasets(ConstantModel(), loaders, DistContext(torch.device("cpu")), max_skip_ratio=0.1)


def test_gif_and_other_pillow_formats_are_listed_and_decoded(tmp_path, caplog):
    src = cifake_files("test", "FAKE", 1)[0]
    ref = np.asarray(Image.open(src).convert("RGB"))
    (tmp_path / "FAKE").mkdir()
    Image.open(src).convert("RGB").save(tmp_path / "FAKE" / "x.gif")
    fill(tmp_path / "REAL", cifake_files("test", "REAL", 1), ".webp")
    (tmp_path / "REAL" / "notes.txt").write_text("not an image")
    with caplog.at_level(logging.WARNING, logger="aigbench"):
        samples = load_samples(tmp_path)
    assert sorted(os.path.basename(s.path) for s in samples) == ["000.webp", "x.gif"]
    assert any("notes.txt" in r.getMessage() for r in caplog.records)
    gif = decode_image(str(tmp_path / "FAKE" / "x.gif"))
    assert gif is not None and gif.shape == ref.shape and gif.dtype == np.uint8
    pil = np.asarray(Image.open(tmp_path / "FAKE" / "x.gif").convert("RGB"))
    assert np.array_equal(gif, pil)  # the palette image, decoded as Pillow decodes it


def test_downscaling_is_antialiased_like_pil():
    stripes = np.zeros((300, 300, 3), np.uint8)
    stripes[::2] = 255
    ours = ImageTransform(70, False).prepare(stripes)
    pil = np.asarray(Image.fromarray(stripes).resize((70, 70), Image.BILINEAR))
    naive = cv2.resize(stripes, (70, 70), interpolation=cv2.INTER_LINEAR)
    assert naive.std() > 50  # aliasing: the 1-pixel stripes fold into a false pattern
    assert ours.std() < 10 and abs(float(ours.mean()) - float(pil.mean())) < 2
    # enlarging keeps the declared interpolation
    small = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    big = ImageTransform(32, False, interpolation="nearest").prepare(small)
    assert set(np.unique(big)) <= set(np.unique(small))


def test_exif_orientation_is_ignored_like_pil_without_exif_transpose(tmp_path):
    img = np.asarray(Image.open(cifake_files("test", "REAL", 1)[0]).convert("RGB").resize((64, 32)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.fromarray(img).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    ours = decode_image(str(tmp_path / "rot.jpg"))
    pil = np.asarray(Image.open(tmp_path / "rot.jpg").convert("RGB"))
    assert ours.shape == pil.shape == (32, 64, 3)  # not rotated
    assert np.abs(ours.astype(int) - pil.astype(int)).max() <= 2  # same pixels (decoder rounding)


def test_fp16_probabilities_are_refused_and_scores_round_trip(tmp_path):
    logits = torch.tensor([8.0, 9.0, 10.0, 12.0])
    assert len(set(torch.sigmoid(logits.half()).tolist())) < 4  # float16 ties
    assert len(set(torch.sigmoid(logits.float()).tolist())) == 4
    out = {
        "backward_loss": torch.tensor(0.0),
        "pred_label": torch.sigmoid(logits.half()),
        "visual_loss": {},
        "visual_image": {},
    }
    with pytest.raises(OutputContractError, match="float32.*torch.sigmoid\\(logit.float\\(\\)\\)"):
        validate_output(out, 4)
    rng = np.random.default_rng(1)
    s = rng.random(1000).astype(np.float32)
    back = np.array([float(format_score(v)) for v in s])
    assert np.array_equal(back.astype(np.float32), s)
    y = rng.integers(0, 2, 1000)
    assert roc_auc_score(y, back) == roc_auc_score(y, s.astype(np.float64))


def test_json_numbers_carry_no_float_noise():
    assert to_jsonable({"a": 0.6799999999999999, "b": 1e-7, "c": 12345678.9, "n": 3}) == {
        "a": 0.68,
        "b": 1e-7,
        "c": 12345700.0,
        "n": 3,
    }
    assert clean_float(0.1 + 0.2) == 0.3


def test_youden_threshold_maximises_balanced_accuracy():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 400)
    s = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1)
    t = youden_threshold(y, s)

    def bal(th):
        return 0.5 * (((s > th) & (y == 1)).sum() / (y == 1).sum() + ((s <= th) & (y == 0)).sum() / (y == 0).sum())

    assert bal(t) == pytest.approx(max(bal(v) for v in np.unique(s)))
    assert youden_threshold([1, 1], [0.2, 0.3]) is None


def test_train_loader_replaces_corrupt_images_so_batches_keep_their_size(tmp_path):
    root = tmp_path / "t"
    fill(root / "REAL", cifake_files("train", "REAL", 4))
    fill(root / "FAKE", cifake_files("train", "FAKE", 4))
    for i in range(3):
        (root / "FAKE" / f"bad{i}.png").write_bytes(b"")
    ds = ImageDataset(load_samples(root), ImageTransform(32, True), "t", substitute=True)
    batches = list(build_loader(ds, 11, train=True))
    assert len(batches) == 1 and batches[0]["image"].shape[0] == 11
    assert sorted(os.path.basename(p) for p in batches[0]["skipped"]) == ["bad0.png", "bad1.png", "bad2.png"]


def test_a_probe_on_random_features_says_so_in_metrics_json(tmp_path):
    from aigbench.engine.build import model_info
    from aigbench.evaluation.evaluate import evaluate_datasets
    from aigbench.model_zoo.timm_backbone import TimmDetector

    model = TimmDetector(backbone="resnet18", mode="probe", image_size=32)
    info = model_info(model)
    assert info == {"model": "TimmDetector", "pretrained": False}
    root = tmp_path / "set"
    fill(root / "REAL", cifake_files("test", "REAL", 4))
    fill(root / "FAKE", cifake_files("test", "FAKE", 4))
    loaders = {"set": build_loader(ImageDataset(load_samples(root), ImageTransform(32, False), "set"), 8, False)}
    evaluate_datasets(model, loaders, DistContext(torch.device("cpu")), tmp_path / "res", extra=info)
    written = json.loads((tmp_path / "res" / "set" / "metrics.json").read_text())
    assert written["pretrained"] is False and written["model"] == "TimmDetector"


def test_evaluation_runs_in_float32_even_under_mixed_precision(tmp_path):
    from aigbench.engine.amp import AmpPolicy

    fill(tmp_path / "REAL", cifake_files("test", "REAL", 40))
    fill(tmp_path / "FAKE", cifake_files("test", "FAKE", 40))
    loader = build_loader(ImageDataset(load_samples(tmp_path), ImageTransform(32, False), "s"), 16, False)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 1))

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, image, label, *a, **k):
            logit = self.net(image).squeeze(1) * 3  # logits of several units: bf16 keeps 8 bits of them
            return {
                "backward_loss": logit.float().mean(),
                "pred_label": torch.sigmoid(logit.float()),
                "visual_loss": {},
                "visual_image": {},
            }

    ctx = DistContext(torch.device("cpu"))
    fp32 = predict(Head(), loader, ctx).score
    mixed = predict(Head(), loader, ctx, amp=AmpPolicy("cpu", torch.bfloat16)).score
    assert np.array_equal(fp32, mixed)
    assert len(np.unique(fp32)) == len(fp32) == 80
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what scoring under autocast would give: ties
        batch = next(iter(build_loader(loader.dataset, 80, False)))
        tied = torch.sigmoid(Head().net(model_input(batch, torch.device("cpu"))).squeeze(1).mul(3).float())
    assert len(np.unique(tied.detach().numpy())) < len(fp32)


def test_thresholds_keep_full_precision_in_json():
    t = float(np.float32(0.99999994))
    out = to_jsonable({"threshold": t, "accuracy": 0.6799999999999999, "at": {"threshold": t}})
    assert out == {"threshold": t, "accuracy": 0.68, "at": {"threshold": t}}


def test_models_with_the_old_normalization_attributes_keep_their_statistics(caplog):
    from aigbench.datasets.preprocess import model_preprocess

    class Old(torch.nn.Module):
        input_mean = (0.5, 0.5, 0.5)
        input_std = (0.25, 0.25, 0.25)

        def __init__(self, image_size: int = 64):
            super().__init__()

    with caplog.at_level(logging.WARNING, logger="aigbench"):
        cfg = model_preprocess(Old)
    assert cfg.mean == (0.5, 0.5, 0.5) and cfg.std == (0.25, 0.25, 0.25) and cfg.input_size == 64
    assert any("the old way" in r.getMessage() for r in caplog.records)
