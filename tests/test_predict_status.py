"""``bench predict`` answers for every input file (status ok / truncated / unreadable, with the
reason), finds images by content and by every extension Pillow knows, refuses a threshold outside
[0, 1]; and the integrity checks behind ``truncated``. Built from the demo images in the repo."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image, features

from aigbench.imageops import decode_image
from aigbench.imageops.integrity import ends_complete, file_missing_end, missing_end, sniff_format

from conftest import bench, script

DEMO = Path(__file__).resolve().parent.parent / "aigbench" / "datasets" / "demo"


def demo(split: str, cls: str, k: int) -> Path:
    return sorted((DEMO / split / cls).iterdir())[k]


def encoded(src: Path, fmt: str, size: int = 128, **kw) -> bytes:
    """A demo image upscaled to ``size`` px (bicubic) and encoded as ``fmt``."""
    buf = io.BytesIO()
    Image.open(src).convert("RGB").resize((size, size), Image.BICUBIC).save(buf, fmt, **kw)
    return buf.getvalue()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A one-epoch run of the `bench init` model on the demo training images."""
    root = tmp_path_factory.mktemp("proj")
    bench("init", cwd=root)
    flags = ["--data_path", str(DEMO / "train"), "--epochs", "1", "--output_dir", "run", "--width", "4"]
    script(root, "train.py", *flags, "--device", "cpu")
    return root / "run"


# -- integrity ---------------------------------------------------------------------------------------


def test_missing_end_tells_cut_files_from_whole_ones():
    jpeg = demo("test", "REAL", 0).read_bytes()
    assert sniff_format(jpeg) == "JPEG" and missing_end(jpeg) is None
    assert missing_end(jpeg[: len(jpeg) * 6 // 10]) == "JPEG with no end-of-image marker (FFD9)"
    assert missing_end(jpeg[:-2]) == "JPEG with no end-of-image marker (FFD9)"
    assert missing_end(jpeg + b"\0\0 trailing bytes") is None  # appended after the end: whole
    assert ends_complete("MPO", jpeg) and ends_complete("JPEG", jpeg + b"xx")
    # an EXIF thumbnail's own FFD9 before the main image does not make a cut main image whole
    thumb = encoded(demo("test", "REAL", 1), "JPEG", 16)
    payload = b"Exif\0\0" + thumb
    with_thumb = jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]
    assert Image.open(io.BytesIO(with_thumb)).size == (32, 32) and missing_end(with_thumb) is None
    assert missing_end(with_thumb[: len(with_thumb) - 200]) == "JPEG with no end-of-image marker (FFD9)"
    progressive = encoded(demo("test", "FAKE", 0), "JPEG", progressive=True)
    assert missing_end(progressive) is None and missing_end(progressive[:-100]) is not None
    png = encoded(demo("test", "FAKE", 0), "PNG")
    assert missing_end(png) is None and missing_end(png + b"junk") is None
    assert missing_end(png[:-12]) == "PNG with no IEND chunk"
    gif = encoded(demo("test", "FAKE", 1), "GIF")
    assert missing_end(gif) is None and missing_end(gif + b"\0junk") is None
    assert missing_end(gif[:-1]) == "GIF with no trailer byte"
    webp = encoded(demo("test", "FAKE", 2), "WEBP")
    assert missing_end(webp) is None and missing_end(webp[:-10]).startswith("WEBP with fewer bytes")
    assert missing_end(b"") is None and missing_end(b"plain text") is None  # no format: nothing to say


def test_file_missing_end_reads_the_file(tmp_path):
    jpeg = demo("test", "REAL", 0).read_bytes()
    (tmp_path / "whole.jpg").write_bytes(jpeg)
    (tmp_path / "cut.jpg").write_bytes(jpeg[:-2])
    (tmp_path / "tail.jpg").write_bytes(jpeg + b"appended")
    assert file_missing_end(str(tmp_path / "whole.jpg")) is None
    assert file_missing_end(str(tmp_path / "cut.jpg")) == "JPEG with no end-of-image marker (FFD9)"
    assert file_missing_end(str(tmp_path / "tail.jpg")) is None
    assert file_missing_end(str(tmp_path / "absent.jpg")) is None


# -- bench predict ---------------------------------------------------------------------------------


def test_predict_answers_for_every_file(run_dir, tmp_path):
    images = tmp_path / "incoming"
    (images / "sub").mkdir(parents=True)
    good = demo("test", "REAL", 0)
    shutil.copyfile(good, images / "good.jpg")
    shutil.copyfile(good, images / "sub" / "same_bytes.jpe")  # .jpe: a JPEG extension the old list lacked
    big = encoded(demo("test", "REAL", 1), "JPEG", 256, quality=90)
    (images / "cut.jpg").write_bytes(big[: len(big) * 6 // 10])  # the first 60 % of a real JPEG
    png = encoded(demo("test", "FAKE", 0), "PNG")
    (images / "no_iend.png").write_bytes(png[:-12])  # cut just before its end: it still decodes
    (images / "text.jpg").write_text("this is text, not an image\n")
    (images / "empty.jpg").write_bytes(b"")
    (images / "png_bytes.bin").write_bytes(png)  # an image by content, whatever its name
    (images / "notes.txt").write_text("a note beside the images\n")  # not an image: left out, and named
    has_avif = features.check("avif")
    if has_avif:
        Image.open(good).convert("RGB").save(images / "photo.avif")
    out = tmp_path / "preds.csv"
    proc = bench("predict", str(images), "--run", str(run_dir), "--out", str(out), "--device", "cpu", cwd=tmp_path)
    rows = {Path(r["path"]).name: r for r in read_csv(out)}
    assert list(read_csv(out)[0]) == ["path", "score", "label_pred", "threshold", "status", "reason"]
    expected = {"good.jpg", "same_bytes.jpe", "cut.jpg", "no_iend.png", "text.jpg", "empty.jpg", "png_bytes.bin"}
    assert set(rows) == expected | ({"photo.avif"} if has_avif else set())

    def scored(name: str) -> float:
        r = rows[name]
        assert r["score"] != "" and int(r["label_pred"]) == int(float(r["score"]) >= float(r["threshold"]))
        return float(r["score"])

    for name in ("good.jpg", "same_bytes.jpe", "png_bytes.bin") + (("photo.avif",) if has_avif else ()):
        assert rows[name]["status"] == "ok" and rows[name]["reason"] == "", rows[name]
        scored(name)
    assert scored("same_bytes.jpe") == scored("good.jpg")  # the same bytes, the same score
    assert scored("png_bytes.bin") == pytest.approx(scored("no_iend.png"), abs=1e-6)  # same pixels
    assert rows["no_iend.png"]["status"] == "truncated" and "no IEND chunk" in rows["no_iend.png"]["reason"]
    for name, words in (("text.jpg", "not an image"), ("empty.jpg", "empty: 0 bytes")):
        assert rows[name]["status"] == "unreadable" and words in rows[name]["reason"], rows[name]
        assert rows[name]["score"] == rows[name]["label_pred"] == ""
    cut = rows["cut.jpg"]
    assert "end-of-image marker (FFD9)" in cut["reason"]
    if decode_image(str(images / "cut.jpg")) is None:  # this OpenCV/Pillow refuses cut JPEGs: no score
        assert cut["status"] == "unreadable" and cut["score"] == ""
    else:  # a decoder that fills what is missing: scored, and flagged
        assert cut["status"] == "truncated" and scored("cut.jpg") >= 0
    n_truncated = sum(r["status"] == "truncated" for r in rows.values())
    n_unreadable = sum(r["status"] == "unreadable" for r in rows.values())
    assert f"{len(rows)} file(s): {len(rows) - n_unreadable} scored" in proc.stdout
    assert f"{n_truncated} of them truncated (flagged); {n_unreadable} unreadable (no score)" in proc.stdout
    assert f"  unreadable  {images / 'empty.jpg'}  (empty: 0 bytes)" in proc.stdout
    assert f"  truncated   {images / 'no_iend.png'}  (PNG with no IEND chunk" in proc.stdout
    assert f"left out 1 file(s) that are not images by name or content: {images / 'notes.txt'}" in proc.stdout

    # a list names a missing file: it gets a row too; nothing decodable at all is an error, after the CSV
    listing = tmp_path / "list.txt"
    listing.write_text(f"{images / 'text.jpg'}\ngone.jpg\n")
    out2 = tmp_path / "none.csv"
    bad = bench("predict", str(listing), "--run", str(run_dir), "--out", str(out2), cwd=tmp_path, check=False)
    assert bad.returncode == 1 and "none of the 2 input file(s) could be decoded" in bad.stderr
    assert str(out2) in bad.stderr
    assert [(Path(r["path"]).name, r["status"], r["reason"]) for r in read_csv(out2)] == [
        ("text.jpg", "unreadable", rows["text.jpg"]["reason"]),
        ("gone.jpg", "unreadable", "missing: no such file"),
    ]


def test_predict_refuses_a_threshold_outside_0_1(tmp_path):
    shutil.copyfile(demo("test", "REAL", 0), tmp_path / "a.jpg")
    # refused before the run is read: no run is needed to hear about the flag
    a = str(tmp_path / "a.jpg")
    proc = bench("predict", a, "--run", str(tmp_path / "no_run"), "--threshold", "55", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "--threshold must be a score in [0, 1]" in proc.stderr and "got 55" in proc.stderr
    assert "give --threshold 0.55" in proc.stderr and "config.json" not in proc.stderr
    neg = bench("predict", a, "--run", str(tmp_path), "--threshold", "-0.1", cwd=tmp_path, check=False)
    assert neg.returncode == 1 and "--threshold must be a score in [0, 1]" in neg.stderr
