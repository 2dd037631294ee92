"""Albumentations/OpenCV transforms: decode → [perturb] → resize/crop → [perturb] → normalize.

Images are RGB uint8 ``HxWx3`` numpy arrays until :func:`to_tensor`.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Optional, Sequence

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ResizeMode = Literal["resize", "crop", "none"]


def decode_image(path: str) -> Optional[np.ndarray]:
    """RGB uint8 array of ``path``, or None when it cannot be read or decoded."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def build_geometric(image_size: int, train: bool, resize_mode: ResizeMode = "resize", hflip: bool = True) -> Any:
    """Resize or crop to ``image_size`` (random crop and flip when training)."""
    import albumentations as A

    ops: list[Any] = []
    if resize_mode == "resize":
        ops.append(A.Resize(image_size, image_size, interpolation=cv2.INTER_LINEAR))
    elif resize_mode == "crop":
        ops.append(A.PadIfNeeded(image_size, image_size, border_mode=cv2.BORDER_REFLECT_101))
        ops.append(A.RandomCrop(image_size, image_size) if train else A.CenterCrop(image_size, image_size))
    elif resize_mode != "none":
        raise ValueError(f"--resize_mode must be resize, crop or none, got {resize_mode!r}")
    if train and hflip:
        ops.append(A.HorizontalFlip(p=0.5))
    return A.Compose(ops) if ops else None


class Normalizer:
    """uint8 HWC RGB → float CHW tensor, ``(x/255 - mean) / std``."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._scale = (1.0 / (255.0 * np.asarray(self.std, dtype=np.float32))).reshape(1, 1, 3)
        self._shift = (np.asarray(self.mean, dtype=np.float32) / np.asarray(self.std, dtype=np.float32)).reshape(
            1, 1, 3
        )

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        """One uint8 ``HxWx3`` image → normalized float ``3xHxW`` tensor."""
        return self.batch(img[None])[0]

    def batch(self, imgs: np.ndarray) -> torch.Tensor:
        """uint8 ``NxHxWx3`` images → normalized float ``Nx3xHxW`` tensor, in one vectorized pass."""
        x = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).float()
        scale = torch.from_numpy(self._scale.reshape(1, 3, 1, 1))
        shift = torch.from_numpy(self._shift.reshape(1, 3, 1, 1))
        return (x * scale - shift).contiguous()

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Back to [0, 1] for display."""
        mean = torch.tensor(self.mean, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(-1, 1, 1)
        return (x * std + mean).clamp(0, 1)


class ImageTransform:
    """The whole per-image pipeline, with an optional perturbation before or after resizing."""

    def __init__(
        self,
        image_size: int,
        train: bool,
        resize_mode: ResizeMode = "resize",
        normalizer: Optional[Normalizer] = None,
        augment: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        hflip: bool = True,
    ) -> None:
        self.geometric = build_geometric(image_size, train, resize_mode, hflip)
        self.normalizer = normalizer or Normalizer()
        self.augment = augment
        self.perturbation: Optional[Callable[[np.ndarray], np.ndarray]] = None
        self.perturb_stage: Literal["before_resize", "after_resize"] = "before_resize"

    def set_perturbation(
        self, perturbation: Optional[Callable[[np.ndarray], np.ndarray]], stage: str = "before_resize"
    ) -> None:
        if stage not in ("before_resize", "after_resize"):
            raise ValueError(f"perturbation stage must be before_resize or after_resize, got {stage!r}")
        self.perturbation = perturbation
        self.perturb_stage = stage  # type: ignore[assignment]

    def set_random_seed(self, seed: int) -> None:
        if self.geometric is not None and hasattr(self.geometric, "set_random_seed"):
            self.geometric.set_random_seed(seed)
        if self.augment is not None and hasattr(self.augment, "set_random_seed"):
            self.augment.set_random_seed(seed)

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        """The model input for one decoded image: ``prepare`` then normalize."""
        return self.normalizer(self.prepare(img))

    def prepare(self, img: np.ndarray) -> np.ndarray:
        """Augment, perturb and resize/crop; still uint8 ``HxWx3`` (normalized per batch)."""
        if self.augment is not None:
            img = self.augment(img)
        if self.perturbation is not None and self.perturb_stage == "before_resize":
            img = self.perturbation(img)
        if self.geometric is not None:
            img = self.geometric(image=img)["image"]
        if self.perturbation is not None and self.perturb_stage == "after_resize":
            img = self.perturbation(img)
        return img
