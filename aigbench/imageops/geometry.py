"""Resizing and cropping exactly as torchvision's transforms do on PIL images.

The field's official evaluation code prepares test images with torchvision on PIL images:
CNNDetection (``data/datasets.py``: ``transforms.CenterCrop(224)`` on ``Image.open(...).convert("RGB")``),
UnivFD (``validate.py``: ``CenterCrop(224)``), NPR and FreqNet (``transforms.Resize((256, 256))``
and ``CenterCrop``), AIGCDetectBenchmark (``Resize(256)`` then ``CenterCrop(224)``). These
functions take and return uint8 ``HxWx3`` arrays and give the same pixels:

* :func:`resize` is ``PIL.Image.resize`` (what ``torchvision.transforms.functional.resize``
  calls on a PIL image), whose filters widen their support when shrinking (antialiased);
* :func:`shorter_side_size` is torchvision's ``_compute_resized_output_size`` for an int size
  (the longer side is truncated, ``int(size * long / short)``);
* :func:`center_offsets` and :func:`center_crop` are ``F.center_crop``: offsets rounded with
  Python's ``round`` (half to even), and an image smaller than the crop zero-padded with the
  extra pixel on the right / bottom (``pad="reflect"`` mirror-pads instead).
"""

from __future__ import annotations

import numpy as np

# --interpolation → Pillow's filters, as torchvision's InterpolationMode maps them (area → BOX).
PIL_FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "area": 4}
PAD_MODES = ("constant", "reflect", "wrap")


def resize(img: np.ndarray, height: int, width: int, interpolation: str = "bilinear") -> np.ndarray:
    """``img`` at ``height x width`` through Pillow, as ``torchvision.transforms.Resize`` on a PIL image."""
    if img.shape[0] == height and img.shape[1] == width:
        return img
    from PIL import Image

    if interpolation not in PIL_FILTERS:
        raise ValueError(f"--interpolation must be one of {', '.join(PIL_FILTERS)}, got {interpolation!r}")
    out = Image.fromarray(np.ascontiguousarray(img)).resize((width, height), PIL_FILTERS[interpolation])
    return np.asarray(out)


def shorter_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(new_height, new_width)`` of ``Resize(size)`` (an int: the shorter side), as torchvision."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    return (new_long, size) if width <= height else (size, new_long)


def resize_shorter(img: np.ndarray, size: int, interpolation: str = "bilinear") -> np.ndarray:
    """``torchvision.transforms.Resize(size)`` with an int ``size`` on a PIL image."""
    return resize(img, *shorter_side_size(img.shape[0], img.shape[1], size), interpolation=interpolation)


def pad_to(img: np.ndarray, size: int, pad: str = "constant") -> np.ndarray:
    """``img`` padded to at least ``size`` on each side as ``F.center_crop`` pads it: left/top
    ``(size - w) // 2``, right/bottom the rest; zeros, a mirror image (``reflect``, OpenCV's
    ``BORDER_REFLECT_101``), or the image tiled (``wrap``, as NPR's GenImage test tiles small images)."""
    h, w = img.shape[:2]
    if h >= size and w >= size:
        return img
    if pad not in PAD_MODES:
        raise ValueError(f"--pad_mode must be one of {', '.join(PAD_MODES)}, got {pad!r}")
    dy, dx = max(size - h, 0), max(size - w, 0)
    widths = ((dy // 2, (dy + 1) // 2), (dx // 2, (dx + 1) // 2), (0, 0))[: img.ndim]
    if pad == "wrap":  # tiled from the top-left corner, as NPR's translate_duplicate, then centre-cropped
        tiles = ((0, h * -(-size // h) - h if h < size else 0), (0, w * -(-size // w) - w if w < size else 0))
        return np.pad(img, (*tiles, (0, 0))[: img.ndim], mode="wrap")
    if pad == "constant":
        return np.pad(img, widths, mode="constant")
    import cv2

    (top, bottom), (left, right) = widths[0], widths[1]
    return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_REFLECT_101)


def center_offsets(height: int, width: int, size: int) -> tuple[int, int]:
    """``(top, left)`` of a ``size`` centre crop of an image at least that large, as torchvision."""
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))


def center_crop(img: np.ndarray, size: int, pad: str = "constant") -> np.ndarray:
    """``torchvision.transforms.CenterCrop(size)`` on a PIL image (zero padding by default)."""
    img = pad_to(img, size, pad)
    top, left = center_offsets(img.shape[0], img.shape[1], size)
    return np.ascontiguousarray(img[top : top + size, left : left + size])
