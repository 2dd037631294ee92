"""RandomStateAugmentation (RSA) of Community Forensics (Park & Owens, CVPR 2025; official code
github.com/JeongsooP/Community-Forensics, ``custom_transforms.py``).

Each operation of ``ops`` is drawn ``randint(min, max)`` times (inclusive; default 0 to 2, so each
op runs 0, 1 or 2 times), and the drawn operations run in a uniformly random order, each with
its own random parameters. The training image is first resized so that its shorter side is
``resize_to`` (the official pipeline: ``Resize(256|440)`` → RSA → ``RandomCrop(224|384)``); the
random crop that follows is the training transform's.

The eleven default operations, with the official ranges (``crop`` = the model's input size):

=============================  ===========================================================
``JPEGinMemory``               JPEG quality ~ U{75..100}, Pillow or OpenCV (50/50)
``RandomResizeWithRandomIntpl``  shorter side ~ U{crop+1 .. round(1.228 crop)}, bilinear or bicubic
``RandomCrop``                 a ``crop x crop`` crop at a random position
``RandomHorizontalFlip``       p = 0.5
``RandomVerticalFlip``         p = 0.5
``RRCWithRandomIntpl``         RandomResizedCrop(crop, scale (0.9, 1), ratio (3/4, 4/3)), random interpolation
``RandomRotation``             angle ~ U[-15, 15] degrees, bilinear, black corners
``RandomTranslate``            shift ~ U[-10 %, 10 %] of width and of height (whole pixels), black border
``RandomShear``                x and y shear ~ U[-15, 15] degrees each, bilinear, black border
``RandomPadding``              each side padded by U[0, 5 %] of its dimension with one grey level
                               ~ U{0..255}, then resized back to the image's size
``RandomCutout``               p = 0.5: RandomErasing, area 2-6 %, aspect (0.3, 3.3), one grey level
=============================  ===========================================================

Differences from the official code, all in how an operation is computed, none in what it does:
OpenCV replaces Pillow for resampling (shrinks are antialiased with ``INTER_AREA``, Pillow's
``HAMMING`` and ``BOX`` filters become OpenCV's linear and area ones); the shear is applied about
the image centre as ``x' = x + tan(sx) y``, ``y' = y + tan(sy) x``; and ``RandomPadding`` resizes
back to (height, width), where the official code swaps them on non-square images.
"""

from __future__ import annotations

import io
import math
import random
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from aigbench.errors import ConfigError

RSA_OPS = (
    "JPEGinMemory",
    "RandomResizeWithRandomIntpl",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "RRCWithRandomIntpl",
    "RandomRotation",
    "RandomTranslate",
    "RandomShear",
    "RandomPadding",
    "RandomCutout",
)
RRC_INTERPOLATIONS = (
    cv2.INTER_NEAREST,
    cv2.INTER_LINEAR,
    cv2.INTER_CUBIC,
    cv2.INTER_LANCZOS4,
    cv2.INTER_LINEAR,  # Pillow's HAMMING
    cv2.INTER_AREA,  # Pillow's BOX
)


def resize_to(img: np.ndarray, h: int, w: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``img`` at ``h x w``; shrinking is antialiased (``INTER_AREA``) as Pillow's filters are."""
    if (h, w) == img.shape[:2]:
        return img
    if h < img.shape[0] and w < img.shape[1] and interpolation != cv2.INTER_NEAREST:
        interpolation = cv2.INTER_AREA
    return cv2.resize(img, (w, h), interpolation=interpolation)


def resize_short(img: np.ndarray, short: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """torchvision's ``Resize(int)``: the shorter side to ``short``, the aspect ratio kept."""
    h, w = img.shape[:2]
    if h <= w:
        return resize_to(img, short, max(1, int(short * w / h)), interpolation)
    return resize_to(img, max(1, int(short * h / w)), short, interpolation)


def _warp(img: np.ndarray, m: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def parse_rsa_ops(spec: str) -> tuple[str, ...]:
    """``--rsa_ops``: ``default`` (the eleven official operations) or names separated by commas."""
    if spec.strip().lower() in ("default", "all"):
        return RSA_OPS
    names = tuple(s.strip() for s in spec.split(",") if s.strip())
    unknown = [n for n in names if n not in RSA_OPS]
    if unknown or not names:
        raise ConfigError(
            f"--rsa_ops: unknown operation(s) {unknown or [spec]}; choose from default or {', '.join(RSA_OPS)}"
        )
    return names


class RandomStateAugmentation:
    """RSA on RGB uint8 ``HxWx3`` arrays; ``crop`` is the model's input size."""

    def __init__(
        self,
        crop: int,
        ops: Sequence[str] = RSA_OPS,
        num: Sequence[int] = (0, 2),
        resize_to: Optional[int] = None,
        seed: Optional[int] = None,
    ) -> None:
        if len(num) != 2 or not 0 <= num[0] <= num[1]:
            raise ConfigError(f"--rsa_num takes MIN MAX with 0 <= MIN <= MAX, got {list(num)}")
        unknown = [n for n in ops if n not in RSA_OPS]
        if unknown:
            raise ConfigError(f"--rsa_ops: unknown operation(s) {unknown}; choose from {', '.join(RSA_OPS)}")
        self.crop = int(crop)
        self.ops = tuple(ops)
        self.num = (int(num[0]), int(num[1]))
        self.resize_to = resize_to
        self.rng = random.Random(seed)
        self._apply: dict[str, Callable[[np.ndarray], np.ndarray]] = {
            "JPEGinMemory": self.jpeg,
            "RandomResizeWithRandomIntpl": self.random_resize,
            "RandomCrop": self.random_crop,
            "RandomHorizontalFlip": lambda img: img[:, ::-1] if self.rng.random() < 0.5 else img,
            "RandomVerticalFlip": lambda img: img[::-1] if self.rng.random() < 0.5 else img,
            "RRCWithRandomIntpl": self.random_resized_crop,
            "RandomRotation": self.rotation,
            "RandomTranslate": self.translate,
            "RandomShear": self.shear,
            "RandomPadding": self.padding,
            "RandomCutout": self.cutout,
        }

    def set_random_seed(self, seed: int) -> None:
        self.rng.seed(seed)

    def draw(self) -> list[str]:
        """The operations of one image, in their order: op i drawn ``randint(min, max)`` times,
        then popped at uniformly random positions (the official sampling)."""
        pool = [op for op in self.ops for _ in range(self.rng.randint(*self.num))]
        order = []
        while pool:
            order.append(pool.pop(self.rng.randint(0, len(pool) - 1)))
        return order

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if self.resize_to:
            img = resize_short(img, self.resize_to)
        for op in self.draw():
            img = self._apply[op](img)
        return np.ascontiguousarray(img)

    # ------------------------------------------------------------------ the operations
    def jpeg(self, img: np.ndarray) -> np.ndarray:
        q = self.rng.randint(75, 100)
        if self.rng.random() < 0.5:
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(img)).save(buf, format="JPEG", quality=q)
            buf.seek(0)
            return np.asarray(Image.open(buf).convert("RGB"))
        from aigbench.imageops.codecs import reencode

        return reencode(np.ascontiguousarray(img), "jpeg", q)

    def random_resize(self, img: np.ndarray) -> np.ndarray:
        short = self.rng.randint(self.crop + 1, round(self.crop * 1.228))
        return resize_short(img, short, self.rng.choice((cv2.INTER_LINEAR, cv2.INTER_CUBIC)))

    def random_crop(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        if h < self.crop or w < self.crop:
            img = cv2.copyMakeBorder(
                np.ascontiguousarray(img), 0, max(0, self.crop - h), 0, max(0, self.crop - w), cv2.BORDER_REFLECT_101
            )
            h, w = img.shape[:2]
        y, x = self.rng.randint(0, h - self.crop), self.rng.randint(0, w - self.crop)
        return img[y : y + self.crop, x : x + self.crop]

    def random_resized_crop(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        area = h * w
        box = None
        for _ in range(10):  # torchvision's RandomResizedCrop.get_params
            target = area * self.rng.uniform(0.9, 1.0)
            ratio = math.exp(self.rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
            if 0 < cw <= w and 0 < ch <= h:
                box = (self.rng.randint(0, h - ch), self.rng.randint(0, w - cw), ch, cw)
                break
        if box is None:  # centre crop at the closest allowed ratio
            ratio = w / h
            ch, cw = (h, int(round(h * 4 / 3))) if ratio > 4 / 3 else (h, w)
            if ratio < 3 / 4:
                ch, cw = int(round(w / (3 / 4))), w
            box = ((h - ch) // 2, (w - cw) // 2, ch, cw)
        y, x, ch, cw = box
        return resize_to(img[y : y + ch, x : x + cw], self.crop, self.crop, self.rng.choice(RRC_INTERPOLATIONS))

    def rotation(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        angle = self.rng.uniform(-15.0, 15.0)
        return _warp(img, cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0))

    def translate(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        tx = int(round(self.rng.uniform(-0.1 * w, 0.1 * w)))
        ty = int(round(self.rng.uniform(-0.1 * h, 0.1 * h)))
        return _warp(img, np.float32([[1, 0, tx], [0, 1, ty]]))

    def shear(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        sx, sy = (math.tan(math.radians(self.rng.uniform(-15.0, 15.0))) for _ in range(2))
        cx, cy = (w - 1) / 2, (h - 1) / 2
        return _warp(img, np.float32([[1, sx, -sx * cy], [sy, 1, -sy * cx]]))

    def padding(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        left, right = (int(self.rng.uniform(0, 0.05) * w) for _ in range(2))
        top, bottom = (int(self.rng.uniform(0, 0.05) * h) for _ in range(2))
        grey = self.rng.randint(0, 255)
        padded = cv2.copyMakeBorder(
            np.ascontiguousarray(img), top, bottom, left, right, cv2.BORDER_CONSTANT, value=(grey, grey, grey)
        )
        return resize_to(padded, h, w)

    def cutout(self, img: np.ndarray) -> np.ndarray:
        if self.rng.random() >= 0.5:
            return img
        h, w = img.shape[:2]
        for _ in range(10):  # torchvision's RandomErasing.get_params
            target = h * w * self.rng.uniform(0.02, 0.06)
            ratio = math.exp(self.rng.uniform(math.log(0.3), math.log(3.3)))
            eh, ew = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
            if eh < h and ew < w:
                y, x = self.rng.randint(0, h - eh), self.rng.randint(0, w - ew)
                out = np.array(img)
                out[y : y + eh, x : x + ew] = self.rng.randint(0, 255)
                return out
        return img

    def __repr__(self) -> str:
        return (
            f"RandomStateAugmentation(crop={self.crop}, ops={list(self.ops)}, num={list(self.num)}, "
            f"resize_to={self.resize_to})"
        )
