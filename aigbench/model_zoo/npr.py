"""NPR: Tan, Zhao, Wei, Gu, Liu, Wei. "Rethinking the Up-Sampling Operations in CNN-based
Generative Network for Generalizable Deepfake Detection". CVPR 2024. Official code:
github.com/chuangchuangtan/NPR-DeepfakeDetection.

The neighbouring-pixel residual ``NPR = x - up(down(x))`` (nearest down/up-sampling by 2)
scaled by 2/3 feeds a truncated ResNet-50: a 3x3 stride-2 stem, max-pool, ``layer1`` and
``layer2`` (Bottleneck, 3 and 4 blocks), global average pooling and ``fc1`` (512 → 1).

Weights (``--pretrained_path``): the official ``NPR.pth``, a plain state dict with keys
``conv1.weight`` [64, 3, 3, 3], ``bn1.*``, ``layer1.*``, ``layer2.*``, ``fc1.weight`` [1, 512],
``fc1.bias`` [1], loaded strictly.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aigbench.datasets.preprocess import Preprocess
from aigbench.engine.checkpoint import load_model_weights
from aigbench.errors import ConfigError
from aigbench.model_zoo.base import (
    BinaryDetector,
    PublishedWeights,
    bottleneck_layer,
    init_resnet_,
    read_state_dict,
)
from aigbench.registry import MODELS


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """``x - up(down(x))`` with nearest-neighbour resampling by a factor 2 (H, W even)."""
    if x.shape[-1] % 2 or x.shape[-2] % 2:
        raise ConfigError(f"NPR needs an even image size, got {list(x.shape[-2:])}; use an even --image_size")
    down = F.interpolate(x, scale_factor=0.5, mode="nearest", recompute_scale_factor=True)
    return x - F.interpolate(down, scale_factor=2.0, mode="nearest", recompute_scale_factor=True)


class NPRResNet(nn.Module):
    """The paper's truncated ResNet-50 (official key names)."""

    def __init__(self, layers: tuple[int, int] = (3, 4)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = bottleneck_layer(64, 64, layers[0])
        self.layer2 = bottleneck_layer(256, 128, layers[1], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(512, 1)
        init_resnet_(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        npr = npr_residual(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(npr * 2.0 / 3.0))))
        x = self.layer2(self.layer1(x))
        return self.fc1(torch.flatten(self.avgpool(x), 1)).squeeze(1), npr


@MODELS.register_module()
class NPR(BinaryDetector):
    """Neighbouring-pixel residuals into a truncated ResNet-50."""

    paper = "Tan et al., Rethinking the Up-Sampling Operations in CNN-based Generative Network..., CVPR 2024"
    checkpoints = (
        PublishedWeights(
            "NPR.pth",
            "--pretrained_path NPR.pth",
            "https://github.com/chuangchuangtan/NPR-DeepfakeDetection (NPR.pth in the repository root)",
            note="{'model': state dict with 'module.' prefixes}, about 17 MB; trained on 4 ProGAN classes",
        ),
    )
    # the official code: ImageNet normalization, random (train) / centre (test) 224 crops
    preprocess = Preprocess(224, resize_mode="crop")
    cam_target_layer = "net.layer2"  # bench explain: the truncated ResNet's last stage, before pooling

    def __init__(self, pretrained_path: str = "") -> None:
        super().__init__()
        self.net = NPRResNet()
        if pretrained_path:
            load_model_weights(self.net, read_state_dict(pretrained_path), f"--pretrained_path {pretrained_path}")
        self.pretrained = bool(pretrained_path)

    def forward(self, image: torch.Tensor, label: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, Any]:
        logit, npr = self.net(image)
        return self.outputs(logit, label, {"npr": npr[:8].detach().abs()})
