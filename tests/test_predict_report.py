"""bench predict on unlabelled folders and bench report (opened in headless Chromium)."""

import csv
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import bench, cifake_subset, headless_chromium, run, script


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A rendered project with a short run (validation split), tested with bootstrap CIs and swept
    over a small robustness grid."""
    root = tmp_path_factory.mktemp("proj")
    bench("init", cwd=root)
    train = root / "train.json"
    train.write_text(json.dumps(cifake_subset("train", 150)))
    test_items = [[p, y, "gan" if i % 2 else "sd"] for i, (p, y) in enumerate(cifake_subset("test", 60))]
    test = root / "test.json"
    test.write_text(json.dumps(test_items))
    (root / "test_datasets.json").write_text(json.dumps({"cifake": str(test)}))
    script(
        root,
        "train.py",
        "--data_path",
        str(train),
        "--test_data_path",
        str(test),
        "--val_split",
        "0.2",
        "--epochs",
        "2",
        "--output_dir",
        "run",
        "--width",
        "8",
        "--device",
        "cpu",
    )
    script(root, "test.py", "--output_dir", "run", "--bootstrap", "200", "--device", "cpu")
    robust = root / "test_robust.py"
    text = robust.read_text()
    start, end = text.index("GRID = {"), text.index("}\n", text.index("GRID = {")) + 2
    robust.write_text(text[:start] + 'GRID = {"jpeg": [100, 50], "social": [0, 2]}\n' + text[end:])
    script(root, "test_robust.py", "--output_dir", "run", "--device", "cpu")
    return root


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predict_scores_a_folder_like_test_py_with_the_validation_threshold(trained, tmp_path):
    images = tmp_path / "incoming"
    (images / "nested").mkdir(parents=True)
    test_rows = _csv(trained / "run" / "test" / "checkpoint-best" / "cifake" / "predictions.csv")
    for r in test_rows[:3]:
        shutil.copy(r["path"], images / Path(r["path"]).name)
    for r in test_rows[-3:]:  # a PNG re-encode keeps the pixels: same scores
        cv2.imwrite(str(images / "nested" / (Path(r["path"]).stem + ".png")), cv2.imread(r["path"]))
    (images / "nested" / "broken.jpg").write_bytes(b"not an image")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()  # run away from the project folder: the model module is found from config.json
    proc = run(
        [
            sys.executable,
            "-c",
            "from aigbench.cli.main import main; main()",
            "predict",
            str(images),
            "--run",
            str(trained / "run"),
            "--out",
            str(tmp_path / "preds.csv"),
            "--device",
            "cpu",
        ],
        cwd=elsewhere,
    )
    assert "calibrated on validation" in proc.stdout
    assert f"  unreadable  {images / 'nested' / 'broken.jpg'}  (not an image: " in proc.stdout
    rows = _csv(tmp_path / "preds.csv")
    assert list(rows[0]) == ["path", "score", "label_pred", "threshold", "status", "reason"]
    # every input file has a row; the broken one says why it has no score
    broken = [r for r in rows if Path(r["path"]).name == "broken.jpg"]
    assert len(rows) == 7 and len(broken) == 1
    assert broken[0]["status"] == "unreadable" and broken[0]["score"] == broken[0]["label_pred"] == ""
    assert broken[0]["reason"].startswith("not an image: no image format recognised")
    rows = [r for r in rows if r is not broken[0]]
    assert {r["status"] for r in rows} == {"ok"} and {r["reason"] for r in rows} == {""}
    expected = {Path(r["path"]).stem: float(r["score"]) for r in test_rows}
    val = json.loads((trained / "run" / "val" / "checkpoint-1" / "val" / "metrics.json").read_text())
    best = json.loads((trained / "run" / "log.jsonl").read_text().splitlines()[-1])
    calib = (
        val
        if best["selected"]
        else json.loads((trained / "run" / "val" / "checkpoint-0" / "val" / "metrics.json").read_text())
    )
    t = calib["calibrated_threshold"]["threshold"]
    for r in rows:
        assert float(r["score"]) == pytest.approx(expected[Path(r["path"]).stem], abs=1e-6)
        assert float(r["threshold"]) == pytest.approx(t, rel=1e-7)
        assert int(r["label_pred"]) == int(float(r["score"]) > t)
    # --threshold overrides; a missing run is a clear error
    bench(
        "predict",
        str(images / "nested"),
        "--run",
        str(trained / "run"),
        "--threshold",
        "0.9",
        "--out",
        str(tmp_path / "p2.csv"),
        "--device",
        "cpu",
        cwd=trained,
    )
    assert {r["threshold"] for r in _csv(tmp_path / "p2.csv")} == {"0.9"}
    bad = bench("predict", str(images), "--run", str(tmp_path / "nope"), cwd=trained, check=False)
    assert bad.returncode and "config.json not found" in bad.stderr


def test_test_metrics_hold_threshold_free_calibrated_and_bootstrap_figures(trained):
    from sklearn.metrics import brier_score_loss, roc_auc_score

    d = trained / "run" / "test" / "checkpoint-best" / "cifake"
    m = json.loads((d / "metrics.json").read_text())
    rows = _csv(d / "predictions.csv")
    y = np.array([float(r["label"]) for r in rows])
    s = np.array([float(r["score"]) for r in rows])
    assert m["calibration"]["brier"] == pytest.approx(brier_score_loss(y, s), abs=1e-6)
    assert m["ci"]["n_boot"] == 200 and m["ci"]["auroc"]["low"] < roc_auc_score(y, s) < m["ci"]["auroc"]["high"]
    assert {"eer", "tpr_at_fpr_1", "tpr_at_fpr_5", "oracle_accuracy"} <= set(m["threshold_free"])
    assert m["at_val_threshold"]["source"] == "validation"
    rob = _csv(trained / "run" / "robustness" / "checkpoint-best" / "robustness.csv")
    assert {r["generator"] for r in rob} == {"", "gan", "sd"}
    assert {r["perturbation"] for r in rob} == {"jpeg", "social"}


def test_report_renders_every_plot_and_opens_in_a_headless_browser(trained, tmp_path):
    out = tmp_path / "report"
    bench("report", str(trained / "run"), str(trained / "run"), "--out", str(out), cwd=trained)
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    pngs = sorted(p.name for p in (out / "img").glob("*.png"))
    for part in (
        "training",
        "roc_pr",
        "reliability",
        "generators",
        "rob_jpeg_dataset",
        "rob_social_generator",
        "mistakes",
        "compare_cifake_roc",
        "compare_rob_social",
    ):
        assert any(part in p for p in pngs), (part, pngs)
    for p in pngs:
        assert cv2.imread(str(out / "img" / p)) is not None
        assert f"img/{p}" in md
    assert html.count("data:image/png;base64,") == len(pngs) and "img/" not in html.replace("<img", "")
    m = json.loads((trained / "run" / "test" / "checkpoint-best" / "cifake" / "metrics.json").read_text())
    ci = m["ci"]["auroc"]
    assert f"[{ci['low']:.4f}, {ci['high']:.4f}]" in html and f"[{ci['low']:.4f}, {ci['high']:.4f}]" in md
    for width in (1400, 1920):  # a laptop and a desktop: the page never scrolls sideways, each table fits its box
        with headless_chromium(width) as driver:
            driver.get((out / "report.html").as_uri())
            states = driver.execute_script(
                "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt]);"
            )
            assert len(states) == len(pngs)
            assert all(done and w > 0 for done, w, _ in states), states
            page = driver.execute_script(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];"
            )
            assert page[0] <= page[1], (width, page)  # nothing sticks out of the page
            boxes = driver.execute_script(
                "return Array.from(document.querySelectorAll('table')).map(t => {"
                " const b = t.parentElement, r = b.getBoundingClientRect();"
                " return [b.className, r.left, r.right, b.scrollWidth, b.clientWidth,"
                " getComputedStyle(b).overflowX]; });"
            )
            assert boxes, "no table in the report"
            for cls, left, right, scroll_w, client_w, overflow in boxes:
                assert cls == "scroll" and left >= 0 and right <= page[1] + 0.5, (width, cls, left, right)
                assert scroll_w <= client_w or overflow == "auto", (width, scroll_w, client_w, overflow)
            driver.save_screenshot(str(out / f"screenshot_{width}.png"))
        shot = cv2.imread(str(out / f"screenshot_{width}.png"))
        assert shot is not None and shot.shape[1] >= width - 20


def test_tensorboard_gets_pr_curves_and_one_robustness_figure_per_perturbation(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    test_events = EventAccumulator(str(trained / "run" / "tensorboard" / "test"), size_guidance={"tensors": 0})
    test_events.Reload()
    assert "test/cifake/pr_curve" in test_events.Tags()["tensors"]
    rob = EventAccumulator(str(trained / "run" / "tensorboard" / "robustness"), size_guidance={"images": 0})
    rob.Reload()
    assert {"robustness_figure/jpeg", "robustness_figure/social"} <= set(rob.Tags()["images"])


def test_ensemble_averages_the_runs_scores_on_the_same_images(trained, tmp_path):
    from sklearn.metrics import roc_auc_score

    script(
        trained,
        "train.py",
        "--data_path",
        str(trained / "train.json"),
        "--test_data_path",
        str(trained / "test.json"),
        "--epochs",
        "1",
        "--output_dir",
        "run2",
        "--width",
        "4",
        "--seed",
        "7",
        "--device",
        "cpu",
    )
    script(trained, "test.py", "--output_dir", "run2", "--device", "cpu")
    out = tmp_path / "ens"
    proc = bench(
        "ensemble", str(trained / "run"), str(trained / "run2"), "--out", str(out), "--bootstrap", "100", cwd=trained
    )
    assert "ensemble (mean of 2)" in proc.stdout
    a = {
        r["path"]: float(r["score"])
        for r in _csv(trained / "run" / "test" / "checkpoint-best" / "cifake" / "predictions.csv")
    }
    b_dir = sorted((trained / "run2" / "test").iterdir())[-1]
    b = {r["path"]: float(r["score"]) for r in _csv(b_dir / "cifake" / "predictions.csv")}
    rows = _csv(out / "cifake" / "predictions.csv")
    assert len(rows) == len(a) == 120
    for r in rows:
        assert float(r["score"]) == pytest.approx((a[r["path"]] + b[r["path"]]) / 2, abs=1e-6)
    m = json.loads((out / "cifake" / "metrics.json").read_text())
    y = [float(r["label"]) for r in rows]
    assert m["metrics"]["auroc"] == pytest.approx(roc_auc_score(y, [float(r["score"]) for r in rows]))
    assert m["ci"]["n_boot"] == 100 and set(m["per_generator"]) == {"gan", "sd"}
    table = _csv(out / "ensemble.csv")
    assert [t["run"] for t in table][-1] == "ensemble (mean of 2)" and len(table) == 3
    for t in table:  # six significant digits, as metrics.json; CIs of every row with --bootstrap
        for k in ("accuracy", "auroc", "ap", "auroc_ci_low", "auroc_ci_high"):
            assert len(t[k].replace("0.", "", 1).lstrip("0")) <= 7, (k, t[k])
        assert float(t["auroc_ci_low"]) <= float(t["auroc"]) <= float(t["auroc_ci_high"])
    assert float(table[-1]["auroc_ci_low"]) == pytest.approx(m["ci"]["auroc"]["low"], abs=1e-6)
    ci = m["ci"]["auroc"]
    assert f"[{ci['low']:.3f}, {ci['high']:.3f}]" in proc.stdout and "bootstrap confidence intervals" in proc.stdout
    alone = bench("ensemble", str(trained / "run"), cwd=trained, check=False)
    assert alone.returncode and "two runs or more" in alone.stderr
