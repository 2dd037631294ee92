"""Image perturbations in the field's units. Each works on an RGB uint8 ``HxWx3`` array.

=============  ===========  ===================================  ==============
name           parameter    unit                                 clean strength
=============  ===========  ===================================  ==============
``blur``       ``sigma``    Gaussian sigma in pixels             0
``noise``      ``std``      Gaussian std on the 0-255 scale      0
``jpeg``       ``quality``  JPEG quality, 1-100                  100
``webp``       ``quality``  WebP quality, 1-100                  100
``resize``     ``scale``    scale factor, down then back up      1
``crop``       ``fraction`` centre crop, fraction of each side   1
``grayscale``  ``amount``   blend towards gray, 0-1              0
``social``     ``level``    social-media chain severity, 0-4     0
``aigenbench`` ``on``       AI-GenBench's evaluation chain, 0/1  0
=============  ===========  ===================================  ==============

``resize`` uses bilinear interpolation both ways; ``resize_nearest``, ``resize_bicubic``,
``resize_area`` and ``resize_lanczos`` name the others. A chain of perturbations is a GRID
key such as ``"jpeg:75>resize"``: the steps run left to right, each ``name:strength`` fixed
and the one step without a strength swept over the key's list. A chain fixed throughout
(``"jpeg:75>resize:0.5"``) takes ``[0, 1]``: off (clean) and on.

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

import threading
import zlib
from typing import Any, Optional, Sequence

import cv2
import numpy as np

from aigbench.imageops.codecs import reencode
from aigbench.registry import PERTURBATIONS

Box = tuple[int, int, int, int]  # y0, x0, y1, x1
NOISE_TILE = 64  # pixels: GaussianNoise draws its noise tile by tile
JPEG_MCU = 16  # pixels: a 4:2:0 JPEG's minimum coded unit


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

    def footprint(self) -> Optional[tuple[int, int]]:
        """How far the perturbation reaches: ``(margin, grid)`` when an output pixel depends only
        on the input within ``margin`` pixels of it, computed on blocks of a ``grid``-pixel
        lattice anchored at the image's top-left corner (JPEG: 16); None when an output pixel may
        depend on the whole image (the default)."""
        return None

    def region(self, img: np.ndarray, box: Box) -> Optional[np.ndarray]:
        """``self(img)[y0:y1, x0:x1]`` for ``box = (y0, x0, y1, x1)``, the part of ``img`` that
        evaluation keeps (a centre crop), computed from the box and the margin its pixels depend
        on (:meth:`footprint`), snapped outwards to the grid: the same pixels, for a fraction of
        the cost on a large photo. None when the perturbation is not local: the caller then
        perturbs the whole image."""
        y0, x0, y1, x1 = box
        reach = self._local_footprint()
        if reach is None:
            return None
        if self.is_clean:
            return img[y0:y1, x0:x1]
        margin, grid = reach
        h, w = img.shape[:2]
        ey0, ex0 = max(0, (y0 - margin) // grid * grid), max(0, (x0 - margin) // grid * grid)
        ey1, ex1 = min(h, -(-(y1 + margin) // grid) * grid), min(w, -(-(x1 + margin) // grid) * grid)
        out = self.apply(np.ascontiguousarray(img[ey0:ey1, ex0:ex1]))
        return out[y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0]

    def _local_footprint(self) -> Optional[tuple[int, int]]:
        """:meth:`footprint`, trusted only while ``apply`` is the one of the class that declared
        it and ``__call__`` is not overridden: a subclass that changes either may not be local."""
        declared = next(c for c in type(self).__mro__ if "footprint" in c.__dict__)
        if not self._unchanged_since(declared):
            return None
        return self.footprint()

    def _unchanged_since(self, cls: type) -> bool:
        return type(self).apply is cls.apply and type(self).__call__ is Perturbation.__call__

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

    def footprint(self) -> Optional[tuple[int, int]]:
        return (len(self._kernel) // 2, 1) if self._kernel is not None else None


@PERTURBATIONS.register_module("noise")
class GaussianNoise(Perturbation):
    """Additive Gaussian noise with std on the 0-255 scale, clipped to [0, 255].

    The noise is drawn in tiles of :data:`NOISE_TILE` pixels, each seeded from ``seed``, the
    tile's place and a CRC of its pixels: the same image gets the same noise whatever the batch
    order, worker or process, and the noise of a centre crop is drawn from the tiles it covers
    alone, without reading the rest of a large photo (:meth:`region`).
    """

    name, param, unit, clean_strength = "noise", "std", "Gaussian std, 0-255 scale", 0.0

    def apply(self, img: np.ndarray) -> np.ndarray:
        return self._noisy(img, (0, 0, *img.shape[:2]))

    def region(self, img: np.ndarray, box: Box) -> Optional[np.ndarray]:
        if not self._unchanged_since(GaussianNoise):  # a subclass's own apply: not known to be local
            return None
        return img[box[0] : box[2], box[1] : box[3]] if self.is_clean else self._noisy(img, box)

    def _noisy(self, img: np.ndarray, box: Box) -> np.ndarray:
        noise = _unit_noise(img, box, self.seed) * self.strength  # the same float32 sums as in place
        noise += img[box[0] : box[2], box[1] : box[3]]
        return np.clip(np.rint(noise, out=noise), 0, 255, out=noise).astype(np.uint8)


_LAST_NOISE: dict[str, Any] = {}  # the last image's unit noise: a sweep's strengths of one image draw it once
_NOISE_LOCK = threading.Lock()


def _unit_noise(img: np.ndarray, box: Box, seed: int) -> np.ndarray:
    """The standard-normal field of :class:`GaussianNoise` over ``box`` of ``img`` (read-only),
    drawn once for consecutive calls on the same pixels, box and seed (every strength of a
    robustness sweep): bit-identical to drawing it again, for a fraction of the time."""
    key = (seed, tuple(box), img.shape, zlib.crc32(np.ascontiguousarray(img)))
    with _NOISE_LOCK:
        if _LAST_NOISE.get("key") == key:
            return _LAST_NOISE["noise"]
    noise = _draw_noise(img, box, seed)
    noise.flags.writeable = False
    with _NOISE_LOCK:
        _LAST_NOISE.update(key=key, noise=noise)
    return noise


def _draw_noise(img: np.ndarray, box: Box, seed: int) -> np.ndarray:
    """Tile by tile, each seeded from ``seed``, the tile's place and a CRC of its pixels."""
    y0, x0, y1, x1 = box
    t = NOISE_TILE
    noise = np.empty((y1 - y0, x1 - x0, *img.shape[2:]), np.float32)
    for ty in range(y0 // t, -(-y1 // t)):
        for tx in range(x0 // t, -(-x1 // t)):
            pixels = img[ty * t : (ty + 1) * t, tx * t : (tx + 1) * t]  # the whole tile, clipped by the image
            rng = image_rng(pixels, seed, salt=(ty << 20) | tx)
            tile = rng.standard_normal(pixels.shape, dtype=np.float32)
            ty0, tx0 = max(y0, ty * t), max(x0, tx * t)  # the part of the tile inside the box
            ty1, tx1 = min(y1, ty * t + tile.shape[0]), min(x1, tx * t + tile.shape[1])
            noise[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0] = tile[
                ty0 - ty * t : ty1 - ty * t, tx0 - tx * t : tx1 - tx * t
            ]
    return noise


@PERTURBATIONS.register_module("jpeg")
class JPEG(Perturbation):
    """JPEG re-compression at ``quality`` (OpenCV/libjpeg, 4:2:0 chroma subsampling)."""

    name, param, unit, clean_strength = "jpeg", "quality", "JPEG quality, 1-100", 100.0

    def validate(self) -> None:
        if not 1 <= self.strength <= 100:
            raise ValueError(f"jpeg: quality must be in 1..100, got {self.strength:g}")

    def apply(self, img: np.ndarray) -> np.ndarray:
        return reencode(img, "jpeg", int(self.strength))

    def footprint(self) -> Optional[tuple[int, int]]:
        # 16x16 blocks (4:2:0), each coded alone; the decoder's chroma upsampling reads the
        # neighbouring chroma samples, within one block
        return (JPEG_MCU, JPEG_MCU)


@PERTURBATIONS.register_module("webp")
class WebP(Perturbation):
    """WebP re-compression at ``quality`` (OpenCV/libwebp, lossy)."""

    name, param, unit, clean_strength = "webp", "quality", "WebP quality, 1-100", 100.0

    def validate(self) -> None:
        if not 1 <= self.strength <= 100:
            raise ValueError(f"webp: quality must be in 1..100, got {self.strength:g}")

    def apply(self, img: np.ndarray) -> np.ndarray:
        return reencode(img, "webp", int(self.strength))


_INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}


@PERTURBATIONS.register_module("resize")
class Resize(Perturbation):
    """Resize by ``scale`` and back to the original size, with the same interpolation both ways
    (bilinear here; the ``resize_<interpolation>`` entries name the others). The detail lost on
    the way down is what a re-upload to a smaller size costs."""

    name, param, clean_strength, tb_step_scale = "resize", "scale", 1.0, 100
    interpolation = "bilinear"
    unit = "scale factor (down, then back up), bilinear"

    def validate(self) -> None:
        if not 0 < self.strength <= 4:
            raise ValueError(f"{self.name}: scale must be in (0, 4], got {self.strength:g}")

    def apply(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        flag = _INTERPOLATIONS[self.interpolation]
        small = cv2.resize(
            img, (max(1, round(w * self.strength)), max(1, round(h * self.strength))), interpolation=flag
        )
        return cv2.resize(small, (w, h), interpolation=flag)


for _interp in ("nearest", "bicubic", "area", "lanczos"):
    PERTURBATIONS.register_module(f"resize_{_interp}")(
        type(
            f"Resize{_interp.title()}",
            (Resize,),
            {
                "name": f"resize_{_interp}",
                "interpolation": _interp,
                "unit": f"scale factor (down, then back up), {_interp}",
            },
        )
    )


@PERTURBATIONS.register_module("crop")
class CenterCrop(Perturbation):
    """Keep the central ``fraction`` of each side (the image gets smaller; the model's resize or
    crop follows when the perturbation runs before resizing)."""

    name, param, unit, clean_strength, tb_step_scale = (
        "crop",
        "fraction",
        "centre crop, fraction of each side",
        1.0,
        100,
    )

    def validate(self) -> None:
        if not 0 < self.strength <= 1:
            raise ValueError(f"crop: fraction must be in (0, 1], got {self.strength:g}")

    def apply(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        ch, cw = max(1, round(h * self.strength)), max(1, round(w * self.strength))
        top, left = (h - ch) // 2, (w - cw) // 2
        return np.ascontiguousarray(img[top : top + ch, left : left + cw])


@PERTURBATIONS.register_module("grayscale")
class Grayscale(Perturbation):
    """Blend towards the image's luma (ITU-R BT.601, OpenCV's ``COLOR_RGB2GRAY``): 1 is fully gray,
    still three channels."""

    name, param, unit, clean_strength, tb_step_scale = "grayscale", "amount", "blend towards gray, 0-1", 0.0, 100

    def validate(self) -> None:
        if not 0 <= self.strength <= 1:
            raise ValueError(f"grayscale: amount must be in [0, 1], got {self.strength:g}")

    def apply(self, img: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        if self.strength >= 1:
            return gray
        return cv2.addWeighted(img, 1 - self.strength, gray, self.strength, 0)


def image_rng(img: np.ndarray, seed: int, salt: Optional[int] = None) -> np.random.Generator:
    """A generator seeded from the image's pixels, ``seed`` and ``salt``: the same image gets the
    same random draws whatever the batch order, worker or process."""
    crc = zlib.crc32(np.ascontiguousarray(img).data)
    return np.random.default_rng([seed, crc] if salt is None else [seed, salt, crc])


CHAIN_STEP, CHAIN_SEP = ":", ">"


def parse_chain(spec: str) -> list[tuple[str, Optional[float]]]:
    """``"jpeg:75>resize"`` -> ``[("jpeg", 75.0), ("resize", None)]``; a ValueError names the bad step."""
    steps: list[tuple[str, Optional[float]]] = []
    for part in spec.split(CHAIN_SEP):
        name, sep, value = part.strip().partition(CHAIN_STEP)
        if not name or (sep and not value):
            raise ValueError(f"chain {spec!r}: step {part!r} is not NAME or NAME:STRENGTH")
        try:
            steps.append((name, float(value) if sep else None))
        except ValueError:
            raise ValueError(f"chain {spec!r}: strength {value!r} of step {name!r} is not a number") from None
    return steps


class Chain(Perturbation):
    """Several perturbations applied left to right (a GRID key such as ``"jpeg:75>resize"``).

    The one step written without a strength is swept: this point's strength, parameter and unit
    are that step's. A chain fixed throughout has strength 1 (on) or 0 (clean, nothing applied).
    """

    def __init__(self, spec: str, strength: float, seed: int = 0) -> None:
        steps = parse_chain(spec)
        open_steps = [i for i, (_, s) in enumerate(steps) if s is None]
        if len(open_steps) > 1:
            raise ValueError(f"chain {spec!r}: only one step may be left without a strength (the swept one)")
        self.spec, self.swept = spec, (open_steps[0] if open_steps else None)
        self.steps: list[Perturbation] = []
        for i, (name, value) in enumerate(steps):
            cls = PERTURBATIONS.get(name)
            step = cls(strength if i == self.swept else value, seed=seed + i, name=name)
            self.steps.append(step)
        if self.swept is None:
            self.param, self.unit, self.clean_strength = "on", "1 = chain applied, 0 = clean", 0.0
        else:
            s = self.steps[self.swept]
            self.param, self.unit, self.clean_strength = s.param, f"{s.name}: {s.unit}", s.clean_strength
            self.tb_step_scale = s.tb_step_scale
        super().__init__(strength, seed, name=spec)

    @property
    def is_clean(self) -> bool:
        """Clean when nothing would change the image: the fixed chain switched off, or every step
        (the swept one at this strength included) at its clean strength."""
        if self.swept is None:
            return self.strength == 0.0
        return all(step.is_clean for step in self.steps)

    def validate(self) -> None:
        if self.swept is None and self.strength not in (0.0, 1.0):
            raise ValueError(f"chain {self.spec!r} has every strength fixed: list [0, 1] (off, on)")

    @property
    def folder(self) -> str:
        safe = self.spec.replace(CHAIN_SEP, "+").replace(CHAIN_STEP, "=").replace(" ", "")
        return f"{safe}/{self.param}_{self.strength:g}"

    def apply(self, img: np.ndarray) -> np.ndarray:
        for step in self.steps:
            img = step(img)
        return img


# AI-GenBench's mandatory evaluation chain (training_and_evaluation/lightning_data_modules/
# ai_genbench_pipeline.py, BSD-3-Clause) applies each step at random with a fixed probability
# (grayscale 0.1, JPEG 0.5 / 0.2 / 0.1, noise 0.3, resized crop 0.25) at one strength: JPEG
# quality 50 or 100 (the ``aigenbench`` perturbation), GaussNoise std 0.015-0.075 of 255 (3.8-19.1
# levels), RandomResizedCrop scale 0.5-1, ratio 0.9-1.11, to a square side of 256-512 px. In
# ``social`` every step runs at every level (grayscale at AI-GenBench's probability), with ranges
# that widen up to AI-GenBench's at level 4 (JPEG quality 50-100).
SOCIAL_LEVELS: Sequence[dict] = (
    {},
    {"gray_p": 0.1, "quality": (90, 100), "noise": (0.0, 3.8), "crop_scale": (0.9, 1.0)},
    {"gray_p": 0.1, "quality": (75, 100), "noise": (3.8, 7.6), "crop_scale": (0.75, 1.0)},
    {"gray_p": 0.1, "quality": (60, 100), "noise": (3.8, 12.0), "crop_scale": (0.6, 1.0)},
    {"gray_p": 0.1, "quality": (50, 100), "noise": (3.8, 19.1), "crop_scale": (0.5, 1.0)},
)
SOCIAL_MAX_SIDE = 1080
SOCIAL_CROP_SIDE = (256, 512)
SOCIAL_CROP_RATIO = (0.9, 1 / 0.9)
SOCIAL_INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)


def random_resized_square(img: np.ndarray, rng: np.random.Generator, scale: tuple[float, float]) -> np.ndarray:
    """AI-GenBench's ``RandomResizedCropVariable``: a crop of ``scale`` of the area (aspect
    0.9-1.11) resized to a square of 256-512 px, bilinear, bicubic or Lanczos."""
    h, w = img.shape[:2]
    area = rng.uniform(*scale) * h * w
    ratio = np.exp(rng.uniform(*np.log(SOCIAL_CROP_RATIO)))
    cw = int(min(w, max(1, round(np.sqrt(area * ratio)))))
    ch = int(min(h, max(1, round(np.sqrt(area / ratio)))))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    side = int(rng.integers(SOCIAL_CROP_SIDE[0], SOCIAL_CROP_SIDE[1] + 1))
    flag = SOCIAL_INTERPOLATIONS[int(rng.integers(len(SOCIAL_INTERPOLATIONS)))]
    return cv2.resize(img[top : top + ch, left : left + cw], (side, side), interpolation=flag)


@PERTURBATIONS.register_module("social")
class SocialMedia(Perturbation):
    """The chain an image goes through on social media, after AI-GenBench's mandatory evaluation
    chain: central crop to at most 1080 px per side, grayscale (p = 0.1), JPEG, Gaussian noise,
    JPEG again, a random resized crop to a square of 256-512 px (bilinear, bicubic or Lanczos)
    and a last JPEG. AI-GenBench applies each step at random at one strength; here ``level``
    1-4 applies every step with ranges that widen up to AI-GenBench's own at level 4
    (:data:`SOCIAL_LEVELS`). Every draw is seeded from the image and ``seed``, so a level is
    the same set of images on every run."""

    name, param, unit, clean_strength = "social", "level", "social-media chain severity, 0-4", 0.0

    def validate(self) -> None:
        if self.strength not in (0, 1, 2, 3, 4):
            raise ValueError(f"social: level must be 0, 1, 2, 3 or 4, got {self.strength:g}")

    def apply(self, img: np.ndarray) -> np.ndarray:
        cfg = SOCIAL_LEVELS[int(self.strength)]
        rng = image_rng(img, self.seed, salt=int(self.strength))
        h, w = img.shape[:2]
        ch, cw = min(h, SOCIAL_MAX_SIDE), min(w, SOCIAL_MAX_SIDE)
        if (ch, cw) != (h, w):
            top, left = (h - ch) // 2, (w - cw) // 2
            img = np.ascontiguousarray(img[top : top + ch, left : left + cw])
        if rng.random() < cfg["gray_p"]:
            img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)

        def jpeg(x: np.ndarray) -> np.ndarray:
            lo, hi = cfg["quality"]
            return reencode(x, "jpeg", int(rng.integers(lo, hi + 1)))

        img = jpeg(img)
        std = rng.uniform(*cfg["noise"])
        noisy = img.astype(np.float32) + rng.standard_normal(img.shape, dtype=np.float32) * std
        img = jpeg(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
        return jpeg(random_resized_square(img, rng, cfg["crop_scale"]))


def _pillow_jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


@PERTURBATIONS.register_module("aigenbench")
class AIGenBenchChain(Perturbation):
    """AI-GenBench's mandatory evaluation distortions, as its pipeline applies them (each step at
    random, at its own probability): a random crop to at most 1080 px per side; grayscale (p 0.1);
    JPEG (p 0.5) with OpenCV or Pillow at quality 50 or 100; Gaussian noise (p 0.3) with std
    ~ U[0.015, 0.075] x 255 per pixel and channel; JPEG again (p 0.2); a random resized crop
    (p 0.25, scale 0.5-1, ratio 0.9-1.11) to a square of 256-512 px, bilinear, bicubic or Lanczos;
    a last JPEG (p 0.1). Strength 1 applies it, 0 leaves the image; the draws are seeded from the
    image (AI-GenBench seeds them from the image's index), so a set is distorted the same way on
    every run. ``social`` is the same chain as a severity sweep."""

    name, param, unit, clean_strength = "aigenbench", "on", "1 = AI-GenBench's chain applied, 0 = clean", 0.0

    def validate(self) -> None:
        if self.strength not in (0.0, 1.0):
            raise ValueError(f"aigenbench: strength must be 0 (off) or 1 (on), got {self.strength:g}")

    def apply(self, img: np.ndarray) -> np.ndarray:
        rng = image_rng(img, self.seed, salt=4321)
        h, w = img.shape[:2]
        ch, cw = min(h, SOCIAL_MAX_SIDE), min(w, SOCIAL_MAX_SIDE)
        if (ch, cw) != (h, w):
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            img = np.ascontiguousarray(img[top : top + ch, left : left + cw])
        if rng.random() < 0.1:
            img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)

        def maybe_jpeg(x: np.ndarray, p: float) -> np.ndarray:
            if rng.random() >= p:
                return x
            quality = int(rng.choice([50, 100]))  # AI-GenBench's choice of (50, 101), both encoders cap at 100
            return reencode(x, "jpeg", quality) if rng.random() < 0.5 else _pillow_jpeg(x, quality)

        img = maybe_jpeg(img, 0.5)
        if rng.random() < 0.3:
            std = rng.uniform(0.015, 0.075) * 255
            noisy = img.astype(np.float32) + rng.standard_normal(img.shape, dtype=np.float32) * std
            img = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        img = maybe_jpeg(img, 0.2)
        if rng.random() < 0.25:
            img = random_resized_square(img, rng, (0.5, 1.0))
        return maybe_jpeg(img, 0.1)
