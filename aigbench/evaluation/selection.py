"""Model selection on validation data, never on test data.

Each due epoch, :func:`validate_and_select` scores the validation set, calibrates a
threshold on it, and saves ``checkpoint-best.pth`` when ``--best_metric`` improves. Test sets
are evaluated for the record only. Without validation data no best checkpoint exists and
the last epoch is the model (``test.py`` then tests it).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from torch.utils.data import DataLoader

from aigbench.engine.amp import AmpPolicy
from aigbench.engine.checkpoint import BEST_NAME, ResumeState, improve_best, save_checkpoint
from aigbench.engine.dist import DistContext
from aigbench.engine.loggers import RunLogger
from aigbench.evaluation.evaluate import DEFAULT_MAX_SKIP_RATIO, evaluate_datasets

log = logging.getLogger("aigbench")

VAL_NAME = "val"


LOSS_METRICS = ("val_loss", "loss")


def selection_value(result: Mapping[str, Any], metric: str) -> float:
    """The number that ``--best_metric`` ranks epochs by (larger is better): a validation metric,
    or ``val_loss`` (the binary cross-entropy of the scores, ``calibration.nll``), negated."""
    if metric in LOSS_METRICS:
        nll = (result.get("calibration") or {}).get("nll")
        return -float(nll) if nll is not None else float("nan")
    value = result.get("metrics", {}).get(metric)
    return float(value) if value is not None else float("nan")


def val_results_dir(output_dir: Union[str, os.PathLike], epoch: int) -> Path:
    return Path(output_dir) / "val" / f"checkpoint-{epoch}"


def validate_and_select(
    model: torch.nn.Module,
    val_loader: DataLoader,
    ctx: DistContext,
    output_dir: Union[str, os.PathLike],
    epoch: int,
    state: ResumeState,
    best_metric: str,
    amp: Union[bool, AmpPolicy] = False,
    logger: Optional[RunLogger] = None,
    max_skip_ratio: float = DEFAULT_MAX_SKIP_RATIO,
    show_progress: bool = True,
    save_state: Optional[Mapping[str, Any]] = None,
) -> dict[str, Any]:
    """Evaluate ``val_loader``; when ``best_metric`` improves, record it (with the calibrated
    threshold) in ``state.best`` and save ``checkpoint-best.pth``.

    ``save_state`` holds the keyword arguments of :func:`save_checkpoint` (optimizer,
    scheduler, scaler, config, global_step). Returns ``val_*`` entries for ``log.jsonl``.
    """
    results = evaluate_datasets(
        model,
        {VAL_NAME: val_loader},
        ctx,
        val_results_dir(output_dir, epoch),
        logger,
        epoch,
        amp,
        extra={"checkpoint": f"checkpoint-{epoch}.pth", "split": "validation"},
        log_images=False,
        prefix="val",
        max_skip_ratio=max_skip_ratio,
        show_progress=show_progress,
        calibrate=True,
    )
    val = results[VAL_NAME]
    metrics = val["metrics"]
    calib = val.get("calibrated_threshold")
    selected = improve_best(
        state.best,
        best_metric,
        selection_value(val, best_metric),
        epoch,
        threshold=None if calib is None else calib["threshold"],
        threshold_rule=None if calib is None else calib["rule"],
    )
    if selected and ctx.is_main:
        save_checkpoint(output_dir, epoch, model, best=state.best, name=BEST_NAME, **dict(save_state or {}))
    record = {f"val_{k}": v for k, v in metrics.items()}
    record["val_loss"] = (val.get("calibration") or {}).get("nll")
    record["val_threshold"] = None if calib is None else calib["threshold"]
    record["selected"] = selected
    return record


def val_threshold_for(output_dir: Union[str, os.PathLike], epoch: int) -> Optional[dict[str, Any]]:
    """The threshold calibrated on validation for the checkpoint of ``epoch`` in the run folder
    ``output_dir`` (the checkpoint's own folder), at full precision; None without one."""
    path = val_results_dir(output_dir, epoch) / VAL_NAME / "metrics.json"
    if epoch < 0 or not path.is_file():
        return None
    calib = json.loads(path.read_text(encoding="utf-8")).get("calibrated_threshold")
    return dict(calib) if calib else None
