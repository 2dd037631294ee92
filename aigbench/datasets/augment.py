"""Training augmentations that are detection protocols of their own.

:class:`BlurJPEG` is the augmentation of CNNSpot (Wang et al., CVPR 2020, "CNN-generated
images are surprisingly easy to spot... for now"): with probability ``blur_prob`` a Gaussian
blur with sigma ~ U[sigma_min, sigma_max], then with probability ``jpeg_prob`` a JPEG
re-compression with quality ~ U{q_min..q_max}. The paper's variants are p = 0.5 and p = 0.1
with sigma ~ U[0, 3] and quality ~ U{30..100}. Any model can use it through the training
flags ``--aug_blur_prob``/``--aug_jpeg_prob`` (and ``--aug_blur_sigma``/``--aug_jpeg_quality``).
"""

from __future__ import annotations

import random
from typing import Callable, Optional, Sequence

import numpy as np

from aigbench.errors import ConfigError
from aigbench.imageops.perturbations import JPEG, GaussianBlur


class AugmentChain:
    """Several training augmentations, one after the other (each seeded with the chain)."""

    def __init__(self, steps: Sequence[Callable[[np.ndarray], np.ndarray]]) -> None:
        self.steps = tuple(steps)

    def set_random_seed(self, seed: int) -> None:
        for i, step in enumerate(self.steps):
            if hasattr(step, "set_random_seed"):
                step.set_random_seed(seed + i)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        for step in self.steps:
            img = step(img)
        return img

    def __repr__(self) -> str:
        return " > ".join(repr(s) for s in self.steps)


class BlurJPEG:
    """Random Gaussian blur then random JPEG, on RGB uint8 ``HxWx3`` arrays."""

    def __init__(
        self,
        blur_prob: float = 0.5,
        jpeg_prob: float = 0.5,
        blur_sigma: Sequence[float] = (0.0, 3.0),
        jpeg_quality: Sequence[int] = (30, 100),
        seed: Optional[int] = None,
    ) -> None:
        for name, p in (("blur_prob", blur_prob), ("jpeg_prob", jpeg_prob)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"--aug_{name} must be in [0, 1], got {p}")
        if len(blur_sigma) != 2 or not 0 <= blur_sigma[0] <= blur_sigma[1]:
            raise ConfigError(f"--aug_blur_sigma takes MIN MAX with 0 <= MIN <= MAX, got {list(blur_sigma)}")
        if len(jpeg_quality) != 2 or not 1 <= jpeg_quality[0] <= jpeg_quality[1] <= 100:
            raise ConfigError(f"--aug_jpeg_quality takes MIN MAX within 1..100, got {list(jpeg_quality)}")
        self.blur_prob, self.jpeg_prob = float(blur_prob), float(jpeg_prob)
        self.blur_sigma = (float(blur_sigma[0]), float(blur_sigma[1]))
        self.jpeg_quality = (int(jpeg_quality[0]), int(jpeg_quality[1]))
        self.rng = random.Random(seed)

    def set_random_seed(self, seed: int) -> None:
        self.rng.seed(seed)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if self.rng.random() < self.blur_prob:
            sigma = self.rng.uniform(*self.blur_sigma)
            if sigma > 0:
                img = GaussianBlur(sigma).apply(img)
        if self.rng.random() < self.jpeg_prob:
            img = JPEG(self.rng.randint(*self.jpeg_quality)).apply(img)
        return img

    def __repr__(self) -> str:
        return (
            f"BlurJPEG(blur_prob={self.blur_prob}, sigma~U{list(self.blur_sigma)}, "
            f"jpeg_prob={self.jpeg_prob}, quality~U{{{self.jpeg_quality[0]}..{self.jpeg_quality[1]}}})"
        )
