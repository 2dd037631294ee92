"""Exact fused evaluation: each BatchNorm folded into the convolution before it.

At evaluation a BatchNorm is an affine map per channel, which folds into the weights and bias of
the convolution that feeds it: one layer instead of two, the same function. :func:`fused_for_eval`
returns a fused *copy* in eval mode (the model given is not changed): each submodule whose
forward torch.fx can trace (``torch.fx.symbolic_trace``; one that cannot, for its control flow, is
left as it is and its children are tried) goes through ``torch.fx.experimental.optimization.fuse``,
which folds a convolution into the BatchNorm that follows it only where the convolution's output
feeds nothing else (the fold is exact there). The top model is never traced: its forward takes
the batch's keywords and returns the output dict.

The copy is checked against the model on a probe batch; when the fake scores differ by more than
:data:`MAX_SCORE_DIFF`, or the fused copy fails, the model is evaluated unfused and the reason
recorded. ``--no_fuse`` turns it off, and an evaluation of fewer than :data:`MIN_PIXELS` input pixels in
all (32 images at 224 x 224) runs unfused (the fold costs a copy, a trace and a check);
``metrics.json`` records what was done (``model_fusion``).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import nn

log = logging.getLogger("aigbench")

MAX_SCORE_DIFF = 1e-6
MIN_PIXELS = 32 * 224 * 224  # smaller evaluations (images x input pixels) run unfused: the fold costs more


def worth_fusing(n_images: int, side: int) -> bool:
    """Whether an evaluation of ``n_images`` inputs of ``side`` x ``side`` pixels gains from the fold
    (a copy, a trace and a check: about as long as scoring a few dozen 224-pixel images)."""
    return n_images * side * side >= MIN_PIXELS


_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _count_bn(module: nn.Module) -> int:
    return sum(isinstance(m, _BN) for m in module.modules())


def _fuse_children(module: nn.Module) -> int:
    """Fold conv + BN in the children of ``module`` (in place on this copy); returns how many."""
    from torch.fx.experimental.optimization import fuse

    folded = 0
    for name, child in list(module.named_children()):
        before = _count_bn(child)
        if not before:
            continue
        try:
            fused = fuse(child, inplace=False)
        except Exception:  # not traceable (control flow, keywords, ...): try its children  # noqa: BLE001
            folded += _fuse_children(child)
            continue
        after = _count_bn(fused)
        if after < before:
            setattr(module, name, fused)
            folded += before - after
    return folded


def fused_for_eval(model: nn.Module, probe: torch.Tensor) -> tuple[nn.Module, dict[str, Any]]:
    """A copy of ``model`` in eval mode with its BatchNorms folded where exact, and what was done:
    ``{"fused": bool, "batchnorms_folded": n, "max_score_diff": d, "note": ...}``. ``probe`` is a
    batch of model inputs (two images suffice) on the model's device; the model itself is returned
    (with ``fused`` False) when nothing folds, or when the fused copy does not give its scores."""
    original = model
    if _count_bn(model) == 0:
        return original, {"fused": False, "batchnorms_folded": 0, "note": "no BatchNorm"}
    was_training = model.training
    model.eval()
    try:
        fused = copy.deepcopy(model)
        folded = _fuse_children(fused)
        if not folded:
            return original, {"fused": False, "batchnorms_folded": 0, "note": "no convolution + BatchNorm to fold"}
        diff = _score_diff(model, fused, probe)
    except Exception as e:  # noqa: BLE001  the model is evaluated as it is
        return original, {"fused": False, "batchnorms_folded": 0, "note": f"fusion failed: {type(e).__name__}: {e}"}
    finally:
        model.train(was_training)
    if not diff <= MAX_SCORE_DIFF:
        return original, {
            "fused": False,
            "batchnorms_folded": 0,
            "note": f"fused scores differ by {diff:.2e} > {MAX_SCORE_DIFF:g}: evaluated unfused",
        }
    return fused.eval(), {"fused": True, "batchnorms_folded": folded, "max_score_diff": float(diff)}


@torch.inference_mode()
def _score_diff(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    n = x.shape[0]
    kwargs = {"path": [""] * n, "generator": [""] * n, "index": torch.arange(n, device=x.device)}
    label = torch.zeros(n, device=x.device)
    sa = a(x, label, **kwargs)["pred_label"].float()
    sb = b(x, label, **kwargs)["pred_label"].float()
    return float((sa - sb).abs().max())
