"""``bench leaderboard RUN [RUN ...]``: runs side by side across the suites they were evaluated
on (``RUN/suites/<suite>/metrics.json``): per suite the mean accuracy and AP over its sets; across
suites their mean, worst and standard deviation, as AIGIBench and DDA report them. Writes
``leaderboard.md``, ``leaderboard.csv`` and ``leaderboard.png``."""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from aigbench.errors import ConfigError
from aigbench.fileio import atomic_open, read_suite_results

log = logging.getLogger("aigbench")


def leaderboard(runs: Sequence[Union[str, os.PathLike]]) -> dict[str, Any]:
    """Rows (one per run) of mean acc / AP per suite and across suites (mean, worst, std)."""
    results = {str(r): read_suite_results(r) for r in runs}
    suites = sorted({s for res in results.values() for s in res})
    if not suites:
        raise ConfigError(
            f"no suite results in {', '.join(map(str, runs))}; run bench eval --run RUN --suite NAME=PATH first"
        )
    rows = []
    for run, res in results.items():
        row: dict[str, Any] = {"run": run}
        accs, aps = [], []
        for s in suites:
            m = res.get(s)
            acc = None if m is None else m["mean"].get("acc")
            ap = None if m is None else m["mean"].get("ap")
            row[f"{s} acc"], row[f"{s} ap"] = acc, ap
            row[f"{s} partial"] = bool(m and m.get("partial"))
            if acc is not None:
                accs.append(acc)
            if ap is not None and np.isfinite(ap):
                aps.append(ap)
        for k, vals in (("acc", accs), ("ap", aps)):
            row[f"mean {k}"] = float(np.mean(vals)) if vals else None
            row[f"worst {k}"] = float(np.min(vals)) if vals else None
            row[f"std {k}"] = float(np.std(vals)) if vals else None
        row["suites"] = len(accs)
        rows.append(row)
    return {"suites": suites, "rows": rows}


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * float(v):.1f}"


def write_leaderboard(board: dict[str, Any], out: Union[str, os.PathLike]) -> dict[str, Path]:
    out = Path(out)
    suites, rows = board["suites"], board["rows"]
    cols = [c for s in suites for c in (f"{s} acc", f"{s} ap")]
    cols += ["mean acc", "worst acc", "std acc", "mean ap", "worst ap", "std ap"]
    with atomic_open(out / "leaderboard.csv") as f:
        w = csv.writer(f)
        w.writerow(["run", *cols, "suites"])
        for r in rows:
            w.writerow([r["run"], *("" if r[c] is None else f"{r[c]:.6g}" for c in cols), r["suites"]])
    lines = ["# Leaderboard", "", "Mean over each suite's sets (percent); across suites: mean, worst, std.", ""]
    lines += ["| run | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for r in rows:
        cells = [_pct(r[c]) + (" (partial)" if c.endswith(" acc") and r.get(c[:-4] + " partial") else "") for c in cols]
        lines.append(f"| {r['run']} | " + " | ".join(cells) + " |")
    with atomic_open(out / "leaderboard.md") as f:
        f.write("\n".join(lines) + "\n")
    from aigbench.reports.plots import save_png

    save_png(leaderboard_figure(board), out / "leaderboard.png")
    return {"csv": out / "leaderboard.csv", "md": out / "leaderboard.md", "png": out / "leaderboard.png"}


def leaderboard_figure(board: dict[str, Any]) -> Any:
    from matplotlib.figure import Figure

    suites, rows = board["suites"], board["rows"]
    fig = Figure(figsize=(max(5.0, 1.2 * len(suites) * max(1, len(rows)) / 2 + 3), 3.6))
    ax = fig.subplots()
    width = 0.8 / max(1, len(rows))
    x = np.arange(len(suites))
    for k, r in enumerate(rows):
        vals = [np.nan if r[f"{s} acc"] is None else 100 * r[f"{s} acc"] for s in suites]
        ax.bar(x + k * width, vals, width, label=Path(r["run"]).name)
    ax.set_xticks(x + width * (len(rows) - 1) / 2, suites, rotation=20, ha="right")
    ax.set_ylabel("mean accuracy over sets (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
