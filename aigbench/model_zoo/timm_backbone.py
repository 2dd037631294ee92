"""Any timm backbone with a single-logit head, frozen (``probe``) or fully trained (``tune``).

The two variants follow AI-GenBench (Pellegrini et al., 2025): *probe* keeps the backbone
frozen, in ``eval()`` mode and without gradients, and trains only the linear head; *tune*
trains everything.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from aigbench.engine.checkpoint import load_model_weights
from aigbench.model_zoo.base import BinaryDetector, read_state_dict
from aigbench.registry import MODELS


def timm_normalization(backbone: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean/std of a timm model's pretrained configuration (ImageNet's when unknown)."""
    from timm.models import get_pretrained_cfg

    from aigbench.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD

    cfg = get_pretrained_cfg(backbone)
    if cfg is None:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(cfg.mean), tuple(cfg.std)


def create_backbone(backbone: str, image_size: int, pretrained_path: str = "", **kwargs: Any) -> nn.Module:
    """A timm model without classifier (``num_classes=0``); never downloads.

    ``pretrained_path`` is a local file in timm, torchvision or original (e.g. OpenAI CLIP)
    format: the timm model family's own checkpoint filter converts it, the classifier is
    dropped, and the load is strict (missing, unexpected or mis-shaped keys are an error).
    """
    import sys

    import timm

    extra: dict[str, Any] = dict(kwargs)
    if _takes_img_size(backbone):
        extra["img_size"] = image_size
    model = timm.create_model(backbone, pretrained=False, num_classes=0, **extra)
    if pretrained_path:
        state = read_state_dict(pretrained_path)
        filter_fn = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
        if filter_fn is not None:
            state = filter_fn(state, model)
        own = model.state_dict()
        classifier = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or "fc"
        heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
        state = {k: v for k, v in state.items() if k in own or not k.startswith(tuple(f"{h}." for h in heads))}
        load_model_weights(model, state, f"--pretrained_path {pretrained_path} (timm {backbone})")
    return model


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
        self.backbone = create_backbone(backbone, image_size, pretrained_path, drop_rate=drop_rate)
        self.head = nn.Linear(self.backbone.num_features, 1)
        if mode == "probe":
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    @classmethod
    def normalization(cls, kwargs: dict[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return timm_normalization(kwargs.get("backbone", "resnet50"))

    def train(self, mode: bool = True) -> TimmDetector:
        super().train(mode)
        if self.mode == "probe":
            self.backbone.eval()  # frozen BatchNorm/Dropout stay in inference mode
        return self

    def features(self, image: torch.Tensor) -> torch.Tensor:
        if self.mode == "probe":
            with torch.no_grad():
                return self.backbone(image)
        return self.backbone(image)

    def forward(self, image: torch.Tensor, label: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.outputs(self.head(self.features(image)).squeeze(1), label)
