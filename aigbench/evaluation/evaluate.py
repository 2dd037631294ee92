"""Evaluate a model on named datasets and write ``metrics.json`` + ``predictions.csv``."""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import DataLoader

from aigbench.datasets.dataset import check_skipped
from aigbench.datasets.layouts import DEFAULT_MAX_SKIP_RATIO
from aigbench.engine.amp import AmpPolicy
from aigbench.engine.dist import DistContext
from aigbench.engine.loggers import RunLogger, atomic_open, fmt_metric, labelled_grid, write_json
from aigbench.engine.loop import Predictions, predict
from aigbench.metrics import (
    PAIRINGS,
    THRESHOLD_RULE,
    compute_metrics,
    generator_breakdown,
    one_class_note,
    youden_threshold,
)
from aigbench.metrics.calibration import bootstrap_ci, calibration_metrics, threshold_free_metrics

log = logging.getLogger("aigbench")


def score_predictions(
    preds: Predictions,
    loader: DataLoader,
    threshold: float = 0.5,
    val_threshold: Optional[Mapping[str, Any]] = None,
    calibrate: bool = False,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`score_arrays` of a dataset's predictions (generators from its samples), with the
    undecodable files that were skipped."""
    generators = loader.dataset.samples.generators[preds.index]
    result = score_arrays(preds.label, preds.score, generators, threshold, val_threshold, calibrate, bootstrap, seed)
    result.update({"n_skipped": len(preds.skipped), "skipped": preds.skipped})
    return result


def score_arrays(
    labels: np.ndarray,
    scores: np.ndarray,
    generators: Sequence[str],
    threshold: float = 0.5,
    val_threshold: Optional[Mapping[str, Any]] = None,
    calibrate: bool = False,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics, the per-generator breakdown (with its pairing of reals) and the summary rows,
    the threshold-free figures (EER, TPR at low FPR, oracle accuracy) and calibration (Brier,
    NLL, ECE). ``bootstrap`` > 0 adds 95 % confidence intervals of accuracy, AUROC and AP
    (``ci``) from that many replicates seeded with ``seed``.

    ``val_threshold`` (``{"threshold", "rule", "source"}``, calibrated on validation) adds the
    threshold-based metrics at that threshold under ``at_val_threshold``. ``calibrate`` (on
    validation data only) adds ``calibrated_threshold``, chosen by :data:`THRESHOLD_RULE`.
    """
    metrics = compute_metrics(labels, scores, threshold)
    breakdown = generator_breakdown(labels, scores, generators, threshold)
    pairings = sorted(set(breakdown["pairing"].values()))
    result: dict[str, Any] = {
        "metrics": metrics,
        "per_generator": breakdown["per_generator"],
        "generator_pairing": {
            "mode": pairings[0] if len(pairings) == 1 else ("mixed" if pairings else None),
            "per_generator": breakdown["pairing"],
            "meaning": {k: PAIRINGS[k] for k in pairings},
        },
        "real_pools": breakdown["real_pools"],
        "summary": breakdown["summary"],
        "threshold_free": threshold_free_metrics(labels, scores),
        "calibration": calibration_metrics(labels, scores),
        "notes": [n for n in (one_class_note(metrics),) if n],
    }
    if bootstrap > 0:
        result["ci"] = bootstrap_ci(labels, scores, threshold, bootstrap, seed)
    if calibrate:
        t = youden_threshold(labels, scores)
        result["calibrated_threshold"] = (
            None if t is None else {"threshold": t, "rule": THRESHOLD_RULE, "source": "validation"}
        )
    if val_threshold is not None:
        at = compute_metrics(labels, scores, float(val_threshold["threshold"]))
        keep = ("accuracy", "real_acc", "fake_acc", "balanced_acc", "f1", "threshold")
        result["at_val_threshold"] = {**{k: at[k] for k in keep}, **{k: v for k, v in val_threshold.items()}}
    return result


def format_score(score: float) -> str:
    """The shortest decimal that reads back as the same float32 score: metrics recomputed from
    ``predictions.csv`` equal those in ``metrics.json`` (same ranking, same side of any threshold)."""
    return np.format_float_positional(np.float32(score), unique=True, trim="-")


def write_predictions(path: Union[str, os.PathLike], preds: Predictions, loader: DataLoader) -> None:
    """CSV with columns path, label, score, generator, category (one row per image)."""
    samples = loader.dataset.samples
    with atomic_open(path) as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "score", "generator", "category"])
        for i, y, score in zip(preds.index, preds.label, preds.score):
            s = samples[i]
            w.writerow([s.path, int(y), format_score(score), s.generator, s.category])


def evaluate_datasets(
    model: torch.nn.Module,
    loaders: Mapping[str, DataLoader],
    ctx: DistContext,
    results_dir: Optional[Union[str, os.PathLike]] = None,
    logger: Optional[RunLogger] = None,
    step: int = 0,
    amp: Union[bool, AmpPolicy] = False,
    extra: Optional[Mapping[str, Any]] = None,
    log_images: bool = True,
    prefix: str = "test",
    max_skip_ratio: float = DEFAULT_MAX_SKIP_RATIO,
    show_progress: bool = True,
    val_threshold: Optional[Mapping[str, Any]] = None,
    calibrate: bool = False,
    threshold: float = 0.5,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Evaluate on every loader; returns ``{dataset: {"metrics", "per_generator", ...}}``.

    With ``results_dir`` the main process writes ``<results_dir>/<dataset>/metrics.json`` and
    ``predictions.csv``. With ``logger`` it logs ``<prefix>/<dataset>/<metric>`` scalars, the
    model's ``visual_image`` tensors, a PR curve and a captioned grid of inputs. ``threshold``
    is that of the threshold-based metrics (``--threshold``); ``bootstrap`` adds confidence
    intervals (:func:`score_predictions`). More than
    ``max_skip_ratio`` undecodable images in a dataset (or none decodable) stops the run.
    """
    results = {}
    for name, loader in loaders.items():
        preds = predict(model, loader, ctx, amp=amp, desc=f"{prefix} {name}", show_progress=show_progress)
        results[name] = record_predictions(
            name,
            preds,
            loader,
            ctx,
            results_dir,
            logger,
            step,
            extra,
            log_images,
            prefix,
            max_skip_ratio,
            val_threshold,
            calibrate,
            threshold,
            bootstrap,
            seed,
        )
    return results


def record_predictions(
    name: str,
    preds: Predictions,
    loader: DataLoader,
    ctx: DistContext,
    results_dir: Optional[Union[str, os.PathLike]] = None,
    logger: Optional[RunLogger] = None,
    step: int = 0,
    extra: Optional[Mapping[str, Any]] = None,
    log_images: bool = True,
    prefix: str = "test",
    max_skip_ratio: float = DEFAULT_MAX_SKIP_RATIO,
    val_threshold: Optional[Mapping[str, Any]] = None,
    calibrate: bool = False,
    threshold: float = 0.5,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Score one dataset's predictions (:func:`score_predictions`), write its ``metrics.json``
    and ``predictions.csv`` under ``results_dir/name`` and log them (main process)."""
    check_skipped(f"{prefix} dataset {name!r}", len(preds.skipped), len(loader.dataset), max_skip_ratio)
    result = score_predictions(
        preds, loader, threshold, val_threshold=val_threshold, calibrate=calibrate, bootstrap=bootstrap, seed=seed
    )
    transform = loader.dataset.transform
    result = {
        "dataset": name,
        "align_format": getattr(getattr(transform, "align", None), "spec", None),
        "eval_perturb": getattr(getattr(transform, "perturbation", None), "spec", None),
        "eval_crop": getattr(transform, "crop_name", None),
        "model_fusion": preds.fusion,
        **dict(extra or {}),
        **result,
    }
    result["provenance"] = provenance(loader, result, results_dir)
    result["notes"] = [*result["notes"], *((result["provenance"]["data"] or {}).get("notes") or [])]
    if not ctx.is_main:
        return result
    if results_dir is not None:
        out = Path(results_dir) / result_folder(name, result)
        write_json(out / "metrics.json", result)
        write_predictions(out / "predictions.csv", preds, loader)
    if logger is not None:
        tag = f"{prefix}/{name}" if prefix == "test" else prefix
        logger.scalars(tag, result["metrics"], step)
        logger.pr_curve(f"{tag}/pr_curve", preds.label, preds.score, step)
        for gen, m in result["per_generator"].items():
            logger.scalars(f"{prefix}_per_generator/{name}/{gen}", m, step)
        if headline(result):
            logger.scalars(f"{tag}/mean_over_sets", headline(result), step)
        if log_images and preds.first_batch is not None:
            log_batch_images(logger, tag, preds.first_batch, loader, step)
    if preds.skipped:
        log.warning("%s %s: skipped %d undecodable file(s)", prefix, name, len(preds.skipped))
    return result


def result_folder(name: str, result: Mapping[str, Any]) -> str:
    """The folder of a dataset's result: its name, or, for images re-encoded by ``--align_format``
    or distorted by ``--eval_perturb``, a folder of their own beside the raw result
    (``demo+align_jpeg-96``), so that neither overwrites the other. A robustness point (its result
    names its ``perturbation``) already has a folder of its own: the name alone."""
    import re

    if "perturbation" in result:
        return name
    parts = [name]
    for key, tag in (("align_format", "align"), ("eval_perturb", "perturb")):
        if result.get(key):
            parts.append(f"{tag}_{re.sub(r'[^A-Za-z0-9.]+', '-', str(result[key])).strip('-')}")
    return "+".join(parts)


def provenance(
    loader: DataLoader, result: Mapping[str, Any], results_dir: Optional[Union[str, os.PathLike]]
) -> dict[str, Any]:
    """What produced a result: the data (path, layout, folders read, counts, file-list hash), the
    preprocessing applied, the checkpoint file and its sha256, the threshold and where it came
    from, and the versions. The checkpoint is ``result["checkpoint"]`` beside the run's
    ``test/<checkpoint>/`` or ``val/`` folder that ``results_dir`` is."""
    from aigbench.datasets.provenance import preprocess_record
    from aigbench.envinfo import versions
    from aigbench.fileio import file_sha256

    ckpt: dict[str, Any] = {"file": result.get("checkpoint")}
    if result.get("checkpoint") and results_dir is not None:
        for run in (Path(results_dir).parent, Path(results_dir).parent.parent):
            path = run / str(result["checkpoint"])
            if path.is_file():
                ckpt = {"file": str(path.resolve()), "sha256": file_sha256(path)}
                break
    at = result.get("at_val_threshold")
    return {
        "data": getattr(loader.dataset, "provenance", None),
        "preprocess": {
            **preprocess_record(loader.dataset.transform),
            "fast_decode": bool(getattr(loader.dataset, "reduced_decode_floor", None)),
        },
        "checkpoint": ckpt,
        "threshold": {
            "value": result["metrics"]["threshold"],
            "source": "--threshold (0.5 unless given); fake when score > threshold",
            "validation": {k: at[k] for k in ("threshold", "rule", "source") if k in at} if at else None,
        },
        "versions": versions(),
    }


def headline(result: Mapping[str, Any]) -> dict[str, float]:
    """The papers' headline of a multi-set test set: the plain mean over its sets (generators) of
    accuracy, AP and AUROC; empty for a set of one generator (its pooled figures are the headline)."""
    summary = result.get("summary") or {}
    if summary.get("n_generators", 0) < 2:
        return {}
    return {k: summary.get(f"mean_{k}") for k in ("accuracy", "ap", "auroc")}


def log_batch_images(
    logger: RunLogger, prefix: str, first_batch: Mapping[str, Any], loader: DataLoader, step: int
) -> None:
    """The model's ``visual_image`` dict and a captioned grid of the inputs."""
    logger.images(f"{prefix}/visual_image", first_batch["visual_image"], step)
    denorm = loader.dataset.transform.normalizer.denormalize(first_batch["image"].float())
    grid = labelled_grid(denorm, first_batch["label"].tolist(), first_batch["score"].tolist())
    logger.image(f"{prefix}/inputs_label_score", grid, step)


def mean_metric(results: Mapping[str, Mapping[str, Any]], metric: str) -> float:
    """Average of one metric across datasets (NaN when none has it)."""
    vals = [r["metrics"].get(metric) for r in results.values()]
    vals = [float(v) for v in vals if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


HEADLINE = ("accuracy", "balanced_acc", "auroc", "ap")


def results_table(checkpoint_name: str, results: Mapping[str, Mapping[str, Any]]) -> str:
    """The terminal table: one row per dataset, its generators (with their pairing), and the
    field's summary rows (mean over generators, worst generator); undefined values read n/a."""
    head = f"{'':<28}" + "".join(f"{m:>13}" for m in HEADLINE) + f"{'n':>8}"
    thresholds = sorted({r["metrics"]["threshold"] for r in results.values()})
    note = f" (accuracy at threshold {', '.join(f'{t:g}' for t in thresholds)})" if thresholds else ""
    lines = [f"{checkpoint_name}{note}", head, "-" * len(head)]
    for name, r in results.items():
        m = r["metrics"]
        head = headline(r)
        if head:  # the papers' headline first, the pooled figures beside it
            label = f"{name[:14]}: mean over sets"
            lines.append(f"{label[:27]:<28}" + "".join(f"{fmt_metric(head.get(k)):>13}" if k in head else f"{'':>13}"
                                                        for k in HEADLINE))  # fmt: skip
        label = f"{name[:18]} (pooled)" if head else name[:27]
        lines.append(f"{label:<28}" + "".join(f"{fmt_metric(m.get(k)):>13}" for k in HEADLINE) + f"{m['n']:>8}")
        pairing = r.get("generator_pairing", {}).get("per_generator", {})
        for gen, gm in r.get("per_generator", {}).items():
            mark = "*" if pairing.get(gen) == "pooled_reals" else ""
            label = f"  {gen}{mark}"[:27]
            lines.append(f"{label:<28}" + "".join(f"{fmt_metric(gm.get(k)):>13}" for k in HEADLINE) + f"{gm['n']:>8}")
        summary = r.get("summary") or {}
        if summary.get("n_generators"):
            worst = summary.get("worst_accuracy")
            if worst:
                lines.append(f"  worst generator by accuracy: {worst['generator']} ({fmt_metric(worst['value'])})")
            if "pooled_reals" in pairing.values():
                lines.append("  * fakes of this generator scored against all reals of the dataset (pooled reals)")
        for note in r.get("notes", []):
            lines.append(f"  note: {note}")
        ci = r.get("ci")
        if ci:
            cells = ", ".join(
                f"{k} [{fmt_metric(ci[k]['low'])}, {fmt_metric(ci[k]['high'])}]" for k in ("accuracy", "auroc", "ap")
            )
            lines.append(f"  {int(ci['level'] * 100)}% CI ({ci['n_boot']} bootstrap replicates): {cells}")
        tf, cal = r.get("threshold_free"), r.get("calibration")
        if tf and cal:
            lines.append(
                f"  EER {fmt_metric(tf['eer'])}, TPR at 1% / 5% FPR {fmt_metric(tf['tpr_at_fpr_1'])} / "
                f"{fmt_metric(tf['tpr_at_fpr_5'])}, ECE {fmt_metric(cal['ece'])}, Brier {fmt_metric(cal['brier'])}"
            )
        at = r.get("at_val_threshold")
        if at:
            lines.append(
                f"  at the validation threshold {fmt_metric(at['threshold'])}: accuracy {fmt_metric(at['accuracy'])}"
                f", real {fmt_metric(at['real_acc'])}, fake {fmt_metric(at['fake_acc'])}"
            )
    return "\n".join(lines)


def log_results(checkpoint_name: str, results: Mapping[str, Mapping[str, Any]]) -> None:
    """Print :func:`results_table` on the terminal."""
    log.info("%s", results_table(checkpoint_name, results))


def log_checkpoint_summary(tested: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
    """With several checkpoints (``--checkpoint all``): one accuracy/AUROC row per checkpoint and
    the warning that choosing among them by these numbers is selection on the test set."""
    if len(tested) < 2:
        return
    names = sorted({d for results in tested.values() for d in results})
    head = f"{'checkpoint':<26}" + "".join(f"{n[:20]:>22}" for n in names)
    lines = ["accuracy / AUROC per checkpoint", head, "-" * len(head)]
    for ckpt, results in tested.items():
        cells = []
        for n in names:
            m = results.get(n, {}).get("metrics", {})
            cells.append(f"{fmt_metric(m.get('accuracy'))} / {fmt_metric(m.get('auroc'))}".rjust(22))
        lines.append(f"{ckpt[:25]:<26}" + "".join(cells))
    lines.append(
        "note: picking an epoch from these test numbers is selection on the test set; report "
        "checkpoint-best.pth (selected on validation) or a fixed epoch"
    )
    log.warning("%s", "\n".join(lines))
