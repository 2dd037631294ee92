"""Image perturbations in the field's units. Each works on an RGB uint8 ``HxWx3`` array.

=============  ===========  ===================================  ==============
name           parameter    unit                                 clean strength
=============  ===========  ===================================  ==============
``blur``       ``sigma``    Gaussian sigma in pixels             0
``noise``      ``std``      Gaussian std on the 0-255 scale      0
``jpeg``       ``quality``  JPEG quality, 1-100                  100
=============  ===========  ===================================  ==============

At its clean strength a perturbation is the identity (JPEG at quality 100 is *not* run:
it would still be lossy), and results say ``clean = true``. Add your own with::

    @PERTURBATIONS.register_module("sharpen")
    class Sharpen(Perturbation):
        param, unit, clean_strength = "amount", "unsharp amount", 0.0
        def apply(self, img): ...

A point is named by its ``GRID`` key (the registry key): ``name`` need not be set. The whole
interface, and how fractional strengths reach TensorBoard (``tb_step_scale``), is in
``docs/perturbations.md``.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

from aigbench.imageops.codecs import reencode
from aigbench.registry import PERTURBATIONS


class Perturbation:
    """Base class: ``Perturbation(strength)(image) -> image``."""

    name: str = ""
    param: str = "strength"
    unit: str = ""
    clean_strength: float = 0.0
    tb_step_scale: int = 1  # TensorBoard steps are integers: step = strength * tb_step_scale

    def __init__(self, strength: float, seed: int = 0, name: str = "") -> None:
        self.strength = float(strength)
        self.seed = int(seed)
        if name:
            self.name = name  # the GRID / registry key that built this point
        self.validate()

    def validate(self) -> None:
        if self.strength < 0:
            raise ValueError(f"{self.name}: {self.param} must be >= 0, got {self.strength:g}")

    @property
    def is_clean(self) -> bool:
        return self.strength == self.clean_strength

    @property
    def folder(self) -> str:
        """Result sub-folder, e.g. ``blur/sigma_2``."""
        return f"{self.name}/{self.param}_{self.strength:g}"

    def apply(self, img: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return img if self.is_clean else self.apply(img)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.param}={self.strength:g})"


@PERTURBATIONS.register_module("blur")
class GaussianBlur(Perturbation):
    """Gaussian blur with standard deviation ``sigma`` pixels (kernel covers ±4 sigma, mirrored
    borders: the same filter as ``scipy.ndimage.gaussian_filter(mode="mirror")``, used by CNNSpot)."""

    name, param, unit, clean_strength, tb_step_scale = "blur", "sigma", "Gaussian sigma, pixels", 0.0, 10

    def __init__(self, strength: float, seed: int = 0, name: str = "") -> None:
        super().__init__(strength, seed, name)
        radius = max(1, int(4 * self.strength + 0.5))
        # separable float kernel, built once: ~10x faster than cv2.GaussianBlur's 8-bit path for large sigma
        self._kernel = cv2.getGaussianKernel(2 * radius + 1, self.strength, cv2.CV_32F) if self.strength > 0 else None

    def apply(self, img: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(img, -1, self._kernel, self._kernel, borderType=cv2.BORDER_REFLECT_101)


@PERTURBATIONS.register_module("noise")
class GaussianNoise(Perturbation):
    """Additive Gaussian noise with std on the 0-255 scale, clipped to [0, 255].

    The noise of each image is seeded from its pixels and ``seed``: the same image gets the
    same noise whatever the batch order, worker or process.
    """

    name, param, unit, clean_strength = "noise", "std", "Gaussian std, 0-255 scale", 0.0

    def apply(self, img: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng([self.seed, zlib.crc32(np.ascontiguousarray(img).data)])
        noisy = img.astype(np.float32) + rng.standard_normal(img.shape, dtype=np.float32) * self.strength
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


@PERTURBATIONS.register_module("jpeg")
class JPEG(Perturbation):
    """JPEG re-compression at ``quality`` (OpenCV/libjpeg, 4:2:0 chroma subsampling)."""

    name, param, unit, clean_strength = "jpeg", "quality", "JPEG quality, 1-100", 100.0

    def validate(self) -> None:
        if not 1 <= self.strength <= 100:
            raise ValueError(f"jpeg: quality must be in 1..100, got {self.strength:g}")

    def apply(self, img: np.ndarray) -> np.ndarray:
        return reencode(img, "jpeg", int(self.strength))
