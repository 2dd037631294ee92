"""Per-image transforms: decode → [align format] → [augment] → [perturb] → resize/crop →
[perturb] → normalize.

Images are RGB uint8 ``HxWx3`` numpy arrays until :class:`Normalizer`. Resizing and centre
cropping are those of torchvision on PIL images (:mod:`aigbench.imageops.geometry`: Pillow's
antialiased filters, torchvision's rounding and zero padding), the pipelines of the field's
official evaluation code; training adds albumentations' random crop and flip. A transform is
never changed after it is built: :meth:`ImageTransform.with_perturbation` returns a new one
(a *view*), so loaders and their persistent workers never see a shared object change under them.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any, Callable, Literal, Optional, Sequence

import cv2
import numpy as np
import torch

from aigbench.datasets.preprocess import IMAGENET_MEAN, IMAGENET_STD, RESIZE_MODES, Preprocess
from aigbench.imageops import (
    decode_image,  # noqa: F401  (re-exported: the dataset decodes through it)
    geometry,
)

ResizeMode = Literal["resize", "crop", "resize_crop", "none"]
PerturbStage = Literal["before_resize", "after_resize"]
INTERPOLATIONS = tuple(geometry.PIL_FILTERS)
PAD_BORDERS = {"constant": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT_101, "wrap": cv2.BORDER_WRAP}


def _keyword(fn: Callable[..., np.ndarray], img: np.ndarray, **_: Any) -> np.ndarray:
    return fn(img)


class Geometry:
    """Deterministic steps (evaluation): ``Geometry(steps)(image=img)["image"]``, the calling
    convention of albumentations' ``Compose``."""

    def __init__(self, steps: Sequence[Callable[[np.ndarray], np.ndarray]]) -> None:
        self.steps = tuple(steps)

    def __call__(self, image: np.ndarray) -> dict[str, np.ndarray]:
        for step in self.steps:
            image = step(image)
        return {"image": image}


def build_geometric(
    image_size: int,
    train: bool,
    resize_mode: str = "resize",
    hflip: bool = True,
    interpolation: str = "bilinear",
    crop_pct: float = 1.0,
    pad_mode: str = "constant",
) -> Any:
    """Resize or crop to ``image_size`` as torchvision on PIL images (random crop and flip when
    training). Images smaller than a crop are zero-padded (``pad_mode="reflect"``: mirrored)."""
    import albumentations as A

    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"--interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    if pad_mode not in PAD_BORDERS:
        raise ValueError(f"--pad_mode must be one of {', '.join(PAD_BORDERS)}, got {pad_mode!r}")
    steps: list[Callable[[np.ndarray], np.ndarray]] = []
    crop: Optional[str] = None  # "center" or "random"
    if resize_mode == "resize":
        steps.append(partial(_square, size=image_size, interpolation=interpolation))
    elif resize_mode in ("crop", "center_crop", "random_crop"):
        crop = "random" if resize_mode == "random_crop" or (train and resize_mode == "crop") else "center"
    elif resize_mode == "multicrop":  # the crops are cut by ImageTransform, after padding
        steps.append(partial(geometry.pad_to, size=image_size, pad=pad_mode))
    elif resize_mode == "resize_crop":
        if not 0 < crop_pct <= 1:
            raise ValueError(f"--crop_pct must be in (0, 1], got {crop_pct}")
        short = int(round(image_size / crop_pct))
        steps.append(partial(geometry.resize_shorter, size=short, interpolation=interpolation))
        crop = "random" if train else "center"
    elif resize_mode != "none":
        raise ValueError(f"--resize_mode must be one of {', '.join(RESIZE_MODES)}, got {resize_mode!r}")
    if crop == "center":
        steps.append(partial(geometry.center_crop, size=image_size, pad=pad_mode))
    if not train:
        return Geometry(steps) if steps else None
    ops: list[Any] = [A.Lambda(image=partial(_keyword, step)) for step in steps]
    if crop == "random":
        ops.append(partial_pad(image_size, pad_mode))
        ops.append(A.RandomCrop(image_size, image_size))
    if hflip:
        ops.append(A.HorizontalFlip(p=0.5))
    return A.Compose(ops) if ops else None


def partial_pad(size: int, pad_mode: str) -> Any:
    """albumentations' padding to ``size`` (training's random crops), zeros or mirrored."""
    import albumentations as A

    return A.PadIfNeeded(size, size, border_mode=PAD_BORDERS[pad_mode], fill=0)


def _square(img: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    return geometry.resize(img, size, size, interpolation)


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

    def on_device(self, images: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """uint8 ``NxHxWx3`` images (already on their device) → normalized float ``Nx3xHxW``.

        Batches cross to the GPU as uint8 (a quarter of float32's bytes) and are normalized
        there, timm's ``PrefetchLoader`` pattern. ``channels_last`` keeps the NHWC memory
        layout that the permutation gives (convolutions on tensor cores prefer it)."""
        x = images.permute(0, 3, 1, 2).float()
        if not channels_last:
            x = x.contiguous()
        scale = torch.as_tensor(self._scale.reshape(1, 3, 1, 1), device=x.device)
        shift = torch.as_tensor(self._shift.reshape(1, 3, 1, 1), device=x.device)
        return x.mul_(scale).sub_(shift)

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
        resize_mode: str = "resize",
        normalizer: Optional[Normalizer] = None,
        augment: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        hflip: bool = True,
        interpolation: str = "bilinear",
        crop_pct: float = 1.0,
        align: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        crops: int = 0,
        pad_mode: str = "constant",
    ) -> None:
        if resize_mode == "multicrop" and crops not in (5, 10):
            raise ValueError(f"--eval_crops must be 5 (corners + centre) or 10 (and their mirror images), got {crops}")
        self.geometric = build_geometric(image_size, train, resize_mode, hflip, interpolation, crop_pct, pad_mode)
        self.train = train
        self.resize_mode = resize_mode
        self.image_size = image_size
        self.crops = crops if resize_mode == "multicrop" else 0
        self.interpolation, self.crop_pct, self.pad_mode = interpolation, crop_pct, pad_mode
        self.normalizer = normalizer or Normalizer()
        self.augment = augment
        self.align = align  # e.g. FormatAlign("jpeg:96"): applied first, before anything else
        self.perturbation: Optional[Callable[[np.ndarray], np.ndarray]] = None
        self.perturb_stage: PerturbStage = "before_resize"

    @classmethod
    def from_preprocess(
        cls,
        cfg: Preprocess,
        train: bool,
        augment: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        hflip: bool = True,
        align: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        resize_mode: Optional[str] = None,
        crops: int = 0,
    ) -> ImageTransform:
        """The transform of a model's :class:`Preprocess`; ``resize_mode`` (``--train_crop`` /
        ``--eval_crop``) replaces the declared one."""
        return cls(
            cfg.input_size,
            train,
            resize_mode or cfg.resize_mode,
            Normalizer(cfg.mean, cfg.std),
            augment,
            hflip,
            cfg.interpolation,
            cfg.crop_pct,
            align,
            crops,
            cfg.pad_mode,
        )

    def with_perturbation(
        self, perturbation: Optional[Callable[[np.ndarray], np.ndarray]], stage: str = "before_resize"
    ) -> ImageTransform:
        """A new transform that applies ``perturbation`` at ``stage``; this one is unchanged."""
        if stage not in ("before_resize", "after_resize"):
            raise ValueError(f"perturbation stage must be before_resize or after_resize, got {stage!r}")
        view = copy.copy(self)
        view.perturbation = perturbation
        view.perturb_stage = stage  # type: ignore[assignment]
        return view

    def set_random_seed(self, seed: int) -> None:
        """Seed the random augmentation (training transforms, once per epoch and worker)."""
        if self.geometric is not None and hasattr(self.geometric, "set_random_seed"):
            self.geometric.set_random_seed(seed)
        if self.augment is not None and hasattr(self.augment, "set_random_seed"):
            self.augment.set_random_seed(seed)

    def __call__(self, img: np.ndarray) -> torch.Tensor:
        """The model input for one decoded image: ``prepare`` then normalize."""
        return self.normalizer(self.prepare(img))

    def prepare(self, img: np.ndarray) -> np.ndarray:
        """Align the format, augment, perturb and resize/crop; still uint8 ``HxWx3`` (normalized per batch)."""
        return self.finish(self.start(img))

    def start(self, img: np.ndarray) -> np.ndarray:
        """The steps before any perturbation: format alignment and (training) augmentation."""
        if self.align is not None:
            img = self.align(img)
        if self.augment is not None:
            img = self.augment(img)
        return img

    def finish(self, img: np.ndarray) -> np.ndarray:
        """Perturb and resize/crop an image that went through :meth:`start`. Views of one
        transform (robustness points) share ``start``: a sweep aligns each image once."""
        if self.perturbation is not None and self.perturb_stage == "before_resize":
            box = self.kept_box(img.shape[0], img.shape[1])
            kept = None
            if box is not None and hasattr(self.perturbation, "region"):
                kept = self.perturbation.region(img, box)  # = perturb the whole image, then crop; None: not local
            img = kept if kept is not None else self.perturbation(img)
        if self.geometric is not None:
            img = self.geometric(image=img)["image"]
        if self.crops:
            img = np.stack([self._after(c) for c in multicrop(img, self.image_size, self.crops)])
        else:
            img = self._after(img)
        return img

    def kept_box(self, height: int, width: int) -> Optional[tuple[int, int, int, int]]:
        """``(y0, x0, y1, x1)``: the part of a ``height x width`` image that an evaluation centre
        crop without resizing keeps (``--eval_crop crop`` / ``center_crop``, torchvision's
        ``CenterCrop``), so that a perturbation before it need only produce those pixels; None
        for every other geometry (resizing, random crops, padding, several crops)."""
        s = self.image_size
        if self.train or self.resize_mode not in ("crop", "center_crop") or height < s or width < s:
            return None
        y0, x0 = geometry.center_offsets(height, width, s)
        return y0, x0, y0 + s, x0 + s

    def _after(self, img: np.ndarray) -> np.ndarray:
        """The after-resize perturbation; one that changes the size (crop, social) is resized
        back to the model's input size (bilinear) so that batches stay stackable."""
        if self.perturbation is None or self.perturb_stage != "after_resize":
            return img
        out = self.perturbation(img)
        if out.shape[:2] != img.shape[:2]:
            out = cv2.resize(out, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        return out

    def decode_floor(self) -> Optional[int]:
        """``--fast_decode``: the fewest pixels a reduced JPEG decode must keep on each side, twice
        the size that the geometry resizes to (``resize``: the input size; ``resize_crop``: the
        shorter side before the crop); None for geometries that do not resize (a crop or the whole
        image at its own resolution would show other content)."""
        if self.train or self.perturbation is not None:
            return None
        if self.resize_mode == "resize":
            return 2 * self.image_size
        if self.resize_mode == "resize_crop":
            return 2 * int(round(self.image_size / self.crop_pct))
        return None

    @property
    def crop_name(self) -> str:
        """How evaluation images reached the model, for results (``multicrop5``, ``resize``, ...)."""
        return f"multicrop{self.crops}" if self.crops else ("full" if self.resize_mode == "none" else self.resize_mode)


def multicrop(img: np.ndarray, size: int, n: int) -> list[np.ndarray]:
    """The four corner crops and the centre crop (``n`` = 5), and their mirror images (10), as
    torchvision's ``FiveCrop``/``TenCrop`` (its centre crop rounds as ``CenterCrop``); ``img`` is at
    least ``size`` on each side."""
    h, w = img.shape[:2]
    top, left = geometry.center_offsets(h, w, size)
    boxes = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), (top, left)]
    crops = [img[y : y + size, x : x + size] for y, x in boxes]
    if n == 10:
        crops += [c[:, ::-1] for c in crops]
    return [np.ascontiguousarray(c) for c in crops]
