"""CNNSpot: Wang, Wang, Zhang, Owens, Efros. "CNN-generated images are surprisingly easy to
spot... for now". CVPR 2020. Official code: github.com/PeterWang512/CNNDetection.

A ResNet-50 (torchvision layout) with a single-logit ``fc`` (2048 → 1), trained with the
blur + JPEG augmentation (``--aug_blur_prob/--aug_jpeg_prob 0.5`` or ``0.1``; see
:mod:`aigbench.datasets.augment`).

Weights (``--pretrained_path``, local files only):

* the official checkpoints (``blur_jpg_prob0.5.pth``, ``blur_jpg_prob0.1.pth``):
  ``{"model": {"conv1.weight", "bn1.*", "layer1.0.conv1.weight", ..., "fc.weight" [1, 2048],
  "fc.bias" [1]}, ...}``, loaded strictly;
* ImageNet ResNet-50 weights in torchvision or timm layout (``fc`` of 1000 classes): every
  tensor but ``fc`` is loaded, strictly, and ``fc`` starts fresh.
"""

from __future__ import annotations

from typing import Any

import torch

from aigbench.datasets.preprocess import Preprocess
from aigbench.engine.checkpoint import load_model_weights
from aigbench.model_zoo.base import BinaryDetector, PublishedWeights, read_state_dict
from aigbench.registry import MODELS


def load_resnet_weights(net: torch.nn.Module, path: str, head: str = "fc") -> None:
    """Strictly load a ResNet state dict; a classifier ``head`` of another size is left fresh."""
    state = read_state_dict(path)
    own = net.state_dict()
    w = state.get(f"{head}.weight")
    if w is not None and tuple(w.shape) != tuple(own[f"{head}.weight"].shape):
        state = {k: v for k, v in state.items() if not k.startswith(f"{head}.")}
        state.update({k: v for k, v in own.items() if k.startswith(f"{head}.")})
    load_model_weights(net, state, f"--pretrained_path {path}")


@MODELS.register_module()
class CNNSpot(BinaryDetector):
    """ResNet-50 with a single logit, trained with blur+JPEG augmentation."""

    paper = "Wang et al., CNN-generated images are surprisingly easy to spot... for now, CVPR 2020"
    checkpoints = (
        PublishedWeights(
            "blur_jpg_prob0.5.pth",
            "--pretrained_path blur_jpg_prob0.5.pth",
            "https://www.dropbox.com/s/2g2jagq2jn1fd0i/blur_jpg_prob0.5.pth (CNNDetection weights/download_weights.sh)",
            note="{'model': ResNet-50 state dict, fc 1 logit}; the paper's 'Blur+JPEG (0.5)' model",
        ),
        PublishedWeights(
            "blur_jpg_prob0.1.pth",
            "--pretrained_path blur_jpg_prob0.1.pth",
            "https://www.dropbox.com/s/h7tkpcgiwuftb6g/blur_jpg_prob0.1.pth (CNNDetection weights/download_weights.sh)",
            note="the 'Blur+JPEG (0.1)' model",
        ),
    )
    # the official code: ImageNet normalization, random (train) / centre (test) 224 crops
    preprocess = Preprocess(224, resize_mode="crop")
    cam_target_layer = "net.layer4"  # bench explain: ResNet-50's last stage, before pooling

    def __init__(self, pretrained_path: str = "") -> None:
        super().__init__()
        import timm

        # timm's resnet50 has torchvision's layout and key names (conv1, bn1, layer1..4, fc).
        self.net = timm.create_model("resnet50", pretrained=False, num_classes=1)
        if pretrained_path:
            load_resnet_weights(self.net, pretrained_path)
        self.pretrained = bool(pretrained_path)

    def forward(self, image: torch.Tensor, label: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.outputs(self.net(image).squeeze(1), label)
