"""Shared fixtures: the shared CIFAKE data, small real subsets of it, and a rendered project."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import warm_python

REPO = Path(__file__).resolve().parent.parent
SHARED_CIFAKE = REPO.parent / "shared" / "data" / "cifake-mini"
IN_REPO_CIFAKE = Path(__file__).resolve().parent / "data" / "cifake"  # 320 + 320 train, 120 + 120 test
# AIGBENCH_CIFAKE, else the shared subset beside the repository, else the fixture the repository carries:
# the tests pick the first files of each folder in sorted order, which the fixture holds, so a plain
# clone runs every test with the same images.
CIFAKE = Path(
    os.environ.get("AIGBENCH_CIFAKE")
    or (SHARED_CIFAKE if (SHARED_CIFAKE / "train" / "REAL").is_dir() else IN_REPO_CIFAKE)
)


def need_full_cifake() -> Path:
    """The whole 12 000-image cifake-mini, for the few tests that count all of it:
    ``AIGBENCH_CIFAKE_FULL``, else the shared copy beside the repository (CI has it)."""
    full = Path(os.environ.get("AIGBENCH_CIFAKE_FULL") or SHARED_CIFAKE)
    if not (full / "train" / "REAL").is_dir() or len(os.listdir(full / "train" / "REAL")) < 5000:
        pytest.skip(f"needs the whole cifake-mini (12 000 images) at {full}; set AIGBENCH_CIFAKE_FULL")
    return full


def need_cifake() -> Path:
    if not (CIFAKE / "train" / "REAL").is_dir():
        pytest.fail(f"CIFAKE data not found at {CIFAKE}: AIGBENCH_CIFAKE names a folder without train/REAL")
    return CIFAKE


def cifake_subset(split: str, n_per_class: int) -> list[list]:
    """The first ``n_per_class`` REAL and FAKE images of a split, as a JSON-list layout."""
    root = need_cifake() / split
    out = []
    for cls, label in (("REAL", 0), ("FAKE", 1)):
        files = sorted(os.listdir(root / cls))[:n_per_class]
        out += [[str(root / cls / f), label] for f in files]
    return out


@pytest.fixture(scope="session")
def subsets(tmp_path_factory) -> dict[str, Path]:
    """JSON lists: train (300+300) and an odd-sized test set (101+100) from cifake-mini."""
    d = tmp_path_factory.mktemp("subsets")
    paths = {}
    for name, split, n in (("train", "train", 300), ("test", "test", 100)):
        items = cifake_subset(split, n)
        if name == "test":
            items.append([str(need_cifake() / "test" / "REAL" / sorted(os.listdir(CIFAKE / "test" / "REAL"))[n]), 0])
        p = d / f"{name}.json"
        p.write_text(json.dumps(items))
        paths[name] = p
    (d / "test_datasets.json").write_text(json.dumps({"cifake_sub": str(paths["test"])}))
    paths["test_map"] = d / "test_datasets.json"
    return paths


BENCH_SCRIPT = Path(sys.executable).with_name("bench")  # the console script `pip install -e .` wrote


def bench(*args: str, cwd: Path, check: bool = True, cold: bool = False) -> subprocess.CompletedProcess:
    """Run the installed ``bench`` console script, as ``python <venv>/bin/bench`` so that it can run
    warm (and so that, like ``bench``, it does not put the working folder on ``sys.path``)."""
    if BENCH_SCRIPT.is_file():
        return run([sys.executable, str(BENCH_SCRIPT), *args], cwd=cwd, check=check, cold=cold)
    code = "from aigbench.cli.main import main; main()"  # not installed as a package: the same entry point
    return run([sys.executable, "-c", code, *args], cwd=cwd, check=check, cold=cold)


_ZYGOTE: list = []  # this worker's warm interpreter (tests/warm_python.py), started on first use


def _warm_python() -> str | None:
    """The ``python`` that runs scripts in this worker's warm interpreter, or None (cold runs only)."""
    if not warm_python.usable():
        return None
    if not _ZYGOTE:
        import atexit
        import warnings

        try:
            _ZYGOTE.append(warm_python.Zygote())
            atexit.register(_ZYGOTE[0].close)
        except RuntimeError as e:
            warnings.warn(f"{e}: the scripts start in fresh interpreters (slower)", stacklevel=2)
            _ZYGOTE.append(None)
    return _ZYGOTE[0] and _ZYGOTE[0].python


def run(
    cmd: list[str], cwd: Path, check: bool = True, env: dict | None = None, cold: bool = False
) -> subprocess.CompletedProcess:
    """Run ``cmd`` as a process and wait for it. ``python`` (``sys.executable``, also as ``$PYTHON``
    of the rendered shell scripts) runs in the worker's warm interpreter unless ``cold``: a fresh
    process forked from one that has imported torch & co. (see ``tests/warm_python.py``)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    warm = None if cold else _warm_python()
    if warm:
        cmd = [warm if c == sys.executable else c for c in cmd[:1]] + list(cmd[1:])
        full_env = {k: warm if v == sys.executable else v for k, v in full_env.items()}
        full_env.setdefault("PYTHON", warm)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{cmd} failed ({proc.returncode}):\nSTDOUT:\n{proc.stdout[-3000:]}\nSTDERR:\n{proc.stderr[-5000:]}"
        )
    return proc


@pytest.fixture
def project(tmp_path) -> Path:
    """A fresh folder rendered by ``bench init``."""
    bench("init", cwd=tmp_path)
    return tmp_path


def script(project: Path, name: str, *args: str, check: bool = True, env: dict | None = None, cold: bool = False):
    return run([sys.executable, name, *args], cwd=project, check=check, env=env, cold=cold)


def sigint_default() -> None:
    """``preexec_fn`` of a process that a test stops with SIGINT (Ctrl-C): a suite started in the
    background by a shell without job control inherits SIGINT ignored (POSIX), and so would the
    process, unlike one a user starts from a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def torchrun(project: Path, *args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    """``train.py`` under ``torchrun --standalone`` with ``nproc`` CPU processes (one thread each)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    return run([*cmd, "train.py", "--device", "cpu", *args], cwd=project, env={"OMP_NUM_THREADS": "1"})


@pytest.fixture
def aigbench_log(caplog):
    """caplog on the "aigbench" logger itself (a configured run turns its propagation off)."""
    import logging

    log = logging.getLogger("aigbench")
    level, propagate = log.level, log.propagate
    log.addHandler(caplog.handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield caplog
    log.removeHandler(caplog.handler)
    log.setLevel(level)
    log.propagate = propagate


def data_flags(subsets: dict[str, Path], test: str = "test") -> list[str]:
    """``--data_path``/``--test_data_path`` pointing at the session's CIFAKE subsets."""
    return ["--data_path", str(subsets["train"]), "--test_data_path", str(subsets[test])]


GENIMAGE_GENERATORS = {  # GenImage's folder and sub-folder names, as shipped
    "BigGAN": "imagenet_ai_0419_biggan",
    "ADM": "imagenet_ai_0508_adm",
    "glide": "imagenet_glide",
    "Midjourney": "imagenet_midjourney",
}


@pytest.fixture(scope="session")
def genimage_tree(tmp_path_factory) -> Path:
    """A GenImage-shaped tree from cifake-mini: <Gen>/<sub>/{train,val}/{ai,nature}, fakes as PNG
    (``<i>_<gen>_<k>.PNG``) and reals as JPEG (ImageNet-style names), 40+40 train and 15+15 val
    per generator, each generator with its own images."""
    import cv2

    root = tmp_path_factory.mktemp("GenImage")
    src = need_cifake()
    fakes = sorted(os.listdir(src / "train" / "FAKE"))
    reals = sorted(os.listdir(src / "train" / "REAL"))
    k = 0
    for g, sub in GENIMAGE_GENERATORS.items():
        for split, n in (("train", 40), ("val", 15)):
            for cls, files, folder in (("ai", fakes, "FAKE"), ("nature", reals, "REAL")):
                d = root / g / sub / split / cls
                d.mkdir(parents=True)
                for i in range(n):
                    img = cv2.imread(str(src / "train" / folder / files[k + i]))
                    if cls == "ai":
                        cv2.imwrite(str(d / f"{i}_{g.lower()}_{k + i}.PNG"), img)
                    else:
                        cv2.imwrite(str(d / f"n0144076{k % 10}_{k + i}.JPEG"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            k += n
    return root


@contextlib.contextmanager
def headless_chromium(width: int, height: int = 2000):
    """A Selenium driver of headless Chromium at ``width`` x ``height``; the test is skipped where
    Chromium is not installed (Debian: apt install chromium chromium-driver)."""
    import shutil

    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if binary is None or shutil.which("chromedriver") is None:
        pytest.skip("no Chromium on this machine (Debian: apt install chromium chromium-driver)")
    pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()
