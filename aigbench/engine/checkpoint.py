"""Checkpoints: atomic writes, ``weights_only=True`` loads, plain-data run configuration.

A checkpoint is a dict of tensors and plain Python data::

    {"model": state_dict, "optimizer": ..., "scheduler": ..., "scaler": ...,
     "epoch": last finished epoch, "global_step": int, "best": {...},
     "config": {flag: value, ...}, "aigbench_version": str}
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

import torch

from aigbench import __version__
from aigbench.errors import AigbenchError

log = logging.getLogger("aigbench")

_EPOCH_RE = re.compile(r"^checkpoint-(\d+)\.pth$")
PRETRAINED = "pretrained"  # --checkpoint value: test the weights given by --pretrained_path
ALL = "all"  # --checkpoint value: every epoch (and best)
BEST_NAME = "checkpoint-best.pth"


class CheckpointError(AigbenchError, RuntimeError):
    """A checkpoint file is missing, unreadable or does not fit the model."""


def atomic_torch_save(obj: Any, path: Union[str, os.PathLike]) -> Path:
    """Write to a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_checkpoint(
    output_dir: Union[str, os.PathLike],
    epoch: int,
    model: torch.nn.Module,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scheduler: Any = None,
    scaler: Any = None,
    config: Optional[dict[str, Any]] = None,
    global_step: int = 0,
    best: Optional[dict[str, Any]] = None,
    name: Optional[str] = None,
) -> Path:
    """Save ``checkpoint-<epoch>.pth`` (or ``name``) atomically and return its path. A model with a
    frozen backbone (``frozen_parts()``) is saved without it: only its trainable weights and
    the backbone's identity, which loading checks."""
    state = {
        **model_state(model),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "epoch": int(epoch),
        "global_step": int(global_step),
        "best": dict(best or {}),
        "config": _plain(config or {}),
        "aigbench_version": __version__,
    }
    return atomic_torch_save(state, Path(output_dir) / (name or f"checkpoint-{epoch}.pth"))


def _frozen_parts(model: torch.nn.Module) -> Optional[dict[str, Any]]:
    parts = getattr(unwrap(model), "frozen_parts", None)
    return parts() if callable(parts) else None


def model_state(model: torch.nn.Module) -> dict[str, Any]:
    """``{"model": state dict}``, without the frozen backbone's keys (``{"frozen": ...}`` then says
    which prefixes were left out and what the backbone is)."""
    state = unwrap(model).state_dict()
    parts = _frozen_parts(model)
    if not parts:
        return {"model": state}
    prefixes = tuple(parts["prefixes"])
    return {"model": {k: v for k, v in state.items() if not k.startswith(prefixes)}, "frozen": _plain(parts)}


def with_frozen_weights(model: torch.nn.Module, state: dict[str, Any], source: str) -> dict[str, Any]:
    """The full state dict of a checkpoint saved without its frozen backbone: the model's own
    backbone weights (built from the same flags) fill the left-out keys, after checking that
    the backbone is the one the checkpoint was trained on."""
    frozen = state.get("frozen")
    weights = state.get("model", state)
    if not frozen:
        return weights
    parts = _frozen_parts(model) or {}
    if parts.get("identity") != frozen.get("identity"):
        raise CheckpointError(
            f"{source} was trained on the frozen backbone {frozen.get('identity')}, but this model's backbone is "
            f"{parts.get('identity')}; rebuild the model with the run's flags (its --pretrained_path / --clip_path)"
        )
    prefixes = tuple(frozen["prefixes"])
    own = unwrap(model).state_dict()
    return {**{k: v for k, v in own.items() if k.startswith(prefixes)}, **weights}


def prune_checkpoints(output_dir: Union[str, os.PathLike], keep_last: int) -> list[Path]:
    """Delete all but the ``keep_last`` latest ``checkpoint-<epoch>.pth`` (0 keeps all);
    ``checkpoint-best.pth`` is a separate file and always stays. Returns the deleted paths."""
    if keep_last <= 0:
        return []
    old = list_epoch_checkpoints(output_dir)[:-keep_last]
    for p in old:
        p.unlink(missing_ok=True)
    return old


def copy_checkpoint(src: Union[str, os.PathLike], dst: Union[str, os.PathLike]) -> None:
    """Atomic copy (used for ``checkpoint-best.pth``)."""
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def load_checkpoint(path: Union[str, os.PathLike], map_location: Any = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True`` (no arbitrary pickles); clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; check --resume / --checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt file, or a pickle holding more than weights
        raise CheckpointError(
            f"cannot load checkpoint {str(path)!r} with weights_only=True: {e}. "
            "If it is a trusted file saved with pickled objects, re-save its state_dict."
        ) from None


def load_model_weights(model: torch.nn.Module, state_dict: dict[str, Any], source: str = "checkpoint") -> None:
    """Strict load whose error lists the missing, unexpected and mis-shaped keys."""
    target = unwrap(model)
    own = target.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shape = [
        f"{k}: file {list(state_dict[k].shape)} vs model {list(own[k].shape)}"
        for k in own
        if k in state_dict and hasattr(state_dict[k], "shape") and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shape:

        def _fmt(title: str, keys: list[str]) -> str:
            more = f" ... and {len(keys) - 10} more" if len(keys) > 10 else ""
            return f"\n  {title} ({len(keys)}): " + ", ".join(keys[:10]) + more if keys else ""

        raise CheckpointError(
            f"{source} does not fit {type(target).__name__}:"
            + _fmt("missing keys", missing)
            + _fmt("unexpected keys", unexpected)
            + _fmt("shape mismatches", shape)
            + "\nCheck --model and its flags (they must match the ones used for training)."
        )
    target.load_state_dict(state_dict, strict=True)


def epoch_of(path: Union[str, os.PathLike]) -> int:
    """The epoch of a ``checkpoint-<epoch>.pth`` file name; -1 for any other name."""
    m = _EPOCH_RE.match(Path(path).name)
    return int(m.group(1)) if m else -1


def list_epoch_checkpoints(output_dir: Union[str, os.PathLike]) -> list[Path]:
    """``checkpoint-<epoch>.pth`` files sorted by epoch."""
    d = Path(output_dir)
    found = [(int(m.group(1)), p) for p in d.glob("checkpoint-*.pth") if (m := _EPOCH_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model itself, out of DistributedDataParallel (``.module``) and ``torch.compile``
    (``._orig_mod``): checkpoints hold the model's own key names either way."""
    while True:
        inner = getattr(model, "module", None) if hasattr(model, "module") else getattr(model, "_orig_mod", None)
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


def _plain(obj: Any) -> Any:
    """Make ``obj`` JSON/weights_only friendly (paths → str, tuples → lists)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


class ResumeState:
    """Where a (resumed) run starts: next epoch, optimizer steps so far, best score so far."""

    def __init__(self, start_epoch: int = 0, global_step: int = 0, best: Optional[dict[str, Any]] = None) -> None:
        self.start_epoch = start_epoch
        self.global_step = global_step
        self.best = dict(best or {})


def resume(
    resume_from: str,
    output_dir: Union[str, os.PathLike],
    model: torch.nn.Module,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scheduler: Any = None,
    scaler: Any = None,
) -> ResumeState:
    """Restore model, optimizer, schedule and AMP scaler from ``resume_from``.

    ``""`` starts fresh; ``"auto"`` takes the latest ``checkpoint-<epoch>.pth`` of
    ``output_dir`` (fresh when there is none).
    """
    if not resume_from:
        return ResumeState()
    if resume_from == "auto":
        found = list_epoch_checkpoints(output_dir)
        if not found:
            return ResumeState()
        resume_from = str(found[-1])
    state = load_checkpoint(resume_from)
    for key in ("model", "epoch"):
        if key not in state:
            raise CheckpointError(f"{resume_from} has no {key!r} entry; it is not an aigbench training checkpoint")
    load_model_weights(model, with_frozen_weights(model, state, resume_from), resume_from)
    if optimizer is not None and state.get("optimizer"):
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler"):
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") and scaler.is_enabled():
        scaler.load_state_dict(state["scaler"])
    epoch = int(state["epoch"])
    best = dict(state.get("best") or {})
    # An epoch checkpoint is saved before its validation; checkpoint-best.pth after it.
    best_file = Path(output_dir) / BEST_NAME
    if best_file.is_file():
        recorded = load_checkpoint(best_file).get("best") or {}
        if recorded.get("epoch") is not None and int(recorded["epoch"]) <= epoch:
            best = dict(recorded)
    log.info("resuming from %s: epoch %d done, continuing at epoch %d", resume_from, epoch, epoch + 1)
    return ResumeState(epoch + 1, int(state.get("global_step", 0)), best)


def load_weights_into(model: torch.nn.Module, path: Union[str, os.PathLike]) -> int:
    """Load a checkpoint's model weights (strict); returns its epoch (-1 if unknown).

    ``PRETRAINED`` keeps the weights the model was built with (``--pretrained_path``).
    """
    if str(path) == PRETRAINED:
        return -1
    state = load_checkpoint(path)
    load_model_weights(model, with_frozen_weights(model, state, str(path)), str(path))
    return int(state.get("epoch", -1)) if isinstance(state.get("epoch", -1), int) else -1


def resolve_checkpoints(output_dir: Union[str, os.PathLike], checkpoint: str = "") -> list[Path]:
    """The checkpoint(s) that ``--checkpoint`` names.

    * ``""`` or ``best``: ``checkpoint-best.pth`` (selected on validation), else the last epoch;
    * ``last``: the last epoch; ``N``: ``checkpoint-N.pth``;
    * ``all``: every epoch and ``checkpoint-best.pth`` (picking one from test numbers is
      selection on test: the summary says so);
    * ``pretrained``: the weights the model was built with (``--pretrained_path``);
    * a file name inside ``output_dir``, or a path.
    """
    out = Path(output_dir)
    spec = str(checkpoint).strip()
    if spec == PRETRAINED:
        return [Path(PRETRAINED)]
    epochs = list_epoch_checkpoints(out)
    best = out / BEST_NAME
    if spec in ("", "best", "last", ALL):
        if spec == ALL:
            found = epochs + ([best] if best.is_file() else [])
        elif spec != "last" and best.is_file():
            found = [best]
        else:
            found = epochs[-1:]
            if spec == "best":
                log.info("no %s in %s (no validation data): testing the last epoch", BEST_NAME, out)
        if not found:
            raise CheckpointError(
                f"no checkpoint-*.pth in {str(out)!r}; train first (sh train_mymodel.sh), or pass --output_dir of "
                "a run or --checkpoint PATH"
            )
        return found
    if spec.isdigit():
        p = out / f"checkpoint-{int(spec)}.pth"
        if not p.is_file():
            have = ", ".join(str(_EPOCH_RE.match(q.name).group(1)) for q in epochs) or "none"
            raise CheckpointError(f"--checkpoint {spec}: {p} does not exist (epochs saved: {have})")
        return [p]
    for p in (out / spec, Path(spec).expanduser()):
        if p.is_file():
            return [p]
    raise CheckpointError(
        f"--checkpoint {spec!r} is neither best, last, all, pretrained, an epoch number, a file in "
        f"{str(out)!r} nor an existing path"
    )


def checkpoints_to_test(output_dir: Union[str, os.PathLike], checkpoint: str = "") -> list[Path]:
    """Alias of :func:`resolve_checkpoints` (kept for scripts rendered by earlier versions)."""
    return resolve_checkpoints(output_dir, checkpoint)


def pick_checkpoint(output_dir: Union[str, os.PathLike], checkpoint: str = "") -> Path:
    """One checkpoint: ``--checkpoint`` when given, else best, else the last epoch."""
    found = resolve_checkpoints(output_dir, checkpoint)
    if len(found) > 1:
        raise CheckpointError("--checkpoint all tests several checkpoints; this command takes one")
    return found[0]


def improve_best(best: dict[str, Any], metric: str, value: float, epoch: int, **info: Any) -> bool:
    """Record ``value`` (and ``info``, e.g. the validation threshold) in ``best`` when it beats
    the best so far (NaN never does)."""
    if math.isnan(value) or (best.get("value") is not None and value <= best["value"]):
        return False
    best.clear()
    best.update({"metric": metric, "value": float(value), "epoch": int(epoch), **info})
    return True
