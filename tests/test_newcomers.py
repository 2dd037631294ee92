"""Issue 22: what new users stumbled over, each kept fixed (the report's browser check, bench init
in a project and the ensemble, sweep, grid and fit-step lines live beside their features)."""

from __future__ import annotations

import os
import shutil

import numpy as np
from matplotlib.figure import Figure

from aigbench.engine import args as flags
from aigbench.registry import LAYOUTS
from aigbench.reports import plots
from aigbench.reports.report import Dataset, confident_mistakes

from conftest import need_cifake


def test_layout_help_names_every_registered_layout():
    for parser in (flags.train_parser(), flags.test_parser()):
        text = " ".join(parser.format_help().split())
        missing = [name for name in LAYOUTS.list() if name not in text]
        assert not missing and len(LAYOUTS.list()) >= 11, missing


def _rows(metric_values: list[float]) -> list[dict]:
    return [
        {
            "perturbation": "jpeg",
            "strength": s,
            "dataset": "d",
            "generator": "",
            "auroc": v,
            "accuracy": v,
            "ece": v / 10,
        }
        for s, v in zip((100, 90, 70, 50), metric_values)
    ]


def test_robustness_curves_keep_a_fixed_axis_so_noise_does_not_look_like_a_collapse():
    flat = _rows([0.951, 0.950, 0.949, 0.951])
    fig = plots.robustness_figures(flat, metrics=("accuracy", "auroc", "ece"))["jpeg"]
    assert isinstance(fig, Figure)
    acc, auroc, ece = fig.axes
    assert acc.get_ylim() == (0.0, 1.0) and auroc.get_ylim() == (0.0, 1.0)
    assert "0-1" in auroc.get_ylabel()
    lo, hi = ece.get_ylim()
    assert hi - lo >= plots.MIN_SPAN - 1e-12 and "at least" in ece.get_ylabel()


def test_confident_mistakes_show_each_content_once_with_its_copies(tmp_path):
    src = need_cifake() / "test" / "REAL"
    files = sorted(os.listdir(src))[:3]
    paths = []
    for k, f in enumerate(files):
        p = tmp_path / f"{k}.jpg"
        shutil.copy(src / f, p)
        paths.append(str(p))
    for c in range(2):  # the first image stored three times under other names
        p = tmp_path / f"copy{c}.jpg"
        shutil.copy(src / files[0], p)
        paths.append(str(p))
    labels = np.zeros(len(paths))  # all real, all scored fake: every one a mistake
    scores = np.array([0.99, 0.7, 0.6, 0.98, 0.97])
    ds = Dataset("d", {"metrics": {"threshold": 0.5}}, labels, scores, paths)
    items = confident_mistakes(ds)
    assert [os.path.basename(i["path"]) for i in items] == ["0.jpg", "1.jpg", "2.jpg"]
    assert [i["copies"] for i in items] == [3, 1, 1]
    fig = plots.mistakes_grid(items)
    assert "(3 copies)" in fig.axes[0].get_title()
