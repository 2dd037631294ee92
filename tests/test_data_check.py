"""``bench data check``: counts, problem files, duplicates and leaks, JPEG quality, the
metadata shortcut audit and the CLI, on trees built from the shared CIFAKE images."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from aigbench.audit import (
    FEATURE_WORDS,
    check_dataset,
    estimate_jpeg_quality,
    format_report,
    ijg_table,
    inspect_bytes,
    inspect_file,
)
from aigbench.cli.main import cli

from conftest import need_cifake, need_full_cifake

# ForenSynths shape: <split>/<generator>/{0_real,1_fake}; N images per class and folder.
N = 40
TREE = {"train": ("sdv14", "glide"), "test": ("sdv14",)}


def cifake(split: str, cls: str, start: int, n: int) -> list[Path]:
    root = need_cifake() / split / cls
    return [root / f for f in sorted(os.listdir(root))[start : start + n]]


def save(src: Path, dst_dir: Path, fmt: str, size: int = 32, quality: int = 96) -> Path:
    """A CIFAKE image, resized to ``size`` px (bicubic) and saved as JPEG at ``quality`` or PNG."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    im = Image.open(src).convert("RGB")
    if size != 32:
        im = im.resize((size, size), Image.BICUBIC)
    stem = src.stem.replace(" ", "_").replace("(", "").replace(")", "")
    if fmt == "JPEG":
        out = dst_dir / f"{stem}.jpg"
        im.save(out, "JPEG", quality=quality)
    else:
        out = dst_dir / f"{stem}.png"
        im.save(out, "PNG")
    return out


def build_tree(root: Path, real: tuple, fake: tuple) -> Path:
    """``TREE`` with ``N`` distinct CIFAKE images per class and folder; ``real``/``fake`` are
    (format, size, quality)."""
    for split, gens in TREE.items():
        for g, gen in enumerate(gens):
            for cls, folder, (fmt, size, q) in (("REAL", "0_real", real), ("FAKE", "1_fake", fake)):
                for src in cifake(split, cls, g * N, N):
                    save(src, root / split / gen / folder, fmt, size, q)
    return root


@pytest.fixture(scope="module")
def mixed_tree(tmp_path_factory) -> Path:
    """Reals upscaled to 256 px and saved as JPEG q=96, fakes kept at 32 px as PNG: the
    real-JPEG / fake-PNG shape of many published benchmarks."""
    return build_tree(tmp_path_factory.mktemp("mixed"), ("JPEG", 256, 96), ("PNG", 32, 0))


@pytest.fixture(scope="module")
def aligned_tree(tmp_path_factory) -> Path:
    """The control: both classes upscaled to 256 px and saved as JPEG q=96."""
    return build_tree(tmp_path_factory.mktemp("aligned"), ("JPEG", 256, 96), ("JPEG", 256, 96))


@pytest.fixture(scope="module")
def mixed_report(mixed_tree) -> dict:
    return check_dataset(mixed_tree)


def files_in(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


# -- the shortcut audit ---------------------------------------------------------------------------


def test_mixed_formats_are_a_shortcut(mixed_report):
    r = mixed_report
    assert r["layout"] == "ForenSynths"
    assert r["shortcut_auroc"] > 0.9
    s = r["shortcut"]
    assert s["n_images"] == 3 * 2 * N and s["n_real"] == s["n_fake"] == 3 * N
    assert s["feature_auroc"]["format"] > 0.9 and s["feature_auroc"]["jpeg_quality"] > 0.9
    assert s["feature_auroc"]["mode"] < 0.6  # all RGB: not a lead
    assert s["leading"][:2] == ["format", "jpeg_quality"]
    # the sentence comes from the per-class histograms: every real is JPEG q96, every fake PNG
    assert "real images are 100 % JPEG q≈96, fakes 100 % PNG" in s["warning"]
    assert "256x256" in s["warning"] and "32x32" in s["warning"]
    assert "without looking at pixels" in s["warning"]
    assert "--align_format jpeg:96" in s["fix"]
    # format and size measure the same (1.00): ties keep format first; file size, their consequence, gets no advice
    assert [a["group"] for a in s["advice"]] == ["format", "dimensions"]
    assert s["fix"].startswith("1. format and JPEG quality (file format alone: AUROC 1.000): evaluate format-aligned")
    assert s["warning"] in r["warnings"] and r["errors"] == [] and r["exit_status"] == 0
    assert set(s["by_split"]) == {"train", "test"} and all(v["auroc"] > 0.9 for v in s["by_split"].values())
    text = format_report(r)
    assert "WARNING: metadata shortcut: real images are 100 % JPEG q≈96" in text
    assert (
        "    1. format and JPEG quality (file format alone: AUROC 1.000): evaluate format-aligned: train.py/test.py "
        "--align_format jpeg:96 re-encodes" in text
    )


def test_mixed_tree_histograms(mixed_report):
    real, fake = mixed_report["metadata"]["real"], mixed_report["metadata"]["fake"]
    assert real["n"] == fake["n"] == 3 * N
    assert real["format"] == [{"value": "JPEG", "count": 3 * N, "percent": 100.0}]
    assert fake["format"] == [{"value": "PNG", "count": 3 * N, "percent": 100.0}]
    assert real["jpeg_quality"] == [{"value": 96, "count": 3 * N, "percent": 100.0}]
    assert fake["jpeg_quality"] == [{"value": -1, "count": 3 * N, "percent": 100.0}]  # -1: not a JPEG
    assert real["dimensions"][0]["value"] == "256x256" and fake["dimensions"][0]["value"] == "32x32"
    assert real["mode"][0]["value"] == fake["mode"][0]["value"] == "RGB"
    assert sum(b["count"] for b in real["file_size"]) == 3 * N
    assert real["file_size_median"] > fake["file_size_median"]


def test_aligned_formats_are_no_shortcut(aligned_tree):
    r = check_dataset(aligned_tree)
    assert r["shortcut_auroc"] < 0.7
    assert r["shortcut"]["warning"] is None and r["shortcut"]["fix"] is None
    assert r["metadata"]["real"]["jpeg_quality"] == r["metadata"]["fake"]["jpeg_quality"]
    assert "no metadata shortcut" in format_report(r)


def test_one_class_or_too_few_images_give_no_number(tmp_path):
    for src in cifake("train", "FAKE", 0, 30):
        save(src, tmp_path / "only_fake" / "1_fake", "PNG")
    r = check_dataset(tmp_path / "only_fake")
    assert r["shortcut_auroc"] is None and "only fake images" in r["shortcut"]["note"]
    assert "shortcut_auroc: n/a, only fake images" in format_report(r)
    assert r["exit_status"] == 1 and len(r["errors"]) == 1
    assert r["errors"][0].startswith(f"one class only: PATH {tmp_path / 'only_fake'} holds 30 readable fake image(s) ")
    for src in cifake("train", "REAL", 0, 6):
        save(src, tmp_path / "few" / "0_real", "JPEG")
    for src in cifake("train", "FAKE", 0, 6):
        save(src, tmp_path / "few" / "1_fake", "PNG")
    r = check_dataset(tmp_path / "few")
    assert r["shortcut_auroc"] is None
    assert "too few images" in r["shortcut"]["note"] and "found 6 real, 6 fake" in r["shortcut"]["note"]
    assert r["errors"] == [] and r["exit_status"] == 0  # both classes: no number from the audit, but no error


# -- counts ---------------------------------------------------------------------------------------


def test_counts_match_the_tree(mixed_report):
    c = mixed_report["counts"]
    assert mixed_report["n_files"] == 6 * N
    assert c["total"] == {"real": 3 * N, "fake": 3 * N, "total": 6 * N}
    assert c["by_split"] == {
        "train": {"real": 2 * N, "fake": 2 * N, "total": 4 * N},
        "test": {"real": N, "fake": N, "total": 2 * N},
    }
    assert c["by_generator"] == {
        "glide": {"real": N, "fake": N, "total": 2 * N},
        "sdv14": {"real": 2 * N, "fake": 2 * N, "total": 4 * N},
    }
    assert c["by_category"] == {"(none)": {"real": 3 * N, "fake": 3 * N, "total": 6 * N}}
    rows = [(r["split"], r["generator"], r["real"], r["fake"]) for r in c["rows"]]
    assert rows == [("train", "glide", N, N), ("train", "sdv14", N, N), ("test", "sdv14", N, N)]
    assert mixed_report["problems"] == [] and mixed_report["duplicates"]["n_groups"] == 0


def test_categories_are_counted(tmp_path):
    for cat, n in (("car", 3), ("cat", 2)):
        for src in cifake("test", "REAL", 0, n):
            save(src, tmp_path / "progan" / cat / "0_real", "PNG")
        for src in cifake("test", "FAKE", 0, n):
            save(src, tmp_path / "progan" / cat / "1_fake", "PNG")
    c = check_dataset(tmp_path)["counts"]
    assert c["by_split"] == {"(none)": {"real": 5, "fake": 5, "total": 10}}
    assert c["by_category"] == {"car": {"real": 3, "fake": 3, "total": 6}, "cat": {"real": 2, "fake": 2, "total": 4}}
    assert [(r["category"], r["total"]) for r in c["rows"]] == [("car", 6), ("cat", 4)]


# -- problem files --------------------------------------------------------------------------------


def test_problem_files_are_named(tmp_path):
    real_dir, fake_dir = tmp_path / "REAL", tmp_path / "FAKE"
    good = [save(s, real_dir, "JPEG", 256) for s in cifake("test", "REAL", 0, 3)]
    good += [save(s, fake_dir, "PNG", 256) for s in cifake("test", "FAKE", 0, 3)]
    (real_dir / "empty.jpg").write_bytes(b"")
    data = good[0].read_bytes()
    (real_dir / "half.jpg").write_bytes(data[: len(data) // 2])  # the header parses, the scan is cut
    small = cifake("test", "REAL", 5, 1)[0].read_bytes()
    (real_dir / "half_small.jpg").write_bytes(small[: len(small) // 2])  # cut inside the header
    png = good[3].read_bytes()
    (fake_dir / "half.png").write_bytes(png[: len(png) // 2])
    (fake_dir / "notes.png").write_text("not an image, only text\n")
    (real_dir / "trailing.jpg").write_bytes(data + b"\0\0 trailing bytes after EOI")  # readable: not a problem
    r = check_dataset(tmp_path)
    problems = {Path(p["path"]).name: p for p in r["problems"] if Path(p["path"]).parent.name == "REAL"}
    problems.update({"fake/" + Path(p["path"]).name: p for p in r["problems"] if Path(p["path"]).parent.name == "FAKE"})
    assert {k: v["problem"] for k, v in problems.items()} == {
        "empty.jpg": "empty",
        "half.jpg": "truncated",
        "half_small.jpg": "truncated",
        "fake/half.png": "truncated",
        "fake/notes.png": "not an image",
    }
    assert "end-of-image marker" in problems["half.jpg"]["detail"]
    assert "IEND" in problems["fake/half.png"]["detail"]
    assert r["problem_counts"] == {"empty": 1, "not an image": 1, "truncated": 3}
    assert any("5 problem file(s)" in w for w in r["warnings"]) and r["exit_status"] == 0
    # problem files are counted in the tree but not in the metadata
    assert r["counts"]["total"]["total"] == 12 and r["metadata"]["real"]["n"] + r["metadata"]["fake"]["n"] == 7
    text = format_report(r)
    for line in ("truncated     REAL/half.jpg", "empty         REAL/empty.jpg", "not an image  FAKE/notes.png"):
        assert line in text


def test_corrupt_png_and_missing_list_entry(tmp_path):
    src = cifake("test", "FAKE", 0, 1)[0]
    png = bytearray(save(src, tmp_path / "x", "PNG", 64).read_bytes())
    png[60] ^= 0xFF  # inside the first chunk's data: its CRC no longer matches
    info = inspect_bytes(bytes(png))
    assert (info.problem, info.format) == ("undecodable", "PNG") and "checksum" in info.detail
    good = save(cifake("test", "REAL", 0, 1)[0], tmp_path / "x", "JPEG")
    spec = tmp_path / "list.json"
    spec.write_text(json.dumps([[str(good), 0], ["x/gone.png", 1]]))
    r = check_dataset(spec)
    assert r["layout"] == "JsonList"
    assert [(Path(p["path"]).name, p["problem"]) for p in r["problems"]] == [("gone.png", "missing")]


def test_inspect_reads_the_header(tmp_path):
    src = cifake("test", "REAL", 0, 1)[0]
    info = inspect_file(str(src))
    assert (info.format, info.quality, info.width, info.height, info.mode) == ("JPEG", 75, 32, 32, "RGB")
    assert info.size == src.stat().st_size and info.problem == "" and len(info.digest) == 32
    assert inspect_file(str(tmp_path / "nope.jpg")).problem == "missing"


# -- duplicates and leaks -------------------------------------------------------------------------


def test_leak_and_duplicates_through_the_cli(mixed_tree, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(mixed_tree, tree)
    train_real = sorted((tree / "train" / "sdv14" / "0_real").iterdir())
    leaked = tree / "test" / "sdv14" / "0_real" / "copied_from_train.jpg"
    shutil.copyfile(train_real[0], leaked)
    glide_fake = sorted((tree / "train" / "glide" / "1_fake").iterdir())
    dup = tree / "train" / "glide" / "1_fake" / "again.png"
    shutil.copyfile(glide_fake[0], dup)
    before = files_in(tree)
    out = tmp_path / "out" / "report.json"

    result = CliRunner().invoke(cli, ["data", "check", str(tree), "--json", str(out), "--no_progress"])
    assert result.exit_code == 1, result.output
    report = json.loads(out.read_text())
    assert report["exit_status"] == 1
    assert [sorted(g["paths"]) for g in report["leaks"]] == [sorted([str(leaked), str(train_real[0])])]
    assert report["leaks"][0]["splits"] == ["test", "train"] and report["leaks"][0]["severity"] == "error"
    assert report["leaks"][0]["kind"] == "split" and report["leaks"][0]["counts"] == [1, 1]
    assert report["errors"] == [
        "leak: 1 file(s) in test/ are byte-identical to file(s) in train/; test scores on them measure memory, "
        "not detection: remove them from one side"
    ]
    digest = next(g["hash"] for g in report["duplicates"]["groups"] if str(dup) in g["paths"])
    assert report["duplicates"]["within_split"] == {
        "train": {
            "groups": 1,
            "redundant_files": 1,
            "contents": [{"hash": digest, "paths": [str(glide_fake[0]), str(dup)]}],
        }
    }
    assert sorted([str(glide_fake[0]), str(dup)]) in [sorted(g["paths"]) for g in report["duplicates"]["groups"]]
    assert report["duplicates"]["n_groups"] == 2
    assert "ERROR: leak: 1 file(s) in test/" in result.stdout
    assert "ERROR test/train: test/sdv14/0_real/copied_from_train.jpg  ==  train/sdv14/0_real/" in result.stdout
    # the terminal says what the JSON holds: it is rendered from it
    assert result.stdout == format_report(report) + "\n"
    # nothing is written but the --json file
    assert files_in(tree) == before
    assert sorted(p.name for p in tmp_path.rglob("*") if not p.is_relative_to(tree)) == ["out", "report.json"]


def test_val_and_train_sharing_is_a_warning(tmp_path):
    for split in ("train", "val"):
        for src in cifake("train", "REAL", 0, 3):
            save(src, tmp_path / split / "0_real", "JPEG")
        for src in cifake("train", "FAKE", 0, 3):
            save(src, tmp_path / split / "1_fake", "PNG")
    r = check_dataset(tmp_path)
    assert r["exit_status"] == 0 and r["errors"] == []
    assert {g["severity"] for g in r["leaks"]} == {"warning"} and len(r["leaks"]) == 6
    assert any(w.startswith("leak: 6 file(s) in train/ are byte-identical to file(s) in val/") for w in r["warnings"])


def test_same_content_labelled_real_and_fake(tmp_path):
    src = cifake("test", "REAL", 0, 1)[0]
    for folder in ("REAL", "FAKE"):
        (tmp_path / folder).mkdir()
        shutil.copyfile(src, tmp_path / folder / "x.jpg")
    r = check_dataset(tmp_path)
    assert len(r["label_conflicts"]) == 1 and sorted(r["label_conflicts"][0]["labels"]) == [0, 1]
    assert any("labelled both real and fake" in w for w in r["warnings"])


# -- JPEG quality ---------------------------------------------------------------------------------


def test_ijg_tables():
    assert list(ijg_table(50)[:8]) == [16, 11, 10, 16, 24, 40, 51, 61]  # Annex K itself
    assert set(ijg_table(100)) == {1}
    assert ijg_table(1).max() == 255  # baseline tables stop at 255


@pytest.mark.parametrize("quality", [10, 30, 50, 75, 85, 90, 95, 96, 100])
def test_jpeg_quality_estimate_pillow_and_opencv(tmp_path, quality):
    im = Image.open(cifake("test", "REAL", 0, 1)[0]).convert("RGB").resize((128, 128), Image.BICUBIC)
    im.save(tmp_path / "pil.jpg", "JPEG", quality=quality)
    im.convert("L").save(tmp_path / "gray.jpg", "JPEG", quality=quality)  # luminance table only
    # OpenCV's libjpeg: what --align_format jpeg:Q writes
    bgr = cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    (tmp_path / "cv.jpg").write_bytes(buf.tobytes())
    for name in ("pil.jpg", "gray.jpg", "cv.jpg"):
        estimate = inspect_file(str(tmp_path / name)).quality
        assert abs(estimate - quality) <= 2, (name, estimate)
        assert estimate_jpeg_quality(Image.open(tmp_path / name).quantization) == estimate


def test_jpeg_quality_of_custom_tables_is_the_nearest(tmp_path):
    im = Image.open(cifake("test", "REAL", 0, 1)[0]).convert("RGB")
    table = [int(v) + 1 for v in ijg_table(80)]  # not libjpeg's, close to q80
    im.save(tmp_path / "custom.jpg", "JPEG", qtables=[table, table])
    assert abs(inspect_file(str(tmp_path / "custom.jpg")).quality - 80) <= 3


# -- the CLI and the whole of cifake-mini -----------------------------------------------------------


def test_help_and_check_do_not_import_torch(mixed_tree):
    code = (
        "import sys\nfrom aigbench.cli.main import main\n"
        "for argv in (['--help'], ['data', '--help'], ['data', 'check', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "assert 'torch' not in sys.modules, 'help imported torch'\n"
        "from aigbench.audit import check_dataset\n"
        f"r = check_dataset({str(mixed_tree)!r})\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO_TORCH', r['n_files'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert f"NO_TORCH {6 * N}" in out, out
    assert "check" in out and "--json OUT" in out and "--no_progress" in out


def test_cli_errors_name_the_flag(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["data", "check", str(tmp_path / "nope")])
    assert result.exit_code != 0 and "PATH" in result.output and "does not exist" in result.output
    save(cifake("test", "REAL", 0, 1)[0], tmp_path / "REAL", "JPEG")
    result = runner.invoke(cli, ["data", "check", str(tmp_path), "--layout", "CIFAK"])
    assert result.exit_code != 0 and "--layout" in result.output and "CIFAKE" in result.output
    result = runner.invoke(cli, ["data", "check", str(tmp_path), "--json", str(tmp_path)])
    assert result.exit_code != 0 and "directory" in result.output


@pytest.mark.slow
def test_cifake_mini_in_under_30_seconds(tmp_path):
    """The whole shared cifake-mini (train + test, 12 000 images) through the command."""
    full = need_full_cifake()
    out = tmp_path / "cifake.json"
    proc = subprocess.run(
        [sys.executable, "-c", "from aigbench.cli.main import main; main()", "data", "check", str(full)]
        + ["--json", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert r["seconds"] < 30, r["seconds"]
    assert r["counts"]["by_split"] == {
        "train": {"real": 5000, "fake": 5000, "total": 10000},
        "test": {"real": 1000, "fake": 1000, "total": 2000},
    }
    assert r["problems"] == [] and r["leaks"] == [] and r["errors"] == []
    # CIFAKE stores both classes as 32x32 JPEG q75: no metadata shortcut
    for cls in ("real", "fake"):
        assert r["metadata"][cls]["jpeg_quality"] == [{"value": 75, "count": 6000, "percent": 100.0}]
        assert r["metadata"][cls]["dimensions"][0] == {"value": "32x32", "count": 6000, "percent": 100.0}
    assert r["shortcut_auroc"] < 0.6 and r["shortcut"]["warning"] is None


# -- datasets checked together, one class, ranked advice (on the demo images shipped in the repo) -------

DEMO = Path(__file__).resolve().parent.parent / "aigbench" / "datasets" / "demo"


def demo(split: str, cls: str, start: int, n: int) -> list[Path]:
    root = DEMO / split / cls
    files = sorted(root.iterdir())[start : start + n]
    assert len(files) == n, f"the demo set has fewer than {start + n} images in {root}"
    return files


def copy_demo(dst: Path, real: list[Path], fake: list[Path]) -> Path:
    """A CIFAKE-shaped folder (REAL/, FAKE/) holding byte-identical copies of demo images."""
    for cls, files in (("REAL", real), ("FAKE", fake)):
        (dst / cls).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copyfile(f, dst / cls / f.name)
    return dst


def test_paths_checked_together_share_no_content(tmp_path):
    train = copy_demo(tmp_path / "mine_a", demo("train", "REAL", 0, 6), demo("train", "FAKE", 0, 6))
    bench_set = copy_demo(tmp_path / "mine_b", demo("test", "REAL", 0, 6), demo("test", "FAKE", 0, 6))
    runner = CliRunner()
    clean = runner.invoke(cli, ["data", "check", str(train), str(bench_set), "--no_progress"])
    assert clean.exit_code == 0, clean.output  # distinct images: no leak, both classes on each side
    assert "PATH 1: 6 real, 6 fake, 12 total" in clean.output and "PATH 2: 6 real, 6 fake" in clean.output

    leaked = bench_set / "FAKE" / "renamed.jpg"
    shutil.copyfile(demo("train", "FAKE", 3, 1)[0], leaked)  # the same bytes under another name
    out = tmp_path / "report.json"
    result = runner.invoke(cli, ["data", "check", str(train), str(bench_set), "--json", str(out), "--no_progress"])
    assert result.exit_code == 1, result.output
    report = json.loads(out.read_text())
    assert report["paths"] == [str(train), str(bench_set)] and report["exit_status"] == 1
    original = train / "FAKE" / demo("train", "FAKE", 3, 1)[0].name
    assert [(g["kind"], g["sources"], sorted(g["paths"])) for g in report["leaks"]] == [
        ("path", [str(bench_set), str(train)], sorted([str(leaked), str(original)]))
    ]
    assert report["errors"] == [
        f"leak: 1 file(s) in PATH {bench_set} are byte-identical to file(s) in PATH {train}; scores on them "
        "measure memory, not detection: remove them from one side"
    ]
    assert report["counts"]["by_path"] == {
        str(train): {"real": 6, "fake": 6, "total": 12},
        str(bench_set): {"real": 6, "fake": 7, "total": 13},
    }
    assert f"ERROR PATH {bench_set} | PATH {train}: mine_b/FAKE/renamed.jpg  ==  mine_a/FAKE/" in result.output
    assert result.output == format_report(report) + "\n"


def test_paths_given_twice_or_nested_are_refused(tmp_path):
    data = copy_demo(tmp_path / "data", demo("test", "REAL", 0, 2), demo("test", "FAKE", 0, 2))
    runner = CliRunner()
    result = runner.invoke(cli, ["data", "check", str(data), str(data)])
    assert result.exit_code == 1 and f"PATH {str(data)!r} is given twice" in result.output
    result = runner.invoke(cli, ["data", "check", str(data), str(data / "FAKE") + "@FakesOnly"])
    assert result.exit_code == 1 and "overlap" in result.output and str(data / "FAKE") in result.output


def test_one_class_is_an_error_for_a_dataset_and_for_a_split(tmp_path):
    only_real = copy_demo(tmp_path / "reals", demo("test", "REAL", 0, 5), [])
    result = CliRunner().invoke(cli, ["data", "check", str(only_real), "--no_progress"])
    assert result.exit_code == 1, result.output
    assert (
        f"ERROR: one class only: PATH {only_real} holds 5 readable real image(s) and no fake image (label 1); "
        "AUROC, AP and accuracy need both classes: add fake images" in result.output
    )
    # both classes in train/, fakes only in test/ (their reals all broken): the split is named
    root = tmp_path / "splits"
    copy_demo(root / "train", demo("train", "REAL", 0, 3), demo("train", "FAKE", 0, 3))
    copy_demo(root / "test", [], demo("test", "FAKE", 0, 3))
    (root / "test" / "REAL" / "broken.jpg").write_bytes(b"")
    r = check_dataset(root)
    assert r["exit_status"] == 1 and len(r["errors"]) == 1
    assert r["errors"][0].startswith(
        f"one class only: PATH {root}, split test/ holds 3 readable fake image(s) and no real image (label 0) "
        "(its 1 real file(s) are all problem files)"
    )


def test_duplicate_groups_within_a_split_are_counted_and_listed(tmp_path):
    root = copy_demo(tmp_path / "d", demo("test", "REAL", 0, 3), demo("test", "FAKE", 0, 3))
    first = demo("test", "REAL", 0, 1)[0]
    for name in ("copy1.jpg", "copy2.jpg"):
        shutil.copyfile(first, root / "REAL" / name)
    out = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["data", "check", str(root), "--json", str(out), "--no_progress"])
    assert result.exit_code == 0, result.output
    within = json.loads(out.read_text())["duplicates"]["within_split"]
    (split,) = within
    assert within[split]["groups"] == 1 and within[split]["redundant_files"] == 2
    assert [sorted(Path(p).name for p in c["paths"]) for c in within[split]["contents"]] == [
        sorted(["copy1.jpg", "copy2.jpg", first.name])
    ]
    assert "2 duplicate file(s) within" in result.output and "keep one copy of each" in result.output


def sized(src: Path, dst_dir: Path, fmt: str, width: int, height: int) -> Path:
    """A demo image resized to ``width`` x ``height`` (bicubic), saved as JPEG q96 or PNG."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    im = Image.open(src).convert("RGB").resize((width, height), Image.BICUBIC)
    out = dst_dir / (
        src.stem.replace(" ", "_").replace("(", "").replace(")", "") + (".jpg" if fmt == "JPEG" else ".png")
    )
    im.save(out, fmt, **({"quality": 96} if fmt == "JPEG" else {}))
    return out


def test_advice_is_ranked_by_measured_strength(tmp_path):
    """Size separates the classes completely, format partly: the size advice comes first, with its number."""
    n = 40
    for src in demo("train", "REAL", 0, n):
        sized(src, tmp_path / "wild" / "REAL", "JPEG", 256, 256)
    for i, src in enumerate(demo("train", "FAKE", 0, n)):
        sized(src, tmp_path / "wild" / "FAKE", "PNG" if i % 10 < 3 else "JPEG", 320, 240)
    r = check_dataset(tmp_path / "wild")
    s = r["shortcut"]
    size, fmt = s["feature_auroc"]["aspect"], s["feature_auroc"]["format"]
    assert size > 0.95 and 0.6 < fmt < 0.8, s["feature_auroc"]
    assert [a["group"] for a in s["advice"]] == ["dimensions", "format"]
    assert s["advice"][0]["auroc"] == max(s["feature_auroc"][k] for k in ("width", "height", "aspect"))
    first = s["advice"][0]
    assert s["fix"].startswith(
        f"1. size and aspect ratio ({FEATURE_WORDS[first['feature']]} alone: AUROC {first['auroc']:.3f}): "
        "give both classes the same sizes"
    )
    assert (
        "; 2. format and JPEG quality (" in s["fix"] and f"AUROC {s['advice'][1]['auroc']:.3f}): evaluate" in s["fix"]
    )
    text = format_report(r)
    assert text.index("    1. size and aspect ratio") < text.index("    2. format and JPEG quality")

    # size alone: no format advice at all
    for src in demo("train", "REAL", 0, n):
        sized(src, tmp_path / "sizes" / "REAL", "JPEG", 256, 256)
    for src in demo("train", "FAKE", 0, n):
        sized(src, tmp_path / "sizes" / "FAKE", "JPEG", 320, 240)
    s = check_dataset(tmp_path / "sizes")["shortcut"]
    assert [a["group"] for a in s["advice"]] == ["dimensions"] and "--align_format" not in s["fix"]


def test_shortcut_warning_quotes_each_class_own_statistics(tmp_path):
    """Both classes' most common size is 256x256: the warning quotes each class's own share."""
    n = 40
    for i, src in enumerate(demo("train", "REAL", 0, n)):
        sized(src, tmp_path / "REAL", "JPEG", *((320, 240) if i % 5 < 2 else (256, 256)))
    for src in demo("train", "FAKE", 0, n):
        sized(src, tmp_path / "FAKE", "JPEG", 256, 256)
    s = check_dataset(tmp_path)["shortcut"]
    assert s["auroc"] > 0.6 and {"width", "height", "aspect"} & set(s["leading"]), s
    assert "256x256 pixels is 60 % of real images and 100 % of fakes" in s["warning"]
    assert "median size of 256x256 pixels, fakes 256x256" not in s["warning"]
