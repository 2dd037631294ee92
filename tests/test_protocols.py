"""Cross-generator matrix and chronological sliding windows, run from the rendered scripts on a
GenImage-shaped tree built from cifake-mini."""

import csv
import json
import shutil
from datetime import date

import cv2
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from aigbench.datasets.layouts import DatasetError, Sample, filter_generators, load_samples
from aigbench.protocols.common import read_matrix, read_predictions
from aigbench.protocols.windows import load_release_dates, make_windows

from conftest import script

TRAIN_FLAGS = [
    "--model",
    "MyModel",
    "--val_split",
    "0.2",
    "--image_size",
    "32",
    "--batch_size",
    "32",
    "--epochs",
    "1",
    "--width",
    "8",
    "--device",
    "cpu",
]


def test_generator_filter_keeps_pooled_reals_and_drops_foreign_own_reals():
    samples = [
        Sample("a0", 0, "progan"),
        Sample("a1", 1, "progan"),  # ForenSynths: progan owns its reals
        Sample("b1", 1, "sd"),
        Sample("p0", 0, ""),
        Sample("i0", 0, "imagenet"),  # pooled reals
    ]
    kept = [s.path for s in filter_generators(samples, ["sd"])]
    assert kept == ["b1", "p0", "i0"]
    assert [s.path for s in filter_generators(samples, [], ["sd"])] == ["a0", "a1", "p0", "i0"]
    with pytest.raises(DatasetError, match="its generators are: progan, sd"):
        filter_generators(samples, ["SD"])


def test_release_dates_windows_and_aliases(tmp_path):
    dates = load_release_dates()
    assert dates["progan"] == date(2017, 10, 27)  # AI-GenBench's date, found by its ForenSynths folder name
    assert dates["stablediffusion14"] == dates["stablediffusionv14"] == date(2022, 8, 22)
    assert make_windows(["Midjourney", "glide", "BigGAN", "ADM"], dates, 2) == [
        ["BigGAN", "ADM"],
        ["glide", "Midjourney"],
    ]
    own = tmp_path / "gens.json"
    own.write_text(json.dumps({"a": "2020-01-01", "b": "2021-01-01", "c": "2021-01-01", "d": "2022-01-01"}))
    # c shares b's release day: it joins b's window even when that window is full
    assert make_windows(["a", "b", "c", "d"], load_release_dates(str(own)), 2) == [["a", "b", "c"], ["d"]]
    with pytest.raises(DatasetError, match="no release date for generator.*'zeta'"):
        make_windows(["a", "zeta"], load_release_dates(str(own)), 2)


def _cells(out):
    return sorted(p.name for p in out.iterdir() if p.is_dir())


def test_cross_generator_matrix_and_resume(project, genimage_tree):
    out = project / "out" / "cg"
    args = [
        "--data_path",
        str(genimage_tree),
        "--test_data_path",
        str(genimage_tree),
        "--output_dir",
        str(out),
        "--generators",
        "BigGAN,ADM",
        *TRAIN_FLAGS,
    ]
    script(project, "cross_generator.py", *args)
    assert _cells(out) == ["train_ADM", "train_BigGAN"]
    corner, rows, cols, m = read_matrix(out / "cross_generator.csv")
    assert rows == ["ADM", "BigGAN"] and cols == ["ADM", "BigGAN", "Midjourney", "glide", "mean"]
    # each cell is the per-generator AUROC of that model's test run, recomputed here with scikit-learn
    for i, g in enumerate(rows):
        y, s, gens = read_predictions(
            out / f"train_{g}" / "test" / "checkpoint-best" / genimage_tree.name / "predictions.csv"
        )
        for j, h in enumerate(cols[:-1]):
            mask = gens == h
            assert m[i, j] == pytest.approx(roc_auc_score(y[mask], s[mask]), abs=1e-5)
        assert m[i, -1] == pytest.approx(np.mean(m[i, :-1]), abs=1e-5)
        # the model was trained on its generator only (reals of other generators' folders dropped)
        cfg = json.loads((out / f"train_{g}" / "config.json").read_text())
        assert cfg["generators"] == g
    png = cv2.imread(str(out / "cross_generator.png"))
    assert png is not None and png.shape[0] > 100
    # run again: every cell is finished, nothing is retrained or retested
    before = {p: p.stat().st_mtime for p in out.rglob("*.pth")}
    proc = script(project, "cross_generator.py", *args)
    assert "train train_" not in proc.stdout + proc.stderr and "test train_" not in proc.stdout + proc.stderr
    assert {p: p.stat().st_mtime for p in out.rglob("*.pth")} == before
    # a rerun on other data into the same folder never reuses the cells of the first data
    other = project / "other"
    shutil.copytree(genimage_tree, other / genimage_tree.name)
    next((other / genimage_tree.name / "ADM").rglob("*.PNG")).unlink()
    moved = [str(other / genimage_tree.name) if a == str(genimage_tree) else a for a in args]
    proc = script(project, "cross_generator.py", *moved, check=False)
    assert proc.returncode != 0 and "data_path" in proc.stderr and "--force" in proc.stderr
    script(project, "cross_generator.py", *moved, "--force")
    cfg = json.loads((out / "train_ADM" / "config.json").read_text())
    assert cfg["data_path"] == str(other / genimage_tree.name) and (out / "abandoned").is_dir()


def test_sliding_windows_from_the_rendered_script(project, genimage_tree):
    out = project / "out" / "sw"
    script(
        project,
        "sliding_windows.py",
        "--data_path",
        str(genimage_tree),
        "--test_data_path",
        str(genimage_tree),
        "--output_dir",
        str(out),
        "--window_size",
        "2",
        *TRAIN_FLAGS,
    )
    with open(out / "windows.csv") as f:
        table = list(csv.reader(f))
    assert table[0][1:] == ["w0", "w1", "past", "current", "next"]
    assert [r[0] for r in table[1:]] == ["w0: BigGAN+ADM", "w1: glide+Midjourney"]
    info = json.loads((out / "windows.json").read_text())
    assert info["cells"]["w1"]["trained_on"] == ["BigGAN", "ADM", "glide", "Midjourney"]  # cumulative
    assert json.loads((out / "train_w0" / "config.json").read_text())["generators"] == "BigGAN,ADM"
    w0_last = sorted((out / "train_w0").glob("checkpoint-[0-9]*.pth"), key=lambda p: int(p.stem.split("-")[1]))[-1]
    assert json.loads((out / "train_w1" / "config.json").read_text())["init_from"] == str(w0_last)  # warm start
    assert json.loads((out / "train_w0" / "config.json").read_text())["init_from"] == ""
    y, s, gens = read_predictions(
        out / "train_w0" / "test" / "checkpoint-best" / genimage_tree.name / "predictions.csv"
    )
    future = np.isin(gens, ["glide", "Midjourney"])  # GenImage: each generator owns its reals
    assert float(table[1][2]) == pytest.approx(roc_auc_score(y[future], s[future]), abs=1e-5)
    assert table[1][5] == table[1][2] and table[1][3] == ""  # next = w1; w0 has no past
    assert info["mean_next"] == pytest.approx(float(table[1][5]), abs=1e-5)
    assert len(load_samples(str(genimage_tree), "train", "auto")) == 320  # the data was never changed


def test_a_finished_cell_trained_with_other_flags_is_not_reused(tmp_path):
    from aigbench.protocols.common import TRAIN_DONE, ProtocolError, check_cell_key

    cell = tmp_path / "train_w0"
    cell.mkdir()
    key = {"data_path": "/data/A", "train_flags": ["--generators", "a,b"], "aigbench_version": "0"}
    (cell / TRAIN_DONE).write_text(json.dumps({"key": key}))
    check_cell_key(cell, key, force=False)  # the same key: reused
    with pytest.raises(ProtocolError, match=r"train_flags: \['--generators', 'a,b'\] -> .*--force"):
        check_cell_key(cell, {**key, "train_flags": ["--generators", "a,b,c"]}, force=False)
    (cell / TRAIN_DONE).write_text(json.dumps({"train_flags": ["--generators", "a,b"], "passthrough": []}))
    with pytest.raises(ProtocolError, match="not recorded"):  # a cell of an earlier aigbench
        check_cell_key(cell, key, force=False)
    check_cell_key(cell, key, force=True)
    assert not cell.exists() and (tmp_path / "abandoned" / "train_w0" / "train_w0" / TRAIN_DONE).is_file()


def test_sliding_windows_refuse_generators():
    from aigbench.protocols.windows import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--data_path", "d", "--test_data_path", "d", "--output_dir", "o", "--generators", "a"])


def test_window_metrics_pair_each_generator_with_its_own_or_the_pooled_reals():
    from sklearn.metrics import roc_auc_score

    from aigbench.metrics.binary import group_metrics

    y = np.array([0, 0, 1, 1, 0, 1, 1, 0, 0])
    s = np.array([0.1, 0.4, 0.8, 0.3, 0.2, 0.9, 0.6, 0.5, 0.7])
    g = np.array(["own", "own", "own", "own", "", "fo", "fo", "", "other"])  # "other": a real pool
    m = group_metrics(y, s, g, ["own", "fo"])
    # own: its fakes and reals; fo (fakes only): its fakes and the pooled reals ("" and "other")
    sel = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1], dtype=bool)
    assert m["n"] == 9 and m["auroc"] == pytest.approx(roc_auc_score(y[sel], s[sel]))
    only_fo = group_metrics(y, s, g, ["fo"])
    pick = np.isin(g, ["fo", "", "other"])
    assert only_fo["n"] == int(pick.sum()) and only_fo["auroc"] == pytest.approx(roc_auc_score(y[pick], s[pick]))
