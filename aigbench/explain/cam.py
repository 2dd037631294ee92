"""Class-activation maps of any aigbench model, with pytorch-grad-cam, and the two checks that
say whether a map explains the model.

* The model is scored as the framework scores it: :class:`ScoreHead` calls
  ``model(image, label, ...)`` and returns the logit of ``pred_label`` (the score of "fake"),
  which the CAM methods explain (``BinaryClassifierOutputTarget(1)``).
* The target layer: ``--target_layer NAME`` when given; else the model's declaration
  (``cam_target_layer``, beside its ``preprocess``); else, for a model with a timm
  VisionTransformer inside, its last block's ``norm1`` (pytorch-grad-cam's advice for ViTs);
  else the last convolution or normalisation layer whose output is still a spatial map (the
  layer before pooling). ViT token outputs ``[B, N, C]`` are reshaped to ``[B, C, h, w]`` after
  dropping the class and register tokens (:class:`TokenGrid`).
* **Model randomisation** (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"): the map is
  computed again with the target layer and every layer that runs after it re-initialised as at
  construction (seeded); the Spearman rank correlation between the two maps is reported per
  image, and a map that barely changes (correlation above ``max_rank_correlation``, 0.5 by
  default) does not explain the trained model: a randomly initialised network would draw it too.
  The check is made for trained models: the Grad-CAM maps of an untrained one change as much as
  any under re-initialisation (its head is random both times), and ROAD is what flags them.
* **Faithfulness**: ROAD (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for
  Attribution Methods"), ``pytorch_grad_cam.metrics.road.ROADCombined``: the mean change of the
  fake probability when the least relevant pixels are removed, minus that when the most
  relevant are, halved, over the given percentiles. A map whose removal order does not move
  the score (``|ROAD| < min_road``) is flagged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from aigbench.errors import ConfigError

METHODS = ("gradcam", "gradcam++", "scorecam", "layercam", "eigencam")
MAX_RANK_CORRELATION = 0.5  # randomisation check: a map that correlates more is not the model's
MIN_ROAD = 0.005  # faithfulness: a ROAD score smaller than this (probability units) does not move the score
ROAD_PERCENTILES = (20, 40, 60, 80)
INSTALL = 'pip install -e ".[explain]" (the grad-cam package, pytorch-grad-cam)'


def cam_class(method: str) -> type:
    """The pytorch-grad-cam class of ``method`` (one of :data:`METHODS`)."""
    if method not in METHODS:
        raise ConfigError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    try:
        import pytorch_grad_cam as pgc
    except ImportError:
        raise ConfigError(f"bench explain needs pytorch-grad-cam: {INSTALL}") from None
    return {
        "gradcam": pgc.GradCAM,
        "gradcam++": pgc.GradCAMPlusPlus,
        "scorecam": pgc.ScoreCAM,
        "layercam": pgc.LayerCAM,
        "eigencam": pgc.EigenCAM,
    }[method]


class ScoreHead(nn.Module):
    """``x -> [B, 1]``: the logit of the model's fake score, through its own forward and output dict."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        label = torch.zeros(n, dtype=torch.float32, device=x.device)
        out = self.model(x, label, path=[""] * n, generator=[""] * n, index=torch.arange(n, device=x.device))
        p = out["pred_label"].float().reshape(n, -1)[:, :1].clamp(1e-7, 1 - 1e-7)
        return torch.log(p) - torch.log1p(-p)


class FakeProbability:
    """The fake probability of one output row of :class:`ScoreHead` (ROAD's target)."""

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output.reshape(-1)[0])


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule at dotted ``name``; an integer part indexes a Sequential/ModuleList and may
    be negative (``encoder.blocks.-1.norm1``)."""
    module = model
    for part in name.split("."):
        if (
            part.lstrip("-").isdigit()
            and isinstance(module, (nn.Sequential, nn.ModuleList))
            and (-len(module) <= int(part) < len(module))
        ):
            module = module[int(part)]
        elif hasattr(module, part) and isinstance(getattr(module, part), nn.Module):
            module = getattr(module, part)
        else:
            names = [n for n, _ in model.named_modules() if n][-12:]
            raise ConfigError(
                f"--target_layer {name!r}: {type(model).__name__} has no submodule {part!r} there; its last "
                f"module names are: {', '.join(names)}"
            )
    return module


def canonical_name(model: nn.Module, module: nn.Module) -> str:
    return next((n for n, m in model.named_modules() if m is module), "")


def find_vit(model: nn.Module) -> Optional[nn.Module]:
    """The first timm VisionTransformer-like module inside ``model`` (``patch_embed`` and ``blocks``)."""
    for m in model.modules():
        if hasattr(m, "patch_embed") and isinstance(getattr(m, "blocks", None), (nn.Sequential, nn.ModuleList)):
            return m
    return None


class TokenGrid:
    """ViT tokens ``[B, N, C]`` -> ``[B, C, h, w]``: the first ``prefix`` tokens (class and
    registers) dropped, the rest laid out on the ``h x w`` patch grid."""

    def __init__(self, prefix: int, grid: tuple[int, int]) -> None:
        self.prefix, self.grid = prefix, grid

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if t.dim() != 3:
            return t
        h, w = self.grid
        tokens = t[:, self.prefix :, :]
        if tokens.shape[1] != h * w:
            raise ConfigError(
                f"the target layer gives {t.shape[1]} tokens; {self.prefix} prefix token(s) and a {h}x{w} patch "
                "grid were expected: pass another --target_layer"
            )
        return tokens.reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)


def vit_grid(vit: nn.Module, x: torch.Tensor) -> TokenGrid:
    """The token layout of ``vit`` for input ``x``: its prefix tokens and its patch grid."""
    patch = getattr(vit.patch_embed, "patch_size", (16, 16))
    ph, pw = (patch, patch) if isinstance(patch, int) else tuple(patch)
    prefix = int(getattr(vit, "num_prefix_tokens", 1))
    return TokenGrid(prefix, (x.shape[-2] // ph, x.shape[-1] // pw))


def _execution_order(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module, Any]]:
    """``(name, module, output)`` of every module in the order their forward finished, from one
    forward of ``x`` without gradients."""
    return _trace(model, x)[1]


def _trace(model: nn.Module, x: torch.Tensor) -> tuple[list[str], list[tuple[str, nn.Module, Any]]]:
    """The names of the modules in the order their forward started, and ``(name, module,
    output)`` in the order it finished, from one forward of ``x`` without gradients."""
    started: list[str] = []
    finished: list[tuple[str, nn.Module, Any]] = []
    names = {m: n for n, m in model.named_modules()}
    hooks = []
    for m in model.modules():
        if m is not model:
            hooks.append(m.register_forward_pre_hook(lambda mod, i: started.append(names[mod])))
            hooks.append(m.register_forward_hook(lambda mod, i, out: finished.append((names[mod], mod, out))))
    try:
        with torch.no_grad():
            ScoreHead(model)(x)
    finally:
        for h in hooks:
            h.remove()
    return started, finished


_SPATIAL = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


@dataclass
class Target:
    """The layer a map is computed at, its name, whether it gives ViT tokens and where the choice
    came from ("--target_layer", "declared by <Model>", "default: ...")."""

    name: str
    module: nn.Module
    tokens: bool
    source: str


def reshape_for(model: nn.Module, target: Target, x: torch.Tensor) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """How the target layer's output for input ``x`` becomes ``[B, C, h, w]`` over the whole
    input: the model's own ``cam_reshape(output, (H, W))`` when it declares one (B-Free's five
    crops of the patch grid), the ViT token grid for tokens, else nothing."""
    custom = getattr(model, "cam_reshape", None)
    if custom is not None:
        return lambda t: custom(t, tuple(x.shape[-2:]))
    if not target.tokens:
        return None
    vit = find_vit(model)
    if vit is None:
        raise ConfigError(
            f"target layer {target.name!r} gives tokens [B, N, C] but the model holds no ViT to lay them out"
        )
    return vit_grid(vit, x)


def resolve_target(model: nn.Module, x: torch.Tensor, target_layer: str = "") -> Target:
    """The target layer of ``model`` for input ``x`` (see the module docstring)."""
    vit = find_vit(model)
    declared = getattr(model, "cam_target_layer", None)
    if target_layer:
        name, source = target_layer, "--target_layer"
    elif declared:
        name, source = declared, f"declared by {type(model).__name__}"
    elif vit is not None and len(vit.blocks):
        last = vit.blocks[-1]
        module = getattr(last, "norm1", last)
        return Target(canonical_name(model, module), module, True, "default: the last ViT block's norm1")
    else:
        spatial = [
            (n, m)
            for n, m, out in _execution_order(model, x)
            if isinstance(m, _SPATIAL) and isinstance(out, torch.Tensor) and out.dim() == 4 and min(out.shape[-2:]) > 1
        ]
        if not spatial:
            raise ConfigError(
                f"{type(model).__name__} has no convolution or normalisation layer with a spatial output, which a "
                "class-activation map needs: pass --target_layer NAME (a module whose output is [B, C, H, W], or "
                "ViT tokens [B, N, C])"
            )
        name, module = spatial[-1]
        return Target(name, module, False, "default: the last convolution or norm layer before pooling")
    module = get_module(model, name)
    outputs = [out for _, m, out in _execution_order(model, x) if m is module]
    if not outputs or not isinstance(outputs[-1], torch.Tensor):
        raise ConfigError(f"target layer {name!r} ({source}) does not run in {type(model).__name__}'s forward")
    return Target(canonical_name(model, module) or name, module, outputs[-1].dim() == 3, source)


def explainable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode whose frozen backbone (if any) lets gradients through, as
    gradient-based maps need; the weights are those of ``model``."""
    model = copy.deepcopy(model).eval()
    for m in model.modules():
        if hasattr(m, "grads_through_frozen"):
            m.grads_through_frozen = True
    return model


def compute_maps(model: nn.Module, x: torch.Tensor, target: Target, method: str) -> np.ndarray:
    """``[B, H, W]`` float32 maps in [0, 1] (each normalised by its maximum) of the fake score of
    the inputs ``x`` (the normalised tensors the model scores), at the input's resolution."""
    from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

    head = ScoreHead(model)
    reshape = reshape_for(model, target, x)
    with cam_class(method)(model=head, target_layers=[target.module], reshape_transform=reshape) as cam:
        maps = cam(input_tensor=x, targets=[BinaryClassifierOutputTarget(1)] * x.shape[0])
    return np.nan_to_num(np.asarray(maps, dtype=np.float32))


def randomised(model: nn.Module, x: torch.Tensor, target: Target, seed: int = 0) -> tuple[nn.Module, Target]:
    """A copy of ``model`` whose target layer and every module that runs after it (cascading
    randomisation from the output down to the target layer) are re-initialised as when the model
    was built (``reset_parameters()``, normalisation statistics reset; parameters of modules
    without one drawn from a normal of variance 1/fan-in), seeded without touching the global
    random state; with the target layer in that copy. The layers below the target keep their weights."""
    started, _ = _trace(model, x)
    name = canonical_name(model, target.module)
    at = max(k for k, n in enumerate(started) if n == name)
    later = set(started[at:])  # the target, what it calls, and every module that starts after it
    later |= {n for n, _ in model.named_modules() if any(n.startswith(f"{t}.") for t in later)}
    copy_ = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module_name, module in copy_.named_modules():
            if module_name not in later:
                continue
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()  # BatchNorm's also resets its running statistics
                continue
            with torch.no_grad():
                for p in module.parameters(recurse=False):
                    fan_in = int(np.prod(p.shape[1:])) if p.dim() > 1 else p.numel()
                    p.copy_(torch.randn_like(p) / max(fan_in, 1) ** 0.5)
    module = get_module(copy_, target.name) if target.name else target.module
    return copy_, Target(target.name, module, target.tokens, target.source)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (0 when one is constant)."""
    from scipy.stats import spearmanr

    a, b = a.reshape(-1), b.reshape(-1)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b)[0])


def road_scores(
    model: nn.Module, x: torch.Tensor, maps: np.ndarray, percentiles: Sequence[int] = ROAD_PERCENTILES
) -> np.ndarray:
    """ROAD of each map (:class:`pytorch_grad_cam.metrics.road.ROADCombined`), in units of the fake
    probability: positive when removing the most relevant pixels moves the score more than
    removing the least relevant."""
    from pytorch_grad_cam.metrics.road import ROADCombined

    head = ScoreHead(model)
    scores = ROADCombined(percentiles=list(percentiles))(x, maps, [FakeProbability()] * x.shape[0], head)
    return np.asarray(scores, dtype=np.float64).reshape(-1)
