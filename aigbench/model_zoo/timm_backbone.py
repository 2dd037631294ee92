"""Any timm backbone with a single-logit head, frozen (``probe``) or fully trained (``tune``).

The two variants follow AI-GenBench (Pellegrini et al., 2025): *probe* keeps the backbone
frozen, in ``eval()`` mode and without gradients, and trains only the linear head; *tune*
trains everything.

OpenAI's CLIP ViTs use QuickGELU (``x * sigmoid(1.702 x)``), timm's ``vit_*_clip_*`` models
GELU. A backbone named with the ``openai`` tag (``vit_base_patch16_clip_224.openai``) is therefore
built as timm's QuickGELU twin (``vit_base_patch16_clip_quickgelu_224.openai``), so that OpenAI's
weights compute OpenAI's features.

Nothing is downloaded: without ``--pretrained_path`` the backbone is random, and a warning says
so: a ``probe`` run on it measures random features, a ``tune`` run trains from scratch.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, Optional

import torch
from torch import nn

from aigbench.datasets.preprocess import Preprocess
from aigbench.engine.checkpoint import load_model_weights
from aigbench.model_zoo.base import BinaryDetector, read_state_dict, weights_identity
from aigbench.registry import MODELS


def timm_preprocess(backbone: str, image_size: Optional[int] = None) -> Preprocess:
    """The preprocessing of a timm model's pretrained configuration (``pretrained_cfg``: input
    size, mean, std, interpolation, crop percentage); ImageNet's defaults when timm has none."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(backbone)
    if cfg is None:
        return Preprocess(input_size=image_size or 224)
    return Preprocess(
        input_size=image_size or int(cfg.input_size[-1]),
        mean=tuple(cfg.mean),
        std=tuple(cfg.std),
        interpolation=cfg.interpolation if cfg.interpolation in ("bilinear", "bicubic", "nearest") else "bilinear",
        resize_mode="resize",
        crop_pct=float(cfg.crop_pct or 1.0),
    )


def openai_clip_quickgelu_name(backbone: str) -> str:
    """timm's QuickGELU twin of an OpenAI CLIP ViT (``vit_*_clip_*`` with tag ``openai``), else ``backbone``."""
    import timm

    arch, _, tag = backbone.partition(".")
    if tag != "openai" or not arch.startswith("vit_") or "_clip_" not in arch or "_clip_quickgelu_" in arch:
        return backbone
    twin = arch.replace("_clip_", "_clip_quickgelu_", 1)
    if not timm.is_model(twin):
        logging.getLogger("aigbench").warning(
            "--backbone %s: OpenAI CLIP uses QuickGELU but timm has no %s; building the GELU model, "
            "whose features differ from OpenAI's",
            backbone,
            twin,
        )
        return backbone
    return f"{twin}.{tag}"


def create_backbone(
    backbone: str,
    image_size: int,
    pretrained_path: str = "",
    num_classes: int = 0,
    state: Optional[dict[str, torch.Tensor]] = None,
    fresh_head: bool = False,
    flag: str = "--pretrained_path",
    **kwargs: Any,
) -> nn.Module:
    """A timm model without classifier (``num_classes=0``) or with timm's own head of
    ``num_classes`` outputs (CLIP's projection: 768 for ViT-L/14, 1024 for RN50); never downloads.

    ``pretrained_path`` is a local file in timm, torchvision or original (e.g. OpenAI CLIP)
    format (``state``: its tensors, already read and converted by the caller): the timm model
    family's own checkpoint filter converts it, an unused classifier is dropped, and the load is
    strict (missing, unexpected or mis-shaped keys are an error). ``fresh_head``: the model's
    head of ``num_classes`` is new (DRCT's 1024-d embedding): a file's head of another size is
    dropped and the new one keeps its init; otherwise a head of ``num_classes`` is part of the
    weights (CLIP's projection) and must be in the file. An OpenAI CLIP ViT (tag ``openai``) is
    built with QuickGELU (:func:`openai_clip_quickgelu_name`). ``flag`` names the weights in errors.
    """
    import sys

    import timm

    name = openai_clip_quickgelu_name(backbone)
    if name != backbone:
        logging.getLogger("aigbench").info(
            "--backbone %s: OpenAI CLIP uses QuickGELU, building timm's %s", backbone, name
        )
    backbone = name
    extra: dict[str, Any] = dict(kwargs)
    if _takes_img_size(backbone):
        extra["img_size"] = image_size
    model = timm.create_model(backbone, pretrained=False, num_classes=num_classes, **extra)
    if pretrained_path:
        state = read_state_dict(pretrained_path, flag) if state is None else state
        filter_fn = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
        if filter_fn is not None:
            state = filter_fn(state, model)
        own = model.state_dict()
        classifier = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or "fc"
        heads = tuple(f"{h}." for h in ((classifier,) if isinstance(classifier, str) else classifier))
        if num_classes == 0 or fresh_head:  # the file's classifier is not this model's head
            state = {k: v for k, v in state.items() if not k.startswith(heads)}
            state.update({k: v for k, v in own.items() if k.startswith(heads)})  # the new head keeps its init
        load_model_weights(model, state, f"{flag} {pretrained_path} (timm {backbone})")
    return model


def warn_random_backbone(who: str, mode: str, backbone: str, weights: str) -> None:
    """Warn that a backbone built without ``--pretrained_path`` has random weights (nothing is
    downloaded): a probe then measures random features, and tuning it is training from scratch."""
    if mode == "probe":
        what = f"probes RANDOM features of {backbone}"
    else:
        what = f"starts {backbone} from random weights: training it is training from scratch, not fine-tuning"
    logging.getLogger("aigbench").warning(
        "%s without --pretrained_path %s (nothing is downloaded); pass --pretrained_path %s to start from "
        "pretrained backbone weights",
        who,
        what,
        weights,
    )


def _takes_img_size(backbone: str) -> bool:
    name = backbone.split(".")[0]
    return any(name.startswith(p) for p in ("vit_", "deit", "beit", "eva", "swin", "cait", "xcit", "flexivit"))


@MODELS.register_module()
class TimmDetector(BinaryDetector):
    """Any timm backbone (--backbone) with a single-logit linear head; --mode probe or tune."""

    paper = "timm (Wightman 2019); probe/tune protocol of AI-GenBench (Pellegrini et al. 2025)"

    def __init__(
        self,
        backbone: str = "resnet50",
        mode: Literal["probe", "tune"] = "tune",
        pretrained_path: str = "",
        image_size: int = 224,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.mode = mode
        self.frozen = mode == "probe"
        self.backbone = create_backbone(backbone, image_size, pretrained_path, drop_rate=drop_rate)
        # identity of the frozen weights, read once from the file the backbone is built from
        self._frozen_identity = (
            {"backbone": backbone, **weights_identity(pretrained_path)} if mode == "probe" and pretrained_path else None
        )
        self.pretrained = bool(pretrained_path)
        if not self.pretrained:
            warn_random_backbone(self.run_name(), mode, backbone, "<weights file>")
        # timm: pre-logits width (mobilenetv3 and others have a head projection beyond num_features)
        self.head = nn.Linear(getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features, 1)
        if mode == "probe":
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def run_name(self) -> str:
        """How warnings name this model: ``TimmDetector --mode probe``."""
        return f"TimmDetector --mode {self.mode}"

    @classmethod
    def preprocess_cfg(cls, kwargs: dict[str, Any]) -> Preprocess:
        """timm's ``pretrained_cfg`` of ``--backbone`` (mean, std, input size, interpolation, crop)."""
        return timm_preprocess(kwargs.get("backbone") or "resnet50")

    def forward_head(self, features: torch.Tensor, label: torch.Tensor) -> dict[str, Any]:
        return self.outputs(self.head(features).squeeze(1), label)
