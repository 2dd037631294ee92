"""``bench eval --run RUN --suite NAME=PATH``: a trained run on a benchmark, by its official protocol.

The tree is checked first (:func:`~aigbench.suites.tree.check_tree`); every image is scored
once (a pool of reals shared by several sets too) with the suite's geometry for the run's model;
each set is then scored with its own pairing. ``RUN/suites/NAME/`` receives:

* ``predictions.csv``: ``set, path, label, score``, one row per image of each set (a pooled
  real appears under each set it is paired with), so that every number can be recomputed;
* ``metrics.json``: per set accuracy (``score > 0.5``), AP, real and fake accuracy (and AUROC),
  the plain mean over sets (the headline the papers publish), the pooled figures beside it,
  the pairing, the tree check (``partial`` when sets are missing), the geometry, the sampling,
  the references and the provenance (checkpoint and its sha256, versions);
* ``table.md`` / ``table.csv``: the paper's format, rows the sets then the mean, columns acc,
  AP, real acc, fake acc (percent), then each reference with the difference from it.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from aigbench.datasets.layouts import Sample
from aigbench.errors import ConfigError
from aigbench.fileio import atomic_open, write_json
from aigbench.suites.base import TABLE_METRICS, Suite, load_suite
from aigbench.suites.tree import TreeCheck, check_tree

log = logging.getLogger("aigbench")

GEOMETRY_FLAGS = {
    "input_size": "--image_size",
    "resize_mode": "--resize_mode",
    "interpolation": "--interpolation",
    "crop_pct": "--crop_pct",
    "pad_mode": "--pad_mode",
}


def parse_suite_arg(spec: str) -> tuple[str, str]:
    """``NAME=PATH`` → ``(NAME, PATH)``; the error names --suite."""
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise ConfigError(f"--suite {spec!r}: give NAME=PATH, e.g. --suite forensynths=/data/CNNDetection/test")
    return name.strip(), path.strip()


def geometry_flags(geometry: dict[str, Any]) -> list[str]:
    unknown = set(geometry) - set(GEOMETRY_FLAGS) - {"note"}
    if unknown:
        raise ConfigError(
            f"suite geometry: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(GEOMETRY_FLAGS)}"
        )
    out: list[str] = []
    for k, flag in GEOMETRY_FLAGS.items():
        if k in geometry:
            out += [flag, str(geometry[k])]
    return out


def official_sample(samples: Sequence[Sample], sampling: dict[str, Any]) -> list[Sample]:
    """The official subsampling of one set, as UnivFD's ``validate.py`` (``read_path``, L215-222):
    Python's ``random`` seeded ``seed`` for each set, the reals then the fakes shuffled, the first
    ``per_class`` of each kept, or ``fallback`` of each when either class has fewer. The lists are
    in sorted path order (the official one walks the folders in the file system's order, which
    differs from machine to machine)."""
    import random

    rng = random.Random(int(sampling.get("seed", 0)))
    reals = sorted((s for s in samples if s.label == 0), key=lambda s: s.path)
    fakes = sorted((s for s in samples if s.label == 1), key=lambda s: s.path)
    n = int(sampling["per_class"])
    if n > len(reals) or n > len(fakes):
        n = min(int(sampling.get("fallback", n)), len(reals), len(fakes))
    rng.shuffle(reals)
    rng.shuffle(fakes)
    return reals[:n] + fakes[:n]


def set_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """The papers' per-set figures: accuracy at ``score > 0.5``, AP, real and fake accuracy."""
    from aigbench.metrics import compute_metrics

    m = compute_metrics(labels, scores, 0.5)
    return {
        "acc": m["accuracy"],
        "ap": m["ap"],
        "real_acc": m["real_acc"],
        "fake_acc": m["fake_acc"],
        "auroc": m["auroc"],
        "n_real": m["n_real"],
        "n_fake": m["n_fake"],
    }


def mean_over(per_set: dict[str, dict[str, Any]], keys: Sequence[str] = (*TABLE_METRICS, "auroc")) -> dict[str, Any]:
    out = {}
    for k in keys:
        vals = [float(m[k]) for m in per_set.values() if m.get(k) is not None and np.isfinite(m[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


def score_suite(check: TreeCheck, scores: dict[str, float], sampling: Optional[dict[str, Any]]) -> dict[str, Any]:
    """Per-set metrics with each set's pairing, and the headline mean over sets."""
    per_set, rows, pairing = {}, [], {}
    for name, rs in check.sets.items():
        samples = official_sample(rs.samples, sampling) if sampling else rs.samples
        y = np.array([s.label for s in samples], dtype=np.float64)
        s = np.array([scores[x.path] for x in samples], dtype=np.float64)
        per_set[name] = set_metrics(y, s)
        pairing[name] = f"reals of {rs.reals_folder}" if rs.reals_folder else "its own reals"
        rows += [(name, x.path, x.label, scores[x.path]) for x in samples]
    all_y = np.array([r[2] for r in rows], dtype=np.float64)
    all_s = np.array([r[3] for r in rows], dtype=np.float64)
    return {"per_set": per_set, "mean": mean_over(per_set), "pooled": set_metrics(all_y, all_s), "pairing": pairing,
            "rows": rows}  # fmt: skip


def _pct(v: Any) -> str:
    return "" if v is None or not np.isfinite(v) else f"{100 * float(v):.1f}"


def paper_table(suite: Suite, result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The rows of ``table.csv`` / ``table.md``: sets then mean; acc, AP, real acc, fake acc in
    percent; each reference's acc and AP and the difference (ours - published)."""
    head = ["set", "acc", "ap", "real_acc", "fake_acc"]
    for ref in suite.references:
        head += [f"{ref.detector} acc", f"{ref.detector} ap", f"Δacc vs {ref.detector}", f"Δap vs {ref.detector}"]
    rows = []
    for name in [*result["per_set"], "mean"]:
        m = result["mean"] if name == "mean" else result["per_set"][name]
        row = [name, *(_pct(m.get(k)) for k in TABLE_METRICS)]
        for ref in suite.references:
            pub = ref.mean if name == "mean" else ref.per_set.get(name, {})
            cells = []
            for k in ("acc", "ap"):
                cells.append("" if pub.get(k) is None else f"{pub[k]:.1f}")
            for k in ("acc", "ap"):
                ours = m.get(k)
                ok = pub.get(k) is not None and ours is not None and np.isfinite(ours)
                cells.append(f"{100 * float(ours) - pub[k]:+.1f}" if ok else "")
            row += cells
        rows.append(row)
    return head, rows


def write_tables(out: Path, suite: Suite, result: dict[str, Any], partial: bool) -> None:
    head, rows = paper_table(suite, result)
    with atomic_open(out / "table.csv") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(rows)
    lines = [f"# {suite.title}", "", f"{suite.citation}", ""]
    if partial:
        lines += ["**PARTIAL**: sets are missing; the mean is not the benchmark's.", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if suite.references:
        lines += ["", "References:"] + [f"* {r.detector}{' (' + r.setting + ')' if r.setting else ''}: {r.source}"
                                        for r in suite.references]  # fmt: skip
    lines += ["", "Accuracy at score > 0.5, AP by scikit-learn, in percent; mean = the plain mean over sets."]
    with atomic_open(out / "table.md") as f:
        f.write("\n".join(lines) + "\n")


def evaluate_suite(
    run_dir: Union[str, os.PathLike],
    suite_arg: str,
    checkpoint: str = "",
    device: str = "auto",
    batch_size: Optional[int] = None,
    num_workers: int = 0,
    official_sampling: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Evaluate the run in ``run_dir`` on ``suite_arg`` (``NAME=PATH``); returns ``metrics.json``."""
    from aigbench.datasets.dataset import ImageDataset, build_loader
    from aigbench.engine import build
    from aigbench.engine.amp import amp_policy
    from aigbench.engine.args import read_run_config
    from aigbench.engine.loop import predict
    from aigbench.evaluation.evaluate import format_score, provenance
    from aigbench.evaluation.predict import load_run

    name, path = parse_suite_arg(suite_arg)
    suite = load_suite(name)
    run = Path(run_dir)
    check = check_tree(suite, path)  # before any work
    for msg in check.messages():
        log.warning("%s: %s", suite.name, msg)
    if official_sampling and not suite.sampling:
        raise ConfigError(f"--official_sampling: the {suite.name} suite has no official sampling")
    model_name = str(read_run_config(str(run)).get("model", ""))
    geometry = suite.geometry_for(model_name)
    args, ctx, model, ckpt, epoch = load_run(run, checkpoint, device, batch_size, num_workers, geometry_flags(geometry))
    unique: dict[str, Sample] = {}
    for rs in check.sets.values():
        for s in rs.samples:
            unique.setdefault(s.path, s)
    transform = build.build_transform(args, False)
    dataset = ImageDataset(list(unique.values()), transform, suite.name)
    loader = build_loader(dataset, build.eval_batch_size(args), False, args.num_workers)
    log.info("%s: %d set(s), %d image(s), geometry %s", suite.name, len(check.sets), len(unique), geometry)
    preds = predict(model, loader, ctx, amp_policy(ctx.device, args.amp), desc=suite.name, show_progress=show_progress)
    paths = list(unique)
    scores = {paths[int(i)]: float(s) for i, s in zip(preds.index, preds.score)}
    if preds.skipped:
        raise ConfigError(f"{suite.name}: {len(preds.skipped)} image(s) could not be decoded, e.g. {preds.skipped[0]}")
    scored = score_suite(check, scores, suite.sampling if official_sampling else None)
    out = run / "suites" / suite.name
    with atomic_open(out / "predictions.csv") as f:
        w = csv.writer(f)
        w.writerow(["set", "path", "label", "score"])
        for set_name, p, y, s in scored["rows"]:
            w.writerow([set_name, p, y, format_score(np.float32(s))])
    result = {
        "suite": suite.name,
        "title": suite.title,
        "citation": suite.citation,
        "official_code": list(suite.official_code),
        "suite_file": suite.source_file,
        "partial": check.partial,
        "tree": check.as_dict(),
        "geometry": geometry,
        "sampling": suite.sampling if official_sampling else None,
        "threshold": "fake when score > 0.5",
        "headline": "mean over sets",
        "mean": scored["mean"],
        "pooled": scored["pooled"],
        "per_set": scored["per_set"],
        "pairing": scored["pairing"],
        "references": [r.__dict__ for r in suite.references],
        "checkpoint": ckpt.name,
        "checkpoint_epoch": epoch,
        "differs_from_training": getattr(args, "differs_from_training", {}),
    }
    prov = provenance(loader, {"checkpoint": ckpt.name, "metrics": {"threshold": 0.5}}, run / "suites")
    result["provenance"] = {k: v for k, v in prov.items() if k != "data"}
    write_json(out / "metrics.json", result)
    write_tables(out, suite, scored, check.partial)
    return result
