"""Benchmark suites (issue 19): each shipped suite, on a fixture in its exact official tree made
from the embedded demo images, evaluated by ``bench eval``; its numbers recomputed from
``predictions.csv`` with the official formula (scikit-learn's AP and accuracy at ``score > 0.5``
per set, each set with its official pairing) must be equal. A partial tree is flagged, and
DiffusionForensics as shipped keeps its fakes."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score

from aigbench.datasets.layouts import DEMO_ROOT
from aigbench.fileio import clean_float
from aigbench.suites.base import builtin_suites, load_suite, protocol_card
from aigbench.suites.tree import check_tree

from conftest import bench, script

REALS = sorted((DEMO_ROOT / "test" / "REAL").iterdir())
FAKES = sorted((DEMO_ROOT / "test" / "FAKE").iterdir())

# Official folder names, as the benchmarks ship them (read at their source; see docs/suites.md).
OFFICIAL = {
    "forensynths": ["progan", "stylegan", "stylegan2", "biggan", "cyclegan", "stargan", "gaugan", "deepfake", "crn",
                    "imle", "seeingdark", "san", "whichfaceisreal"],
    "genimage": ["ADM/imagenet_ai_0508_adm/val", "BigGAN/imagenet_ai_0419_biggan/val", "glide/imagenet_glide/val",
                 "Midjourney/imagenet_midjourney/val", "stable_diffusion_v_1_4/imagenet_ai_0419_sdv4/val",
                 "stable_diffusion_v_1_5/imagenet_ai_0424_sdv5/val", "VQDM/imagenet_ai_0419_vqdm/val",
                 "wukong/imagenet_ai_0424_wukong/val"],
    "univfd_diffusion": ["guided", "ldm_200", "ldm_200_cfg", "ldm_100", "glide_100_27", "glide_50_27",
                         "glide_100_10", "dalle"],
}  # fmt: skip


def put(images: list[Path], dest: Path, start: int, n: int, ext: str = ".png", size: int = 64) -> int:
    """``n`` demo images (upscaled to ``size``) into ``dest``; returns the next start."""
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = images[(start + i) % len(images)]
        img = cv2.resize(cv2.imread(str(src)), (size, size), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(dest / f"{src.stem.replace(' ', '_')}_{start + i}{ext}"), img)
    return start + n


def build_tree(suite_name: str, root: Path, n: int = 3, tree_index: int = 0, skip: tuple[str, ...] = ()) -> Path:
    """The suite's declared tree, every set with ``n`` real and ``n`` fake images (categories where
    the official tree has them: ForenSynths' ProGAN classes), pools of reals shared."""
    suite = load_suite(suite_name)
    tree = suite.trees[tree_index]
    base = root / tree.prefixes[-1]
    label_of = {v: k for k, v in tree.labels.items()}
    k = 0
    for s in tree.sets:
        if s.name in skip:
            continue
        folder = base / s.path
        if s.fakes_only:
            k = put(FAKES, folder, k, n)
        elif s.reals:
            k = put(FAKES, folder / label_of[1], k, n)
        else:
            cats = ["airplane", "train"] if s.name == "progan" else [""]  # ProGAN: 20 classes, `train` among them
            for c in cats:
                k = put(REALS, folder / c / label_of[0], k, n)
                k = put(FAKES, folder / c / label_of[1], k, n)
    for pool in tree.pools.values():
        first = pool if isinstance(pool, str) else pool[0]
        plain = all(s.fakes_only for s in tree.sets)  # Synthbuster's RAISE: images; UnivFD's pools: <pool>/0_real
        put(REALS, base / first / ("" if plain else label_of[0]), 0, 2 * n, ".JPEG")
    for s in tree.sets:
        if s.reals and s.reals not in tree.pools and not (base / s.reals).exists():
            put(REALS, base / s.reals, 0, 2 * n, ".JPEG")
    return root


def recompute(pred_csv: Path) -> dict[str, dict[str, float]]:
    """Per set, the official formula on predictions.csv: sklearn accuracy at > 0.5 and AP."""
    by_set = defaultdict(lambda: ([], []))
    with open(pred_csv, newline="") as f:
        for r in csv.DictReader(f):
            by_set[r["set"]][0].append(int(r["label"]))
            by_set[r["set"]][1].append(float(r["score"]))
    out = {}
    for name, (y, s) in by_set.items():
        y, s = np.array(y), np.array(s)
        out[name] = {
            "acc": accuracy_score(y, s > 0.5),
            "ap": average_precision_score(y, s),
            "real_acc": accuracy_score(y[y == 0], s[y == 0] > 0.5),
            "fake_acc": accuracy_score(y[y == 1], s[y == 1] > 0.5),
        }
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("suiteproj")
    bench("init", cwd=project)
    script(project, "train.py", "--data_path", "aigbench:demo", "--epochs", "1", "--width", "8", "--batch_size", "32",
           "--test_data_path", "none", "--output_dir", "run", "--no_progress")  # fmt: skip
    return project


def test_every_shipped_suite_has_a_card_with_sourced_references():
    names = builtin_suites()
    assert {"forensynths", "univfd_diffusion", "genimage", "aigcdetectbenchmark", "diffusionforensics",
            "synthbuster", "chameleon", "aigibench", "wildrf"} <= set(names)  # fmt: skip
    for name in names:
        suite = load_suite(name)
        card = protocol_card(suite)
        assert suite.citation in card and "geometry" in card
        for ref in suite.references:
            assert ref.source and (ref.mean or ref.per_set), f"{name}: {ref.detector} has no source or numbers"
            assert set(ref.per_set) <= set(suite.set_names), f"{name}: {ref.detector} names unknown sets"
    for name, folders in OFFICIAL.items():
        declared = {s.path for s in load_suite(name).trees[0].sets}
        assert set(folders) <= declared, f"{name}: {set(folders) - declared}"


@pytest.fixture(scope="module")
def evaluated(trained, tmp_path_factory) -> Path:
    """Every shipped suite on its official tree, evaluated by one ``bench eval`` (the model loads once)."""
    trees = tmp_path_factory.mktemp("trees")
    flags = [a for name in sorted(builtin_suites()) for a in ("--suite", f"{name}={build_tree(name, trees / name)}")]
    bench("eval", "--run", "run", *flags, "--no_progress", cwd=trained)
    return trained / "run" / "suites"


@pytest.mark.parametrize("name", sorted(builtin_suites()))
def test_suite_numbers_equal_the_official_formula_on_its_tree(evaluated, name):
    out = evaluated / name
    m = json.loads((out / "metrics.json").read_text())
    assert not m["partial"]
    suite = load_suite(name)
    assert sorted(m["per_set"]) == sorted(s.name for s in suite.trees[0].sets)
    ref = recompute(out / "predictions.csv")
    for set_name, got in m["per_set"].items():
        for k in ("acc", "ap", "real_acc", "fake_acc"):
            assert got[k] == clean_float(ref[set_name][k]), (set_name, k)  # metrics.json keeps 6 digits
    for k in ("acc", "ap"):  # the headline: the plain mean over sets
        assert m["mean"][k] == clean_float(np.mean([r[k] for r in ref.values()]))
    table = (out / "table.md").read_text()
    assert "| mean |" in table and all(f"| {s} |" in table for s in m["per_set"])
    for r in suite.references:
        assert r.detector in table
    assert m["provenance"]["checkpoint"]["sha256"] and m["geometry"] == suite.geometry_for("MyModel")


def test_a_partial_tree_is_flagged_and_named(trained, tmp_path):
    root = build_tree("forensynths", tmp_path / "fs", skip=("san", "crn"))
    (root / "test" / "my_extra_set").mkdir()  # beside the sets
    check = check_tree(load_suite("forensynths"), root)
    assert check.partial and check.missing == ["crn", "san"] and "my_extra_set" in check.unexpected[0]
    proc = bench("eval", "--run", "run", "--suite", f"forensynths={root}", "--no_progress", cwd=trained)
    assert "missing set(s): crn, san" in proc.stderr
    m = json.loads((trained / "run" / "suites" / "forensynths" / "metrics.json").read_text())
    assert m["partial"] and "PARTIAL" in (trained / "run" / "suites" / "forensynths" / "table.md").read_text()


def test_diffusionforensics_as_shipped_keeps_its_fakes(tmp_path):
    root = build_tree("diffusionforensics", tmp_path / "DiffusionForensics")
    check = check_tree(load_suite("diffusionforensics"), root)
    for name, rs in check.sets.items():
        assert rs.n_fake > 0 and rs.n_real > 0, name


def test_leaderboard_across_suites(evaluated, trained, tmp_path):
    out = tmp_path / "lb"
    bench("leaderboard", "run", "--out", str(out), cwd=trained)
    with open(out / "leaderboard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    accs = []
    for name in sorted(builtin_suites()):
        m = json.loads((evaluated / name / "metrics.json").read_text())
        accs.append(m["mean"]["acc"])
        assert float(rows[0][f"{name} acc"]) == pytest.approx(m["mean"]["acc"], abs=1e-5)
    assert float(rows[0]["mean acc"]) == pytest.approx(np.mean(accs), abs=1e-5)
    assert float(rows[0]["worst acc"]) == pytest.approx(min(accs), abs=1e-5)
    assert (out / "leaderboard.png").is_file()


def test_unknown_suite_names_the_suites():
    from aigbench.errors import ConfigError

    with pytest.raises(ConfigError, match="forensynths"):
        load_suite("forensynth")


def test_diffusionforensics_as_shipped_is_its_own_layout_and_keeps_its_fakes(tmp_path):
    from aigbench.datasets.layouts import detect_layout, load_samples

    root = build_tree("diffusionforensics", tmp_path / "DiffusionForensics")  # images/test/<subset>/{real,adm,...}
    assert detect_layout(root) == "DiffusionForensics"
    samples = load_samples(root, "test")
    fakes = {s.generator for s in samples if s.label == 1}
    assert "lsun_bedroom/adm" in fakes and "imagenet/sdv1" in fakes and len(fakes) == 10
    assert {s.generator for s in samples if s.label == 0} == {"lsun_bedroom/real", "imagenet/real"}
