"""PCA + logistic regression on flattened pixels: the classical baseline of the CIFAKE paper
(Bird & Lotfi, "CIFAKE: Image Classification and Explainable Identification of AI-Generated
Synthetic Images", IEEE Access 2024, and its notebooks): pixels in [0, 1] flattened, PCA
with ``n_components``, then scikit-learn's logistic regression.

It is fitted in closed form, not by gradient descent, yet runs through the same ``train.py``
and writes the same checkpoints, ``metrics.json`` and ``predictions.csv`` as every model:
during a training epoch ``forward`` collects the images; at the end of the epoch the loop
calls the contract's fit step, :meth:`PCALogReg.fit` (``engine.loop.fit_from_data``), before the
checkpoint is written: scikit-learn fits PCA and the logistic regression on everything collected,
and the result is kept in buffers, so every checkpoint holds the fitted model. Train it for one
epoch without flips: ``--epochs 1 --no-hflip``. Single process only.
The projection and the logit are computed in float32, also under mixed precision.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from aigbench.datasets.preprocess import Preprocess
from aigbench.errors import ConfigError
from aigbench.model_zoo.base import BinaryDetector, float32_region
from aigbench.registry import MODELS


@MODELS.register_module()
class PCALogReg(BinaryDetector):
    """PCA on flattened pixels + logistic regression, fitted by scikit-learn."""

    paper = "Bird & Lotfi, CIFAKE: Image Classification and Explainable Identification..., IEEE Access 2024"
    # pixels scaled to [0, 1], as in the CIFAKE notebooks
    preprocess = Preprocess(input_size=32, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))

    def __init__(self, n_components: int = 100, C: float = 1.0, max_iter: int = 2000, image_size: int = 32) -> None:
        super().__init__()
        dim = 3 * image_size * image_size
        if not 1 <= n_components <= dim:
            raise ConfigError(f"--n_components must be in 1..{dim} for --image_size {image_size}, got {n_components}")
        self.n_components, self.C, self.max_iter = n_components, C, max_iter
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("components", torch.zeros(n_components, dim))
        self.register_buffer("coef", torch.zeros(n_components))
        self.register_buffer("intercept", torch.zeros(1))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        # The generic optimizer needs one parameter; its gradient is always zero.
        self.anchor = nn.Parameter(torch.zeros(1))
        self._features: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def decision(self, x: torch.Tensor) -> torch.Tensor:
        """Logistic-regression logit of flattened images ``x [B, D]``, in float32 even under autocast."""
        with float32_region(x.device.type):
            return ((x.float() - self.mean) @ self.components.T) @ self.coef + self.intercept

    def forward(self, image: torch.Tensor, label: torch.Tensor, *args: Any, **kwargs: Any) -> dict[str, Any]:
        x = image.flatten(1).float()
        if self.training:
            self._features.append(x.detach().cpu())
            self._labels.append(label.detach().cpu())
        logit = self.decision(x) if bool(self.fitted) else torch.zeros(len(x), device=x.device)
        out = self.outputs(logit, label)
        out["backward_loss"] = out["backward_loss"].detach() + 0.0 * self.anchor.sum()
        return out

    def fit(self) -> dict[str, float]:
        """The contract's fit step: PCA + logistic regression on the images collected since the
        last fit; returns the components kept, the variance they explain and the training accuracy."""
        import numpy as np
        import torch.distributed as dist
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            raise ConfigError("PCALogReg is fitted in closed form on one process; run it without torchrun")
        if not self._features:
            return {}
        x = torch.cat(self._features).numpy().astype(np.float64)
        y = torch.cat(self._labels).numpy()
        self._features, self._labels = [], []
        if len(np.unique(y)) < 2:
            raise ConfigError("PCALogReg needs real and fake training images; the training data has one class")
        pca = PCA(n_components=self.n_components, random_state=0).fit(x)
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(pca.transform(x), y)
        dev = self.mean.device
        self.mean.copy_(torch.as_tensor(pca.mean_, dtype=torch.float32, device=dev))
        self.components.copy_(torch.as_tensor(pca.components_, dtype=torch.float32, device=dev))
        self.coef.copy_(torch.as_tensor(lr.coef_[0], dtype=torch.float32, device=dev))
        self.intercept.copy_(torch.as_tensor(lr.intercept_, dtype=torch.float32, device=dev))
        self.fitted.fill_(True)
        return {
            "components": float(pca.n_components_),
            "explained_variance": float(pca.explained_variance_ratio_.sum()),
            "train_accuracy": float(lr.score(pca.transform(x), y)),
        }
