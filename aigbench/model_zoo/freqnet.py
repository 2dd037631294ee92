"""FreqNet: Tan, Zhao, Wei, Gu, Liu, Wei. "Frequency-Aware Deepfake Detection: Improving
Generalizability through Frequency Space Learning". AAAI 2024. Official code:
github.com/chuangchuangtan/FreqNet-DeepfakeDetection (``networks/freqnet.py``).

A 1.85 M-parameter network that learns in the frequency domain:

* high-pass filters: an orthonormal 2-D FFT over height and width (or a 1-D FFT over channels),
  the centred spectrum's central half on each axis zeroed, the inverse FFT's real part, ReLU;
* frequency convolution layers: 1x1 convolutions applied separately to the real and imaginary
  parts of the centred spectrum (``realconvK``, ``imagconvK``), back by the inverse FFT, ReLU;
* 1x1 convolutions held as raw parameters (``weightK``, ``biasK``; stride 1, 2, 1, 2), a
  max-pool, ResNet-50's ``layer1`` and ``layer2``, global average pooling and ``fc1`` (512 → 1).

FFTs run in float32 under autocast. Preprocessing as the official test: the whole image resized
to 256 x 256 (bilinear, antialiased), no crop, ImageNet mean and std; training resizes to 256 and
takes random 224 crops (``--train_crop random_crop --image_size 224`` in the zoo script).

Weights (``--pretrained_path``): the official ``4-classes-freqnet-v2.pth``, a plain state dict
(156 keys: ``weight1``..``bias4``, ``realconv1.weight``..``imagconv4.weight``, ``layer1.*``,
``layer2.*``, ``fc1.*``), loaded strictly.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aigbench.datasets.preprocess import Preprocess
from aigbench.engine.checkpoint import load_model_weights
from aigbench.model_zoo.base import (
    BinaryDetector,
    PublishedWeights,
    bottleneck_layer,
    float32_region,
    init_resnet_,
    read_state_dict,
)
from aigbench.registry import MODELS


def highpass_hw(x: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """Zero the central ``1/scale``-half-width box of the centred 2-D spectrum (low frequencies)."""
    spec = torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))
    h, w = spec.shape[-2:]
    spec[..., h // 2 - h // scale : h // 2 + h // scale, w // 2 - w // scale : w // 2 + w // scale] = 0
    return F.relu(torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-2, -1)), norm="ortho").real)


def highpass_channels(x: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """The same high-pass along the channel axis."""
    spec = torch.fft.fftshift(torch.fft.fft(x, dim=1, norm="ortho"), dim=1)
    c = spec.shape[1]
    spec[:, c // 2 - c // scale : c // 2 + c // scale] = 0
    return F.relu(torch.fft.ifft(torch.fft.ifftshift(spec, dim=1), dim=1, norm="ortho").real)


def frequency_conv(x: torch.Tensor, real: nn.Conv2d, imag: nn.Conv2d) -> torch.Tensor:
    """1x1 convolutions on the real and the imaginary part of the centred spectrum."""
    spec = torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))
    spec = torch.complex(real(spec.real), imag(spec.imag))
    return F.relu(torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-2, -1)), norm="ortho").real)


@MODELS.register_module()
class FreqNet(BinaryDetector):
    """Frequency-space learning: FFT high-pass filters and frequency convolutions, then ResNet stages."""

    paper = (
        "Tan et al., Frequency-Aware Deepfake Detection: Improving Generalizability through Frequency Space "
        "Learning, AAAI 2024"
    )
    checkpoints = (
        PublishedWeights(
            "4-classes-freqnet-v2.pth",
            "--pretrained_path 4-classes-freqnet-v2.pth",
            "https://github.com/chuangchuangtan/FreqNet-DeepfakeDetection/raw/main/4-classes-freqnet-v2.pth",
            note="plain state dict, 156 keys; no checksum published (git blob SHA-1 "
            "3c6208db34138cea16da831bdecf03bbb568b630); trained on 4 ProGAN classes",
        ),
    )
    # the official test: Resize((256, 256)) bilinear, no crop, ImageNet normalization
    preprocess = Preprocess(256, resize_mode="resize", interpolation="bilinear")
    cam_target_layer = "layer2"  # bench explain: the last stage, before pooling

    def __init__(self, pretrained_path: str = "") -> None:
        super().__init__()
        for k, (cout, cin) in enumerate(((64, 3), (64, 64), (256, 256), (256, 256)), start=1):
            setattr(self, f"weight{k}", nn.Parameter(torch.randn(cout, cin, 1, 1)))
            setattr(self, f"bias{k}", nn.Parameter(torch.randn(cout)))
        for k, c in enumerate((64, 64, 256, 256), start=1):
            setattr(self, f"realconv{k}", nn.Conv2d(c, c, 1, bias=False))
            setattr(self, f"imagconv{k}", nn.Conv2d(c, c, 1, bias=False))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = bottleneck_layer(64, 64, 3)
        self.layer2 = bottleneck_layer(256, 128, 4, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(512, 1)
        init_resnet_(self)
        if pretrained_path:
            load_model_weights(self, read_state_dict(pretrained_path), f"--pretrained_path {pretrained_path}")
            self.pretrained = True

    def _conv(self, x: torch.Tensor, k: int, stride: int) -> torch.Tensor:
        return F.relu(F.conv2d(x, getattr(self, f"weight{k}"), getattr(self, f"bias{k}"), stride=stride))

    def _fcl(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return frequency_conv(x, getattr(self, f"realconv{k}"), getattr(self, f"imagconv{k}"))

    def forward(self, image: torch.Tensor, label: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, Any]:
        with float32_region(image.device.type):  # complex FFTs: float32 (fp16 needs powers of two)
            x = highpass_hw(image.float())
            x = self._fcl(highpass_channels(self._conv(x, 1, 1)), 1)
            x = self._conv(highpass_hw(x), 2, 2)
            x = self._fcl(highpass_channels(x), 2)
        x = self.layer1(self.maxpool(x))
        with float32_region(image.device.type):
            x = self._fcl(self._conv(highpass_hw(x.float()), 3, 1), 3)
            x = self._fcl(self._conv(highpass_hw(x), 4, 2), 4)
        x = self.layer2(x)
        logit = self.fc1(torch.flatten(self.avgpool(x), 1)).squeeze(1)
        return self.outputs(logit, label)
