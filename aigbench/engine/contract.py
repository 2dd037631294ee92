"""The output-dict contract between a model and the framework, and its one validator.

``model.forward(image, label, **batch)`` returns::

    {
        "backward_loss": Tensor[]          scalar loss that training backpropagates
        "pred_label":    Tensor[B]         probability that each image is fake (real=0, fake=1), float32
        "visual_loss":   {name: scalar}    numbers plotted as curves (may be empty)
        "visual_image":  {name: Tensor}    images shown in TensorBoard, [B,C,H,W] or [C,H,W]
    }
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import torch

from aigbench.errors import AigbenchError

REQUIRED_KEYS = ("backward_loss", "pred_label", "visual_loss", "visual_image")


class OutputContractError(AigbenchError, ValueError):
    """The dict returned by ``forward`` breaks the contract."""


class NonFiniteLossError(AigbenchError, FloatingPointError):
    """Training produced a NaN or infinite loss; ``global_step`` counts the optimizer steps before it."""

    def __init__(self, message: str, global_step: int = 0) -> None:
        super().__init__(message)
        self.global_step = global_step


def _shape(t: Any) -> str:
    return str(list(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


def validate_output(output: Any, batch_size: int, model_name: str = "model") -> None:
    """Check ``output`` against the contract; raise ``OutputContractError`` naming the key.

    Called on the first batch of training and of evaluation, so the cost is paid once.
    """
    where = f"{model_name}.forward() output"
    if not isinstance(output, Mapping):
        raise OutputContractError(
            f"{where} must be a dict with keys {list(REQUIRED_KEYS)}, got {type(output).__name__}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in output]
    if missing:
        raise OutputContractError(
            f"{where} is missing key(s) {missing}; it must return all of {list(REQUIRED_KEYS)} "
            "(use {} for an empty visual_loss / visual_image)"
        )
    loss = output["backward_loss"]
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise OutputContractError(
            f"{where}['backward_loss'] must be a scalar tensor (shape []), got shape {_shape(loss)}; "
            "reduce it with .mean()"
        )
    pred = output["pred_label"]
    if not isinstance(pred, torch.Tensor) or tuple(pred.shape) != (batch_size,):
        hint = " (squeeze the last dimension)" if isinstance(pred, torch.Tensor) and pred.dim() == 2 else ""
        raise OutputContractError(
            f"{where}['pred_label'] must have shape [{batch_size}] (one probability of fake per image), "
            f"got shape {_shape(pred)}{hint}"
        )
    if not torch.is_floating_point(pred):
        raise OutputContractError(f"{where}['pred_label'] must be a float tensor of probabilities, got {pred.dtype}")
    if pred.dtype in (torch.float16, torch.bfloat16):
        raise OutputContractError(
            f"{where}['pred_label'] is {pred.dtype}; compute it in float32, e.g. torch.sigmoid(logit.float()): "
            "under autocast every logit above ~8.3 rounds to exactly 1.0 in float16, and the ties lower AUROC and AP"
        )
    with torch.no_grad():
        finite = pred[torch.isfinite(pred)]
        if finite.numel() and (finite.min() < 0 or finite.max() > 1):
            raise OutputContractError(
                f"{where}['pred_label'] must be probabilities in [0, 1], got values in "
                f"[{finite.min().item():.3g}, {finite.max().item():.3g}]; apply torch.sigmoid to logits"
            )
    vl = output["visual_loss"]
    if not isinstance(vl, Mapping):
        raise OutputContractError(f"{where}['visual_loss'] must be a dict of scalars, got {type(vl).__name__}")
    for k, v in vl.items():
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                raise OutputContractError(f"{where}['visual_loss'][{k!r}] must be a scalar, got shape {_shape(v)}")
        elif not isinstance(v, (int, float)):
            raise OutputContractError(
                f"{where}['visual_loss'][{k!r}] must be a number or scalar tensor, got {type(v).__name__}"
            )
    vi = output["visual_image"]
    if not isinstance(vi, Mapping):
        raise OutputContractError(f"{where}['visual_image'] must be a dict of image tensors, got {type(vi).__name__}")
    for k, v in vi.items():
        if not isinstance(v, torch.Tensor) or v.dim() not in (3, 4) or v.shape[-3] not in (1, 3):
            raise OutputContractError(
                f"{where}['visual_image'][{k!r}] must be a [B,C,H,W] or [C,H,W] tensor with C in (1, 3), "
                f"got shape {_shape(v)}"
            )


def scalar_dict(visual_loss: Mapping[str, Any]) -> dict[str, float]:
    """``visual_loss`` as plain floats."""
    return {k: float(v.detach().item()) if isinstance(v, torch.Tensor) else float(v) for k, v in visual_loss.items()}


def check_finite_loss(
    loss: torch.Tensor, where: str, global_step: int = 0, device: Optional[torch.device] = None
) -> None:
    """Raise :class:`NonFiniteLossError` (carrying ``global_step``) when ``loss`` is NaN or inf.
    With ``device`` and a process group, the check is collective: every rank raises when any
    rank's loss is non-finite, so that none is left waiting in the next collective."""
    value = float(loss.detach().item())
    here = not math.isfinite(value)
    bad = here
    if device is not None:
        from aigbench.engine.dist import any_rank

        bad = any_rank(here, device)
    if bad:
        what = f"backward_loss is {value}" if here else "backward_loss was non-finite on another process"
        raise NonFiniteLossError(
            f"{what} at {where}. Lower --lr, check the inputs and the loss "
            "(log of 0? division by 0?), or disable --amp; resume from the last checkpoint with --resume.",
            global_step,
        )
