"""``bench report RUN [RUN ...]``: one self-contained ``report.html`` and a ``report.md`` with
the same tables, from the files that runs leave behind (``log.jsonl``, ``test/<checkpoint>/
<dataset>/metrics.json`` and ``predictions.csv``, ``robustness/<checkpoint>/robustness.csv``,
a protocol's ``cross_generator.csv`` / ``windows.csv``, a sweep's ``trials.csv``).

Plots are PNG files in ``<out>/img/`` (matplotlib) and embedded in the HTML as data URIs, so
the HTML opens offline, alone. Nothing is written outside ``<out>``.
"""

from __future__ import annotations

import base64
import csv
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from aigbench.errors import ConfigError
from aigbench.fileio import file_sha256, read_matrix, read_suite_results, stale_result
from aigbench.metrics.binary import mistakes_by_confidence
from aigbench.reports import plots

log = logging.getLogger("aigbench")

TEMPLATES = Path(__file__).resolve().parent / "templates"
N_MISTAKES = 12
THUMB = 128


@dataclass
class Dataset:
    name: str
    metrics: dict[str, Any]
    labels: Optional[np.ndarray] = None
    scores: Optional[np.ndarray] = None
    paths: list[str] = field(default_factory=list)
    generators: list[str] = field(default_factory=list)


@dataclass
class Run:
    name: str
    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: str = ""
    datasets: dict[str, Dataset] = field(default_factory=dict)
    robustness: list[dict[str, Any]] = field(default_factory=list)
    matrices: dict[str, Path] = field(default_factory=dict)
    trials: list[dict[str, Any]] = field(default_factory=list)
    importance: dict[str, float] = field(default_factory=dict)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _checkpoint_order(name: str) -> tuple[int, int]:
    """checkpoint-best first, then the latest epoch."""
    if name == "checkpoint-best":
        return (0, 0)
    m = re.fullmatch(r"checkpoint-(\d+)", name)
    return (1, -int(m.group(1))) if m else (2, 0)


def _pick(folder: Path) -> Optional[Path]:
    subs = [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    return min(subs, key=lambda p: _checkpoint_order(p.name)) if subs else None


def load_run(path: Union[str, os.PathLike]) -> Run:
    """Everything a report shows about one run (or protocol, or sweep) folder."""
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"{path}: not a folder; give the --output_dir of a run, a protocol or a sweep")
    run = Run(root.resolve().name, root)
    if (root / "config.json").is_file():
        run.config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    if (root / "log.jsonl").is_file():
        lines = (root / "log.jsonl").read_text(encoding="utf-8").splitlines()
        run.records = [json.loads(x) for x in lines if x.strip()]
    test = _pick(root / "test")
    if test is not None:
        run.checkpoint = test.name
        for d in sorted(p for p in test.iterdir() if (p / "metrics.json").is_file()):
            stale = stale_result(d / "metrics.json")
            if stale:
                log.warning("not in the report: %s", stale)
                continue
            ds = Dataset(d.name, json.loads((d / "metrics.json").read_text(encoding="utf-8")))
            if (d / "predictions.csv").is_file():
                rows = _read_csv(d / "predictions.csv")
                ds.labels = np.array([float(r["label"]) for r in rows])
                ds.scores = np.array([float(r["score"]) for r in rows])
                ds.paths = [r["path"] for r in rows]
                ds.generators = [r.get("generator", "") for r in rows]
            run.datasets[d.name] = ds
    rob = _pick(root / "robustness")
    if rob is not None and (rob / "robustness.csv").is_file():
        run.robustness = _read_csv(rob / "robustness.csv")
    for name in ("cross_generator", "windows"):
        if (root / f"{name}.csv").is_file():
            run.matrices[name] = root / f"{name}.csv"
    if (root / "trials.csv").is_file():
        run.trials = _read_csv(root / "trials.csv")
    if (root / "importance.json").is_file():
        run.importance = json.loads((root / "importance.json").read_text(encoding="utf-8")).get("importance") or {}
    if not (run.config or run.datasets or run.robustness or run.matrices or run.trials):
        raise ConfigError(
            f"{path}: holds no run results (config.json, test/, robustness/, cross_generator.csv, windows.csv or "
            "trials.csv); give a train.py --output_dir after test.py has run"
        )
    return run


def _fmt(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if not math.isfinite(f) else f"{f:.4f}"


def _with_ci(result: dict[str, Any], metric: str) -> str:
    value = _fmt(result["metrics"].get(metric))
    ci = (result.get("ci") or {}).get(metric)
    if ci and value != "n/a" and _fmt(ci["low"]) != "n/a":
        return f"{value} [{_fmt(ci['low'])}, {_fmt(ci['high'])}]"
    return value


METRIC_COLUMNS = (
    "accuracy",
    "auroc",
    "ap",
    "balanced_acc",
    "eer",
    "tpr_at_fpr_1",
    "tpr_at_fpr_5",
    "oracle_accuracy",
    "acc_at_val_threshold",
    "ece",
    "brier",
    "nll",
    "n",
)


def metrics_row(run: Run, ds: Dataset) -> dict[str, str]:
    """One row of the metrics table: headline metrics with CIs, threshold-free and calibration."""
    r = ds.metrics
    tf, cal, at = r.get("threshold_free") or {}, r.get("calibration") or {}, r.get("at_val_threshold") or {}
    return {
        "run": run.name,
        "dataset": ds.name,
        "threshold": _fmt(r["metrics"].get("threshold")),
        "accuracy": _with_ci(r, "accuracy"),
        "auroc": _with_ci(r, "auroc"),
        "ap": _with_ci(r, "ap"),
        "balanced_acc": _fmt(r["metrics"].get("balanced_acc")),
        "eer": _fmt(tf.get("eer")),
        "tpr_at_fpr_1": _fmt(tf.get("tpr_at_fpr_1")),
        "tpr_at_fpr_5": _fmt(tf.get("tpr_at_fpr_5")),
        "oracle_accuracy": _fmt(tf.get("oracle_accuracy")),
        "acc_at_val_threshold": _fmt(at.get("accuracy")) if at else "n/a",
        "ece": _fmt(cal.get("ece")),
        "brier": _fmt(cal.get("brier")),
        "nll": _fmt(cal.get("nll")),
        "n": str(r["metrics"].get("n", "")),
    }


class _Images:
    """Writes figures to ``<out>/img/`` and remembers them for the templates."""

    def __init__(self, out: Path) -> None:
        self.dir = out / "img"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.used: set[str] = set()

    def add(self, fig: Any, stem: str, caption: str) -> Optional[dict[str, str]]:
        if fig is None:
            return None
        name = self._name(stem)
        plots.save_png(fig, self.dir / f"{name}.png")
        return self._entry(name, caption)

    def _name(self, stem: str) -> str:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)
        while name in self.used:
            name += "_"
        self.used.add(name)
        return name

    def _entry(self, name: str, caption: str) -> dict[str, str]:
        data = base64.b64encode((self.dir / f"{name}.png").read_bytes()).decode("ascii")
        return {"file": f"img/{name}.png", "data": f"data:image/png;base64,{data}", "caption": caption}

    def add_file(self, path: Path, stem: str, caption: str) -> Optional[dict[str, str]]:
        """A PNG written by another tool (bench explain, bench data spectrum), copied in."""
        if not path.is_file():
            return None
        name = self._name(stem)
        (self.dir / f"{name}.png").write_bytes(path.read_bytes())
        return self._entry(name, caption)


ANALYSIS = "analysis"  # <report out>/analysis/<run>/{explain,spectrum}/<dataset>/: bench report --explain/--spectrum
SELECTIONS = {"mistakes": "most confident mistakes", "sample": "a seeded random sample per class"}


def analysis_dir(out: Union[str, os.PathLike], run_name: str) -> Path:
    """Where ``bench report --explain/--spectrum`` puts a run's maps and spectra, inside the report's folder."""
    return Path(out) / ANALYSIS / run_name


def where_it_looks(run: Run, out: Path, images: _Images) -> list[dict[str, Any]]:
    """The "where it looks" section: per test set and selection, the class-and-generator grids of
    ``bench explain`` with its checks, read from :func:`analysis_dir`."""
    items = []
    for n in run.datasets:
        for key, words in SELECTIONS.items():
            folder = analysis_dir(out, run.name) / "explain" / n / key
            if not (folder / "summary.json").is_file():
                continue
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
            figs = [
                images.add_file(folder / g, f"{run.name}_{n}_{key}_{Path(g).stem}", f"{n}, {words}: {Path(g).stem}")
                for g in summary.get("grids", [])
            ]
            r, f = summary.get("randomisation") or {}, summary.get("road") or {}
            items.append(
                {
                    "dataset": n,
                    "selection": words,
                    "method": summary.get("method", ""),
                    "target_layer": summary.get("target_layer", ""),
                    "n": summary.get("n_explained", 0),
                    "randomisation": _fmt(r.get("mean_spearman")),
                    "not_explaining": r.get("n_not_explaining", ""),
                    "road": _fmt(f.get("mean")),
                    "unfaithful": f.get("n_unfaithful", ""),
                    "figures": [x for x in figs if x],
                }
            )
    return items


def spectra_section(run: Run, out: Path, images: _Images) -> list[dict[str, Any]]:
    """Residual spectra of each test set (``bench data spectrum``), read from :func:`analysis_dir`."""
    items = []
    for n in run.datasets:
        folder = analysis_dir(out, run.name) / "spectrum" / n
        if not (folder / "spectrum.json").is_file():
            continue
        report = json.loads((folder / "spectrum.json").read_text(encoding="utf-8"))
        figs = [
            images.add_file(folder / g["png"], f"{run.name}_{n}_spectrum_{g['group']}", f"{n}: {g['group']}")
            for g in report.get("groups", [])
            if g.get("png")
        ]
        if "differences" in report.get("figures", {}):
            figs.append(
                images.add_file(folder / "differences.png", f"{run.name}_{n}_spectrum_diff", f"{n}: against the reals")
            )
        peaks = [
            {
                "group": g["group"],
                "n": g["n_images"],
                "peak": f"({p['fy']:+.3f}, {p['fx']:+.3f})",
                "period": p["period_px"],
                "strength": f"{p['strength_db']:+.1f} dB vs {g['compared_with']}",
            }
            for g in report.get("groups", [])
            for p in g.get("peaks", [])[:1]
        ]
        items.append(
            {
                "dataset": n,
                "crop": report.get("crop", ""),
                "residual": report.get("residual", ""),
                "peaks": peaks,
                "figures": [x for x in figs if x],
            }
        )
    return items


def confident_mistakes(ds: Dataset, n: int = N_MISTAKES) -> list[dict[str, Any]]:
    """The ``n`` wrong predictions (at the dataset's threshold) furthest from the threshold, each
    content once (byte-identical copies are counted in ``copies``, the first one shown), with
    thumbnails of their images (skipped when a file can no longer be read)."""
    import cv2

    from aigbench.datasets.sources import load_image

    if ds.labels is None or ds.scores is None:
        return []
    t = float(ds.metrics["metrics"].get("threshold", 0.5))
    order = mistakes_by_confidence(ds.labels, ds.scores, t)
    copies = _copies_of([ds.paths[i] for i in order])
    items: list[dict[str, Any]] = []
    shown: set[str] = set()
    for i in order:
        content = copies["key"].get(ds.paths[i], ds.paths[i])
        if content in shown:
            continue
        img = load_image(ds.paths[i])
        if img is None:
            continue
        shown.add(content)
        scale = THUMB / max(img.shape[:2])
        thumb = cv2.resize(
            img,
            (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST,
        )
        items.append(
            {
                "image": thumb,
                "label": ds.labels[i],
                "score": ds.scores[i],
                "path": ds.paths[i],
                "copies": copies["count"].get(content, 1),
            }
        )
        if len(items) == n:
            break
    return items


def _copies_of(paths: Sequence[str]) -> dict[str, dict]:
    """``key``: each readable file's content (sha256); ``count``: how many of ``paths`` hold it."""
    from collections import Counter

    key: dict[str, str] = {}
    for p in dict.fromkeys(paths):
        try:
            key[p] = file_sha256(p)
        except OSError:
            continue
    count = Counter(key[p] for p in paths if p in key)
    return {"key": key, "count": dict(count)}


def _run_section(run: Run, images: _Images, out: Optional[Path] = None) -> dict[str, Any]:
    figs = []
    figs.append(images.add(plots.training_curves(run.records), f"{run.name}_training", "training curves"))
    curves = {n: (d.labels, d.scores) for n, d in run.datasets.items() if d.labels is not None}
    if curves:
        figs.append(images.add(plots.roc_pr_curves(curves, run.name), f"{run.name}_roc_pr", "ROC and PR curves"))
    for n, d in run.datasets.items():
        if d.labels is not None and len(d.labels):
            figs.append(
                images.add(
                    plots.reliability_diagram(d.labels, d.scores, n),
                    f"{run.name}_{n}_reliability",
                    f"reliability diagram, {n}",
                )
            )
        figs.append(
            images.add(
                plots.generator_bars(d.metrics.get("per_generator") or {}, f"{n}: per generator"),
                f"{run.name}_{n}_generators",
                f"per-generator AUROC and accuracy, {n} (worst first)",
            )
        )
    for by in ("dataset", "generator"):
        for p, fig in plots.robustness_figures(run.robustness, by=by).items():
            figs.append(images.add(fig, f"{run.name}_rob_{p}_{by}", f"robustness: {p}, one line per {by}"))
    for name, path in run.matrices.items():
        corner, rows, cols, m = read_matrix(path)
        keep = [j for j, c in enumerate(cols) if c not in ("mean", "past", "current", "next")]
        fig = plots.heatmap(m[:, keep], rows, [cols[j] for j in keep], f"{name} ({corner})", "tested on", "trained on")
        figs.append(images.add(fig, f"{run.name}_{name}", f"{name} heatmap"))
    figs.append(images.add(plots.trials_figure(run.trials), f"{run.name}_trials", "sweep: the metric per trial"))
    figs.append(
        images.add(
            plots.importance_figure(run.importance), f"{run.name}_importance", "sweep: parameter importance (Optuna)"
        )
    )
    for n, d in run.datasets.items():
        grid = plots.mistakes_grid(confident_mistakes(d))
        figs.append(images.add(grid, f"{run.name}_{n}_mistakes", f"most confident mistakes, {n}"))
    generators = []
    for n, d in run.datasets.items():
        for g, m in (d.metrics.get("per_generator") or {}).items():
            generators.append(
                {
                    "dataset": n,
                    "generator": g,
                    "auroc": _fmt(m.get("auroc")),
                    "accuracy": _fmt(m.get("accuracy")),
                    "ap": _fmt(m.get("ap")),
                    "n": m.get("n"),
                }
            )
        summary = d.metrics.get("summary") or {}
        if summary.get("n_generators", 0) >= 2:  # the papers' headline: the plain mean over sets
            generators.append(
                {
                    "dataset": n,
                    "generator": f"mean over {summary['n_generators']} sets (headline)",
                    "auroc": _fmt(summary.get("mean_auroc")),
                    "accuracy": _fmt(summary.get("mean_accuracy")),
                    "ap": _fmt(summary.get("mean_ap")),
                    "n": "",
                }
            )
    suites = [
        {
            "suite": name,
            "acc": _fmt(m["mean"].get("acc")),
            "ap": _fmt(m["mean"].get("ap")),
            "sets": len(m.get("per_set") or {}),
            "partial": "partial" if m.get("partial") else "",
        }
        for name, m in read_suite_results(run.path).items()
    ]
    return {
        "name": run.name,
        "path": str(run.path),
        "model": run.config.get("model", ""),
        "checkpoint": run.checkpoint,
        "epochs": len(run.records),
        "rows": [metrics_row(run, d) for d in run.datasets.values()],
        "generators": generators,
        "suites": suites,
        "figures": [f for f in figs if f],
        "notes": sorted({note for d in run.datasets.values() for note in d.metrics.get("notes", [])}),
        "explained": where_it_looks(run, out, images) if out is not None else [],
        "spectra": spectra_section(run, out, images) if out is not None else [],
    }


def _comparison(runs: Sequence[Run], images: _Images) -> list[dict[str, str]]:
    figs = []
    names = sorted({n for r in runs for n in r.datasets})
    for n in names:
        curves = {
            r.name: (r.datasets[n].labels, r.datasets[n].scores)
            for r in runs
            if n in r.datasets and r.datasets[n].labels is not None
        }
        if len(curves) > 1:
            figs.append(
                images.add(
                    plots.roc_pr_curves(curves, f"{n}: runs compared"),
                    f"compare_{n}_roc",
                    f"ROC and PR curves of every run on {n}",
                )
            )
    overlay: dict[str, Any] = {}
    for r in runs:
        plots.robustness_figures(r.robustness, label_prefix=f"{r.name}: ", figures=overlay)
    for p, fig in overlay.items():
        figs.append(images.add(fig, f"compare_rob_{p}", f"robustness of every run: {p}"))
    return [f for f in figs if f]


def load_runs(run_dirs: Sequence[Union[str, os.PathLike]]) -> list[Run]:
    """:func:`load_run` of each folder; runs with the same folder name get a number (their plots,
    rows and analysis folders stay apart)."""
    runs = [load_run(p) for p in run_dirs]
    seen: dict[str, int] = {}
    for r in runs:
        seen[r.name] = seen.get(r.name, 0) + 1
        if seen[r.name] > 1:
            r.name = f"{r.name}-{seen[r.name]}"
    return runs


def build_report(run_dirs: Sequence[Union[str, os.PathLike]], out: Union[str, os.PathLike]) -> dict[str, Path]:
    """Write ``<out>/report.html``, ``<out>/report.md`` and ``<out>/img/*.png``; returns their paths."""
    import jinja2

    from aigbench import __version__

    runs = load_runs(run_dirs)
    out_dir = Path(out)
    images = _Images(out_dir)
    sections = [_run_section(r, images, out_dir) for r in runs]
    context = {
        "version": __version__,
        "runs": sections,
        "columns": METRIC_COLUMNS,
        "comparison_rows": [row for s in sections for row in s["rows"]] if len(runs) > 1 else [],
        "comparison_figures": _comparison(runs, images) if len(runs) > 1 else [],
    }
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    written = {}
    for name in ("report.html", "report.md"):
        written[name] = out_dir / name
        written[name].write_text(env.get_template(f"{name}.j2").render(**context), encoding="utf-8")
    return written
