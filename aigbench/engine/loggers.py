"""TensorBoard events, ``log.jsonl`` and image grids. Only the main process writes."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import cv2
import numpy as np
import torch

from aigbench.errors import ConfigError
from aigbench.fileio import EXACT_KEYS, SIGNIFICANT_DIGITS, atomic_open, clean_float, to_jsonable, write_json  # noqa: F401
from aigbench.metrics.binary import is_fake

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=-]*$")


def safe_name(name: str, what: str) -> str:
    """``name`` when it can be one folder name (letters, digits, ``_ . + = -``; no ``/`` or ``..``)."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        raise ConfigError(f"{what}: {name!r} cannot name a folder; use letters, digits and _ . + = - (no '/', no '..')")
    return name


def inside(root: Union[str, os.PathLike], relative: str, what: str) -> Path:
    """``root / relative`` after checking every part with :func:`safe_name`: never outside ``root``."""
    for part in Path(relative).parts:
        safe_name(part, what)
    return Path(root) / relative


class WandbMirror:
    """Every scalar that TensorBoard gets, also logged to a Weights & Biases run (``--wandb``).

    Offline by default: the run lives in ``<output_dir>/wandb`` (``wandb sync`` uploads it later),
    and W&B's cache, config and data folders are put there too unless the environment names
    them, so nothing is written outside the output folder. Each scalar prefix (``train``,
    ``val``, ``test/<set>`` ...) gets its own step axis, as in TensorBoard.
    """

    def __init__(self, output_dir: Path, phase: str, flags: Any) -> None:
        try:
            import wandb
        except ImportError:
            raise ConfigError("--wandb needs the wandb package: pip install wandb (or leave out --wandb)") from None
        home = output_dir / "wandb"
        home.mkdir(parents=True, exist_ok=True)
        for var, sub in (("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config"), ("WANDB_DATA_DIR", "data")):
            os.environ.setdefault(var, str(home / sub))
        config = {k: v for k, v in to_jsonable(vars(flags)).items() if k != "wandb"}
        self._run = wandb.init(
            project=getattr(flags, "wandb_project", "aigbench"),
            name=f"{output_dir.resolve().name}-{phase}",
            group=output_dir.resolve().name,
            job_type=phase,
            dir=str(output_dir),
            mode=getattr(flags, "wandb_mode", "offline"),
            config=config,
            settings=wandb.Settings(silent=True, console="off", disable_git=True, save_code=False),
        )
        self._axes: set[str] = set()

    def log(self, prefix: str, values: Mapping[str, float], step: int) -> None:
        axis = f"{prefix}/step" if prefix else "step"
        if axis not in self._axes:  # one step axis per prefix: train steps and epochs do not collide
            self._run.define_metric(axis)
            self._run.define_metric(f"{prefix}/*" if prefix else "*", step_metric=axis)
            self._axes.add(axis)
        self._run.log({**{f"{prefix}/{k}" if prefix else k: v for k, v in values.items()}, axis: step})

    def close(self) -> None:
        self._run.finish()


class RunLogger:
    """Writes TensorBoard events under ``<output_dir>/tensorboard/<phase>`` and JSON lines;
    with ``flags.wandb`` (``--wandb``) every scalar also goes to W&B (:class:`WandbMirror`).

    A disabled logger (non-main ranks) accepts every call and writes nothing.
    """

    def __init__(
        self, output_dir: Union[str, os.PathLike], phase: str, enabled: bool = True, flags: Optional[Any] = None
    ) -> None:
        self.enabled = enabled
        self.output_dir = Path(output_dir)
        self._writer = None
        self._wandb: Optional[WandbMirror] = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.output_dir.mkdir(parents=True, exist_ok=True)
            self._writer = SummaryWriter(str(self.output_dir / "tensorboard" / phase))
            if flags is not None and getattr(flags, "wandb", False):
                self._wandb = WandbMirror(self.output_dir, phase, flags)

    def scalars(self, prefix: str, values: Mapping[str, Any], step: int) -> None:
        if self._writer is None:
            return
        finite = {
            k: float(v)
            for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        }
        for k, v in finite.items():
            self._writer.add_scalar(f"{prefix}/{k}" if prefix else k, v, step)
        if self._wandb is not None and finite:
            self._wandb.log(prefix, finite, step)

    def images(self, prefix: str, images: Mapping[str, torch.Tensor], step: int) -> None:
        """Log ``visual_image`` tensors, each min-max scaled to [0, 1] for display."""
        if self._writer is None:
            return
        for k, v in images.items():
            v = v.detach().float().cpu()
            if v.dim() == 3:
                v = v.unsqueeze(0)
            v = v[:16]
            lo = v.amin(dim=(1, 2, 3), keepdim=True)
            hi = v.amax(dim=(1, 2, 3), keepdim=True)
            self._writer.add_images(f"{prefix}/{k}", (v - lo) / (hi - lo).clamp_min(1e-8), step)

    def image(self, tag: str, hwc_uint8: np.ndarray, step: int) -> None:
        if self._writer is not None:
            self._writer.add_image(tag, hwc_uint8, step, dataformats="HWC")

    def pr_curve(self, tag: str, labels: Any, scores: Any, step: int) -> None:
        """TensorBoard's precision-recall curve of the fake class; skipped when one class is missing."""
        y = np.asarray(labels)
        if self._writer is None or not ((y == 0).any() and (y == 1).any()):
            return
        self._writer.add_pr_curve(tag, y.astype(bool), np.clip(np.asarray(scores, dtype=np.float64), 0, 1), step)

    def figure(self, tag: str, fig: Any, step: int = 0) -> None:
        """A matplotlib figure (closed after logging)."""
        if self._writer is not None:
            self._writer.add_figure(tag, fig, step, close=True)

    def jsonl(self, filename: str, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.output_dir / filename, "a", encoding="utf-8") as f:
            f.write(json.dumps(to_jsonable(record), allow_nan=False) + "\n")

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._wandb is not None:
            self._wandb.close()
            self._wandb = None


def labelled_grid(
    images: torch.Tensor, labels: Sequence[float], scores: Sequence[float], columns: int = 8, cell: int = 96
) -> np.ndarray:
    """An ``HxWx3`` uint8 grid of images in [0, 1], each captioned ``label score``.

    The caption reads ``R``/``F`` for the true label and the probability of fake; green when
    the prediction at 0.5 is right, red when wrong.
    """
    imgs = images.detach().float().cpu().clamp(0, 1).permute(0, 2, 3, 1).numpy()
    n = len(imgs)
    rows = max(1, math.ceil(n / columns))
    caption_h = 14
    grid = np.full((rows * (cell + caption_h), columns * cell, 3), 255, dtype=np.uint8)
    for i, (img, y, s) in enumerate(zip(imgs, labels, scores)):
        r, c = divmod(i, columns)
        tile = cv2.resize((img * 255).astype(np.uint8), (cell, cell), interpolation=cv2.INTER_NEAREST)
        if tile.ndim == 2:
            tile = np.repeat(tile[..., None], 3, axis=2)
        y0 = r * (cell + caption_h)
        grid[y0 : y0 + cell, c * cell : (c + 1) * cell] = tile[..., :3]
        correct = is_fake(s) == (y >= 0.5)
        color = (0, 150, 0) if correct else (210, 0, 0)
        text = f"{'F' if y >= 0.5 else 'R'} {s:.2f}"
        cv2.putText(grid, text, (c * cell + 2, y0 + cell + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.38, color, 1, cv2.LINE_AA)
    return grid


def fmt_metric(value: Any, spec: str = ".4f") -> str:
    """A metric for the terminal: ``n/a`` when undefined (None or NaN), never ``nan``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec)


def _fit_value(v: Any) -> str:
    return str(int(v)) if float(v).is_integer() else fmt_metric(v)


def log_epoch(record: Mapping[str, Any]) -> None:
    """One readable terminal line per epoch: train loss/accuracy, validation, then each test set."""
    import logging

    parts = [f"epoch {record.get('epoch')}"]
    fitted = {k[len("train_fit_") :]: v for k, v in record.items() if k.startswith("train_fit_")}
    if fitted:  # a closed-form model (fit step): its loss and accuracy during the epoch mean nothing
        parts.append("fitted " + ", ".join(f"{k.replace('_', ' ')} {_fit_value(v)}" for k, v in fitted.items()))
    elif "train_loss" in record:
        parts.append(f"train loss {record['train_loss']:.4f} acc {fmt_metric(record.get('train_acc'))}")
    groups: dict[str, dict[str, Any]] = {}
    for k, v in record.items():
        for metric in ("accuracy", "auroc", "ap"):
            if k.startswith("val_") and k == f"val_{metric}":
                groups.setdefault("val", {})[metric] = v
            elif k.startswith("test_") and k.endswith(f"_{metric}"):
                groups.setdefault("test " + k[5 : -len(metric) - 1], {})[metric] = v
    for name, m in groups.items():
        parts.append(name + " " + " ".join(f"{k} {fmt_metric(v)}" for k, v in m.items()))
    if record.get("selected"):
        parts.append("-> checkpoint-best.pth")
    logging.getLogger("aigbench").info(" | ".join(parts))
