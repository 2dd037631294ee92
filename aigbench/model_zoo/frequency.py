"""DCT-spectrum detector after Frank, Eisenhofer, Schönherr, Fischer, Kolossa, Holz.
"Leveraging Frequency Analysis for Deep Fake Image Recognition". ICML 2020.

Each colour channel goes through an orthonormal 2-D DCT-II; the log-magnitude spectrum
``log(|DCT| + eps)`` is standardized per coefficient with running statistics of the training
data (the paper standardizes with the training set's mean and std), then a small CNN (3x3
convolutions) and a linear layer give one logit. Frank et al. also report a ridge-regression
head on the same features; this follows their CNN variant.

The DCT, the log and the standardization run in float32 even under mixed precision
(``torch.autocast``): in float16/bfloat16 the small coefficients, and so their logarithms, are lost.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from aigbench.model_zoo.base import BinaryDetector, float32_region
from aigbench.registry import MODELS


def dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``C`` (``C @ x`` transforms the columns of ``x``)."""
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    c = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return c.float()


def log_dct_spectrum(x: torch.Tensor, dct: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """``log(|C x C^T| + eps)`` for every channel of ``x [B, C, N, N]``."""
    return torch.log((dct @ x @ dct.T).abs() + eps)


@MODELS.register_module()
class DCTDetector(BinaryDetector):
    """Log-magnitude DCT spectrum into a small CNN (Frank et al. ICML 2020)."""

    paper = "Frank et al., Leveraging Frequency Analysis for Deep Fake Image Recognition, ICML 2020"

    def __init__(self, image_size: int = 32, width: int = 32, eps: float = 1e-4) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("dct", dct_matrix(image_size), persistent=False)
        self.standardize = nn.BatchNorm1d(3 * image_size * image_size, affine=False, momentum=None)
        layers: list[nn.Module] = []
        cin = 3
        for cout in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = cout
        self.cnn = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(cin, 1)

    def forward(self, image: torch.Tensor, label: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, Any]:
        with float32_region(image.device.type):
            spec = log_dct_spectrum(image.float(), self.dct.float(), self.eps)
            spec = self.standardize(spec.flatten(1)).view_as(spec)
        logit = self.head(self.cnn(spec)).squeeze(1)
        return self.outputs(logit, label, {"log_dct": spec[:8].detach().mean(1, keepdim=True)})
