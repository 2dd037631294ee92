"""The field's data as shipped: CSV lists, --label_map, format alignment, parquet and Arrow sources."""

import csv
import json
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from aigbench.datasets.dataset import ImageDataset, build_loader
from aigbench.datasets.layouts import DatasetError, Sample, detect_layout, load_samples, parse_label_map
from aigbench.datasets.transforms import ImageTransform
from aigbench.engine.dist import DistContext
from aigbench.evaluation.evaluate import evaluate_datasets
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
    aligned = tmp_path / "out" / "set+align_jpeg-96" / "metrics.json"  # beside the raw result, never over it
    assert json.loads(aligned.read_text())["align_format"] == "jpeg:96"
    for bad in ("png", "jpeg:0", "jpeg:x", "gif:50"):
        with pytest.raises(ValueError, match="--align_format"):
            FormatAlign(bad)
    Image.open(tmp_path / "REAL" / "000.png")  # the files themselves are untouched


def _png_bytes(src) -> bytes:
    import io

    buf = io.BytesIO()
    Image.open(src).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def community_forensics_parquet(path, n=6, row_group_size=4):
    """Community Forensics' shape: image_data bytes, label, model_name, split (+ other columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    reals, fakes = cifake_files("train", "REAL", n), cifake_files("train", "FAKE", n)
    rows = [(_png_bytes(f), 0, "", "train" if i < n - 2 else "test", "imagenet") for i, f in enumerate(reals)]
    rows += [
        (_png_bytes(f), 1, "sdxl" if i % 2 else "dalle3", "train" if i < n - 2 else "test", "")
        for i, f in enumerate(fakes)
    ]
    table = pa.table(
        {
            "image_data": [r[0] for r in rows],
            "label": [r[1] for r in rows],
            "model_name": [r[2] for r in rows],
            "split": [r[3] for r in rows],
            "dataset_name": [r[4] for r in rows],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)
    return [f for f in reals] + [f for f in fakes]


def test_community_forensics_parquet_reads_rows_lazily_and_exactly(tmp_path):
    from aigbench.datasets import sources

    f = tmp_path / "cf" / "data.parquet"
    originals = community_forensics_parquet(f)
    train = load_samples(f, "train")
    test = load_samples(f, "test")
    assert detect_layout(f) == "Parquet" and detect_layout(f.parent) == "Parquet"
    assert len(train) == 8 and len(test) == 4
    assert {s.generator for s in train if s.label == 1} == {"sdxl", "dalle3"}
    assert all(s.path.startswith(str(f) + "#") for s in train)
    # every row decodes to the very pixels of the image that was stored in it
    for s in train + test:
        row = int(s.path.rsplit("#", 1)[1])
        ref = np.asarray(Image.open(originals[row]).convert("RGB"))
        assert np.array_equal(sources.load_image(s.path), ref), s.path
    assert len(sources._GROUPS) <= 2  # only the last row groups' image columns are held
    assert sources.load_image(str(f) + "#999") is None


def test_aiornot_parquet_and_hub_shards_with_classlabel_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    reals, fakes = cifake_files("test", "REAL", 5), cifake_files("test", "FAKE", 5)
    # aiornot: image (Hugging Face Image struct with bytes) and label
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    ds = datasets.Dataset.from_dict({"image": [str(p) for p in reals + fakes], "label": [0] * 5 + [1] * 5}, feats)
    ds.to_parquet(str(tmp_path / "aiornot" / "train.parquet"))
    s = load_samples(tmp_path / "aiornot" / "train.parquet")
    assert [x.label for x in s] == [0] * 5 + [1] * 5 and {x.split for x in s} == {"train"}
    img = ImageDataset(s, ImageTransform(32, False))[7]["image"]
    assert img.shape == (32, 32, 3)
    # hub cache shards whose ClassLabel puts "fake" first: the names decide, not the index
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["fake", "real"])})
    ds = datasets.Dataset.from_dict({"image": [str(p) for p in reals + fakes], "label": [1] * 5 + [0] * 5}, feats)
    shards = tmp_path / "hub" / "data"
    shards.mkdir(parents=True)
    for k in range(2):
        ds.shard(2, k, contiguous=True).to_parquet(str(shards / f"train-0000{k}-of-00002.parquet"))
    hub = load_samples(tmp_path / "hub", "train")
    assert [x.label for x in hub] == [0] * 5 + [1] * 5


def test_hugging_face_save_to_disk_datasetdict_like_ai_genbench(tmp_path):
    datasets = pytest.importorskip("datasets")
    reals, fakes = cifake_files("test", "REAL", 6), cifake_files("test", "FAKE", 6)
    feats = datasets.Features(
        {"image": datasets.Image(), "label": datasets.Value("int64"), "generator": datasets.Value("string")}
    )

    def part(r, f):
        gens = [""] * len(r) + ["SD 1.5" if i % 2 else "Midjourney v5" for i in range(len(f))]
        return datasets.Dataset.from_dict(
            {"image": [str(p) for p in r + f], "label": [0] * len(r) + [1] * len(f), "generator": gens}, feats
        )

    dd = datasets.DatasetDict({"train": part(reals[:4], fakes[:4]), "validation": part(reals[4:], fakes[4:])})
    dd.save_to_disk(str(tmp_path / "aigenbench"))
    root = tmp_path / "aigenbench"
    assert detect_layout(root) == "HFDisk"
    train, val = load_samples(root, "train"), load_samples(root, "val")
    assert len(train) == 8 and len(val) == 4
    assert {s.generator for s in val if s.label == 0} == {""}
    loader = build_loader(ImageDataset(val, ImageTransform(32, False), "val"), 4, False)
    res = evaluate_datasets(ConstantModel(), {"val": loader}, DistContext(torch.device("cpu")))
    assert res["val"]["metrics"]["n"] == 4 and res["val"]["n_skipped"] == 0
    assert set(res["val"]["generator_pairing"]["per_generator"].values()) == {"pooled_reals"}
    with pytest.raises(DatasetError, match="several splits"):
        load_samples(root)


@pytest.mark.slow
def test_parquet_through_train_test_and_robustness_scripts(project, tmp_path):
    from conftest import script

    f = tmp_path / "cf" / "data.parquet"
    community_forensics_parquet(f, n=24, row_group_size=8)
    out = project / "pq"
    common = ["--output_dir", str(out), "--batch_size", "8", "--no_progress"]
    script(
        project,
        "train.py",
        "--data_path",
        str(f),
        "--test_data_path",
        str(f),
        "--val_split",
        "0.25",
        "--epochs",
        "2",
        "--align_format",
        "jpeg:96",
        *common,
    )
    test_map = tmp_path / "tests.json"
    test_map.write_text(json.dumps({"cf_test": str(f)}))
    script(project, "test.py", "--test_data_json", str(test_map), *common)
    result = out / "test" / "checkpoint-best" / "cf_test+align_jpeg-96"  # aligned: beside the raw result
    m = json.loads((result / "metrics.json").read_text())
    assert m["metrics"]["n"] == 4 and m["align_format"] == "jpeg:96"
    assert set(m["per_generator"]) == {"sdxl", "dalle3"}
    with open(result / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert all("#" in r["path"] for r in rows) and {r["generator"] for r in rows} == {"", "sdxl", "dalle3"}
    script(project, "test_robust.py", "--test_data_json", str(test_map), *common)
    assert (out / "robustness" / "checkpoint-best" / "robustness.csv").exists()


def test_parse_sources_keeps_colons_that_are_not_weights():
    from aigbench.datasets.sampling import parse_sources

    assert parse_sources("aigbench:demo") == [("aigbench:demo", 1.0)]
    assert parse_sources("/d/a:1,/d/b:2.5, /d/c") == [("/d/a", 1.0), ("/d/b", 2.5), ("/d/c", 1.0)]
    with pytest.raises(DatasetError, match="weight of '/d/a' must be a positive number"):
        parse_sources("/d/a:0")


def test_balanced_weights_give_the_promised_shares():
    from aigbench.datasets.layouts import Sample
    from aigbench.datasets.sampling import WeightedDistributedSampler, sample_weights

    # source 0: 900 reals; source 1: fakes of two generators, 300 + 60
    samples = [Sample(f"r{i}", 0, "") for i in range(900)]
    samples += [Sample(f"a{i}", 1, "sdxl") for i in range(300)] + [Sample(f"b{i}", 1, "dalle") for i in range(60)]
    src = [0] * 900 + [1] * 360

    def share(w, pred):
        return sum(wi for s, wi in zip(samples, w) if pred(s))

    w = sample_weights(samples, src, [1.0, 3.0])
    assert share(w, lambda s: s.label == 0) == pytest.approx(0.25)  # source weights 1:3
    w = sample_weights(samples, src, [1.0, 1.0], "label")
    assert share(w, lambda s: s.label == 1) == pytest.approx(0.5)
    assert share(w, lambda s: s.generator == "dalle") == pytest.approx(0.5 * 60 / 360)
    w = sample_weights(samples, src, [1.0, 1.0], "generator")
    assert share(w, lambda s: s.generator == "dalle") == pytest.approx(0.25)
    assert share(w, lambda s: s.generator == "sdxl") == pytest.approx(0.25)
    # two processes draw disjoint slices of one seeded stream; the epoch reseeds it
    ranks = [WeightedDistributedSampler(w, 630, r, 2, seed=7) for r in (0, 1)]
    draws = [list(s) for s in ranks]
    assert len(draws[0]) == len(draws[1]) == 630
    again = list(WeightedDistributedSampler(w, 630, 0, 2, seed=7))
    assert draws[0] == again
    ranks[0].set_epoch(1)
    assert list(ranks[0]) != draws[0]
    picked = np.array(draws[0] + draws[1])
    assert abs(np.isin(picked, np.arange(1200, 1260)).mean() - 0.25) < 0.05


@pytest.mark.slow
def test_community_forensics_recipe_hf_fakes_plus_local_real_folders(project, tmp_path):
    from conftest import script

    fakes = tmp_path / "cf_fakes.parquet"
    community_forensics_parquet(fakes, n=20, row_group_size=16)  # its reals are dropped below
    import pyarrow.parquet as pq

    table = pq.read_table(fakes)
    pq.write_table(table.filter(pq.read_table(fakes, columns=["label"]).column("label").to_numpy() == 1), fakes)
    fill(tmp_path / "ImageNet" / "real", cifake_files("train", "REAL", 40, 100))
    proc = script(
        project,
        "train.py",
        "--data_path",
        f"{fakes}:1,{tmp_path / 'ImageNet'}:1",
        "--balance",
        "generator",
        "--val_split",
        "0.2",
        "--test_data_path",
        str(fakes),
        "--epochs",
        "1",
        "--batch_size",
        "8",
        "--output_dir",
        "cf",
    )
    assert "training mix per epoch" in proc.stdout and "real 50.0 %" in proc.stdout
    assert "sdxl 25.0 %" in proc.stdout and "dalle3 25.0 %" in proc.stdout
    with open(project / "cf" / "val_split.csv") as fh:
        val = [r for r in csv.DictReader(fh) if r["split"] == "val"]
    assert {r["label"] for r in val} == {"0", "1"}


def test_multicrop_scores_are_the_mean_of_the_crops_scores(tmp_path):
    from aigbench.datasets.transforms import multicrop
    from aigbench.engine.loop import predict

    fill(tmp_path / "REAL", cifake_files("test", "REAL", 3))
    fill(tmp_path / "FAKE", cifake_files("test", "FAKE", 3))
    for p in tmp_path.rglob("*.png"):  # full-size-ish images: 48 px
        Image.open(p).resize((48, 40), Image.BICUBIC).save(p)
    samples = load_samples(tmp_path)
    t = ImageTransform(32, False, resize_mode="multicrop", crops=10)
    assert t.crop_name == "multicrop10"
    preds = predict(ConstantModel(), build_loader(ImageDataset(samples, t), 4, False), DistContext(torch.device("cpu")))
    plain = ImageTransform(32, False, resize_mode="none")
    for i, s in zip(preds.index, preds.score):
        crops = multicrop(decode_image(samples[i].path), 32, 10)
        ref = [ConstantModel()(plain.normalizer(c)[None], torch.zeros(1))["pred_label"].item() for c in crops]
        assert s == pytest.approx(np.mean(ref), abs=1e-6)
    assert len({c.shape for c in crops}) == 1 and not np.array_equal(crops[0], crops[4])
    with pytest.raises(ValueError, match="--eval_crops must be 5"):
        ImageTransform(32, False, resize_mode="multicrop", crops=3)


@pytest.mark.slow
def test_one_model_under_every_evaluation_crop(project, tmp_path):
    from conftest import script

    for split, n in (("train", 40), ("test", 12)):
        for cls in ("REAL", "FAKE"):
            fill(tmp_path / "d" / split / cls, cifake_files(split, cls, n))
    for p in (tmp_path / "d" / "test").rglob("*.png"):  # test photos larger than the model input
        Image.open(p).resize((56, 48), Image.BICUBIC).save(p)
    d = tmp_path / "d"
    script(
        project,
        "train.py",
        "--data_path",
        str(d),
        "--test_data_path",
        str(d),
        "--train_crop",
        "random_crop",
        "--epochs",
        "2",
        "--batch_size",
        "16",
        "--output_dir",
        "crops",
    )
    accs = {}
    for crop in ("resize", "center_crop", "multicrop", "full"):
        script(
            project,
            "test.py",
            "--test_data_json",
            str(d),
            "--output_dir",
            "crops",
            "--eval_crop",
            crop,
            "--checkpoint",
            "last",
        )
        m = json.loads((project / "crops" / "test" / "checkpoint-1" / "d" / "metrics.json").read_text())
        assert m["metrics"]["n"] == 24 and m["eval_crop"] == {"multicrop": "multicrop5"}.get(crop, crop)
        accs[crop] = (m["metrics"]["accuracy"], m["metrics"]["auroc"])
    print("accuracy, AUROC per evaluation crop:", accs)
    assert len({auroc for _, auroc in accs.values()}) == 4  # each crop really gives the model other pixels


@pytest.mark.slow
def test_synthbuster_fakes_with_raise_reals_given_as_a_second_source(project, tmp_path):
    from conftest import script

    sb = tmp_path / "synthbuster"
    for k, gen in enumerate(("dalle3", "midjourney-v5", "stable-diffusion-xl")):
        fill(sb / gen, cifake_files("test", "FAKE", 6, 6 * k))
    fill(tmp_path / "RAISE", cifake_files("test", "REAL", 18))
    assert {s.label for s in load_samples(sb, layout="FakesOnly")} == {1}
    with pytest.raises(DatasetError, match="no known layout"):
        load_samples(sb)  # a folder of images says nothing about its label: name the layout
    (tmp_path / "tests.json").write_text(json.dumps({"synthbuster": "synthbuster@FakesOnly,RAISE@RealsOnly"}))
    train = tmp_path / "train"
    fill(train / "REAL", cifake_files("train", "REAL", 16))
    fill(train / "FAKE", cifake_files("train", "FAKE", 16))
    script(
        project,
        "train.py",
        "--data_path",
        str(train),
        "--test_data_path",
        str(tmp_path / "tests.json"),
        "--epochs",
        "1",
        "--batch_size",
        "8",
        "--output_dir",
        "sb",
    )
    m = json.loads((project / "sb" / "test" / "checkpoint-0" / "synthbuster" / "metrics.json").read_text())
    assert (m["metrics"]["n_real"], m["metrics"]["n_fake"]) == (18, 18)
    assert set(m["per_generator"]) == {"dalle3", "midjourney-v5", "stable-diffusion-xl"}
    assert m["generator_pairing"]["mode"] == "pooled_reals" and m["per_generator"]["dalle3"]["n_real"] == 18


def test_annotation_lines_list(tmp_path):
    fill(tmp_path / "imgs", cifake_files("test", "REAL", 2) + cifake_files("test", "FAKE", 2))
    spec = tmp_path / "annotations" / "test_annotations.txt"
    spec.parent.mkdir()
    spec.write_text(
        "# path label source content\n../imgs/000.png 0\n../imgs/001.png\t0\n"
        "../imgs/002.png,1,sd_xl,faces\n../imgs/003.png 1 dalle3 landscapes\n"
    )
    assert detect_layout(spec) == "TxtList"
    s = load_samples(spec)
    assert [(x.label, x.generator, x.category) for x in s] == [
        (0, "", ""),
        (0, "", ""),
        (1, "sd_xl", "faces"),
        (1, "dalle3", "landscapes"),
    ]
    assert all(os.path.isfile(x.path) for x in s)
    spec.write_text("../imgs/000.png\n")
    with pytest.raises(DatasetError, match="line 1 must read 'path label"):
        load_samples(spec)


def test_a_save_to_disk_folder_with_a_missing_file_is_a_clear_error(tmp_path):
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    files = cifake_files("test", "REAL", 2) + cifake_files("test", "FAKE", 2)
    datasets.Dataset.from_dict({"image": [str(p) for p in files], "label": [0, 0, 1, 1]}, feats).save_to_disk(
        str(tmp_path / "ds")
    )
    assert [s.label for s in load_samples(tmp_path / "ds")] == [0, 0, 1, 1]
    for arrow in (tmp_path / "ds").glob("*.arrow"):
        arrow.unlink()
    with pytest.raises(DatasetError, match="is listed in .*state.json but missing"):
        load_samples(tmp_path / "ds")


@pytest.mark.slow
def test_one_labelled_set_split_into_train_val_and_test_like_aiornot(project, tmp_path):
    from conftest import script

    f = tmp_path / "aiornot" / "train.parquet"
    community_forensics_parquet(f, n=30, row_group_size=16)  # labelled rows; its split column says train/test
    out = project / "ao"
    script(
        project,
        "train.py",
        "--data_path",
        str(f),
        "--test_split",
        "0.2",
        "--val_split",
        "0.1",
        "--test_data_path",
        str(f),
        "--epochs",
        "2",
        "--batch_size",
        "8",
        "--output_dir",
        str(out),
    )
    with open(out / "val_split.csv") as fh:
        rows = list(csv.DictReader(fh))
    counts = {k: sum(r["split"] == k for r in rows) for k in ("train", "val", "test")}
    # stratified by label x generator; both fractions of the whole (0.1 of 56 rows, not of the 44 left by test)
    assert sum(counts.values()) == 56 and counts["test"] == 12 and counts["val"] == 5
    assert len({r["path"] for r in rows}) == 56
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert last["test_heldout_n"] == 12
    # the held-out rows are tested again from the recorded file
    script(
        project,
        "test.py",
        "--test_data_json",
        str(out / "val_split.csv"),
        "--output_dir",
        str(out),
        "--checkpoint",
        "last",
    )
    m = json.loads((out / "test" / "checkpoint-1" / "val_split" / "metrics.json").read_text())["metrics"]
    assert m["n"] == 12 and m["auroc"] == pytest.approx(last["test_heldout_auroc"], abs=1e-6)


def test_review_fixes_for_real_trees_and_tables(tmp_path, monkeypatch, aigbench_log):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from aigbench.datasets.splits import write_split_csv

    # validation/ is a split folder, as val/ is
    fill(tmp_path / "t" / "validation" / "0_real", cifake_files("test", "REAL", 2))
    fill(tmp_path / "t" / "validation" / "1_fake", cifake_files("test", "FAKE", 2))
    fill(tmp_path / "t" / "train" / "0_real", cifake_files("train", "REAL", 2))
    fill(tmp_path / "t" / "train" / "1_fake", cifake_files("train", "FAKE", 2))
    assert {s.generator for s in load_samples(tmp_path / "t", "val")} == {""}
    # images outside any label folder (a misspelt 1_fakes/) are named in a warning
    fill(tmp_path / "t" / "train" / "1_fakes", cifake_files("train", "FAKE", 3, 10))
    load_samples(tmp_path / "t", "train")
    assert any("3 image(s) lie outside" in r.getMessage() and "1_fakes" in r.getMessage() for r in aigbench_log.records)
    # a boolean is_fake column; a table without labels whose reals are called "real"; splits only below the root
    png = [_png_bytes(p) for p in cifake_files("test", "REAL", 2) + cifake_files("test", "FAKE", 2)]
    d = tmp_path / "test" / "aiornot"  # a folder named test above the dataset says nothing about its rows
    d.mkdir(parents=True)
    pq.write_table(pa.table({"image": png, "is_fake": [False, False, True, True]}), d / "data.parquet")
    assert [s.label for s in load_samples(d / "data.parquet", "train")] == [0, 0, 1, 1]
    pq.write_table(pa.table({"image": png, "source": ["real", "", "midjourney", "sdxl"]}), d / "data.parquet")
    assert [s.label for s in load_samples(d / "data.parquet")] == [0, 0, 1, 1]
    # val_split.csv holds absolute paths, so that it reads back from any folder
    monkeypatch.chdir(tmp_path)
    rel = [s._replace(path=os.path.relpath(s.path, tmp_path)) for s in load_samples(tmp_path / "t", "val")]
    write_split_csv(tmp_path / "out" / "val_split.csv", rel, [], rel[:1])
    assert len(load_samples(tmp_path / "out" / "val_split.csv", "test")) == 1


def test_data_check_takes_sources_like_data_path_and_mixed_file_and_row_lists(tmp_path):
    from aigbench.audit import check_dataset

    sb = tmp_path / "synthbuster"
    fill(sb / "dalle3", cifake_files("test", "FAKE", 4))
    fill(tmp_path / "raise", cifake_files("test", "REAL", 4))
    report = check_dataset(f"{sb}@FakesOnly,{tmp_path / 'raise'}@RealsOnly")
    assert report["counts"]["total"]["real"] == 4 and report["counts"]["total"]["fake"] == 4
    f = tmp_path / "cf.parquet"
    community_forensics_parquet(f, n=40, row_group_size=8)
    rows = [[str(p), 0] for p in (tmp_path / "raise").iterdir()] + [[f"{f}#{i}", 1] for i in range(40, 80)]
    (tmp_path / "mixed.json").write_text(json.dumps(rows))
    report = check_dataset(tmp_path / "mixed.json", workers=8)  # threads must not share the row caches
    assert report["counts"]["total"]["fake"] == 40 and not report["problems"]


def test_forensynths_family_trees_as_shipped(tmp_path):
    # AIGCDetectBenchmark: test/<set>/{0_real,1_fake}; Chameleon: test/{0_real,1_fake}; WildRF: test/<platform>/...
    for name, parts in (
        ("AIGCDetectBenchmark", ("test", "ADM")),
        ("Chameleon", ("test",)),
        ("WildRF", ("test", "reddit")),
    ):
        root = tmp_path / name
        fill(root.joinpath(*parts, "0_real"), cifake_files("test", "REAL", 2))
        fill(root.joinpath(*parts, "1_fake"), cifake_files("test", "FAKE", 3))
        if name == "WildRF":
            fill(root / "test" / "twitter" / "0_real", cifake_files("test", "REAL", 1, 5))
            fill(root / "test" / "twitter" / "1_fake", cifake_files("test", "FAKE", 1, 5))
            fill(root / "train" / "reddit" / "0_real", cifake_files("train", "REAL", 1))
        assert detect_layout(root) == "ForenSynths"
        test = load_samples(root, "test")
        assert sum(s.label for s in test) == (4 if name == "WildRF" else 3)
        gens = {s.generator for s in test}
        assert gens == {"AIGCDetectBenchmark": {"ADM"}, "Chameleon": {""}, "WildRF": {"reddit", "twitter"}}[name]


def test_images_outside_every_split_are_named_when_a_split_is_taken(tmp_path, aigbench_log):
    fill(tmp_path / "train" / "0_real", cifake_files("train", "REAL", 2))
    fill(tmp_path / "train" / "1_fake", cifake_files("train", "FAKE", 2))
    fill(tmp_path / "extra" / "1_fake", cifake_files("train", "FAKE", 3, 5))
    assert len(load_samples(tmp_path, "train")) == 4
    assert any("3 image(s) belong to no train/val/test split" in r.getMessage() for r in aigbench_log.records)


def test_table_rows_read_from_many_threads_give_each_rows_bytes(tmp_path):
    """Content-grouped splits and the data check read rows from thread pools; the row readers
    and their row-group caches are shared, so reads are serialised (a race crashed train.py with
    --val_split on parquet data when the machine was busy)."""
    from concurrent.futures import ThreadPoolExecutor

    from aigbench.datasets.sources import read_row_bytes
    from aigbench.datasets.splits import content_groups

    f = tmp_path / "cf" / "data.parquet"
    community_forensics_parquet(f, n=40, row_group_size=3)
    paths = [f"{f}#{i}" for i in range(80)] * 4
    serial = [read_row_bytes(p) for p in paths[:80]]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(read_row_bytes, paths))
    assert all(a is not None for a in serial)
    assert threaded == serial * 4
    samples = [Sample(p, 0, "") for p in paths[:80]]
    groups = content_groups(samples, workers=8)
    assert len(set(groups)) <= 80 and len(groups) == 80
