"""The output-dict contract between a model and the framework, and its one validator.

``model.forward(image, label, **batch)`` returns::

    {
        "backward_loss": Tensor[]          scalar loss that training backpropagates
        "pred_label":    Tensor[B]         probability that each image is fake (real=0, fake=1), float32
        "visual_loss":   {name: scalar}    numbers plotted as curves (may be empty)
        "visual_image":  {name: Tensor}    images shown in TensorBoard, [B,C,H,W] or [C,H,W]
    }

The call itself is ``model(image, label, path=..., generator=..., index=...)`` (and
``features_precomputed=True`` under ``--cache_features``): :func:`check_forward_signature`
checks, when the model is built, that ``forward`` can take it.
"""

from __future__ import annotations

import inspect
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


class ForwardSignatureError(AigbenchError, TypeError):
    """``forward`` has parameters that the framework cannot fill."""


# What the training and evaluation loops pass to forward (aigbench.engine.loop._forward): the
# image batch and the labels by position, then these keywords.
FORWARD_POSITIONAL = ("image", "label")
FORWARD_KEYWORDS = ("path", "generator", "index")
LABEL_NAMES = ("label", "labels")
FORWARD_EXAMPLE = "def forward(self, image, label, *args, **kwargs)"
FORWARD_CALL = "forward(image, label, path=..., generator=..., index=...)"


def _forward_of(model: Any) -> tuple[str, Any, bool]:
    """(class name, ``forward``, whether its first parameter is ``self``) of a model class or
    instance, unwrapping DistributedDataParallel (``.module``) and ``torch.compile`` (``._orig_mod``)."""
    for attr in ("module", "_orig_mod"):
        inner = getattr(model, attr, None)
        if isinstance(inner, torch.nn.Module):
            model = inner
    cls = model if isinstance(model, type) else type(model)
    forward = getattr(model, "forward", None)
    return cls.__name__, forward, isinstance(model, type) and inspect.isfunction(forward)


def check_forward_signature(model: Any) -> None:
    """Check that ``model.forward`` (a model class or instance) can take the framework's call,
    ``forward(image, label, path=..., generator=..., index=...)``; raise
    :class:`ForwardSignatureError` naming the parameter it cannot fill.

    Called when the model is built (and by the scripts' flag parsing, before any data is read),
    so that an IMDL-BenCo-style ``forward(image, mask, label)`` stops with a message about
    ``mask`` instead of a TypeError about ``label`` at the first batch.
    """
    name, forward, unbound = _forward_of(model)
    if forward is None or getattr(forward, "__func__", forward) is torch.nn.Module.forward:
        raise ForwardSignatureError(f"{name} defines no forward(); write {FORWARD_EXAMPLE}")
    try:
        params = list(inspect.signature(forward).parameters.values())
    except (TypeError, ValueError):  # a builtin or C-implemented forward: nothing to read
        return
    if unbound:
        params = params[1:]  # self
    names = {p.name for p in params}
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var_positional = any(p.kind == p.VAR_POSITIONAL for p in params)
    var_keyword = any(p.kind == p.VAR_KEYWORD for p in params)
    shown = ", ".join(
        ("*" if p.kind == p.VAR_POSITIONAL else "**" if p.kind == p.VAR_KEYWORD else "") + p.name for p in params
    )
    where = f"{name}.forward({shown})"
    usage = f"aigbench calls {FORWARD_CALL}: the image batch [B,3,H,W], the labels [B] (real=0, fake=1)"
    if len(positional) < 2 and not var_positional:
        raise ForwardSignatureError(
            f"{where} takes {len(positional)} positional argument(s); {usage}. Write {FORWARD_EXAMPLE}"
        )
    second = positional[1] if len(positional) >= 2 else None
    label_param = next((p for p in params if p.name in LABEL_NAMES and p is not second), None)
    if second is not None and (label_param is not None or "mask" in second.name.lower()):
        raise ForwardSignatureError(
            f"{where}: aigbench cannot fill its parameter {second.name!r}. {usage}, so the labels would land "
            f"in {second.name!r}"
            + (f" and {label_param.name!r} would get nothing" if label_param is not None else "")
            + ". aigbench's data carries one label per image and no masks (IMDL-BenCo's masks and edge masks "
            f"have no counterpart here): remove {second.name!r}, e.g. {FORWARD_EXAMPLE}"
        )
    missing = [kw for kw in FORWARD_KEYWORDS if kw not in names]
    if missing and not var_keyword:
        raise ForwardSignatureError(
            f"{where} takes no keyword argument {missing[0]!r}; {usage}. Add **kwargs: {FORWARD_EXAMPLE}"
        )
    filled = {p.name for p in positional[:2]} | set(FORWARD_KEYWORDS)
    unfilled = [
        p.name
        for p in params
        if p.name not in filled and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if unfilled:
        raise ForwardSignatureError(
            f"{where}: aigbench cannot fill its parameter {unfilled[0]!r} (required, no default). {usage}; "
            f"give {unfilled[0]!r} a default or remove it, e.g. {FORWARD_EXAMPLE}"
        )


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
