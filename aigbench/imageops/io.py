"""Decoding image files to RGB uint8 ``HxWx3`` arrays.

**EXIF orientation is ignored**, as in the field's forensic pipelines (CNNSpot, UnivFD, NPR,
GenImage, DRCT load with ``PIL.Image.open(...).convert("RGB")`` and no ``exif_transpose``):
the pixels are used as stored. Rotating would resample nothing, but it would make a
camera's portrait photos differ in shape from what every published number was computed on.
OpenCV decodes first (fast); a file that it cannot decode but Pillow can (GIF, some TIFF
and WebP variants) goes through Pillow, first frame, converted to RGB.
"""

from __future__ import annotations

import io
from typing import Optional

import cv2
import numpy as np

_CV_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def decode_bytes(data: bytes | np.ndarray) -> Optional[np.ndarray]:
    """RGB uint8 array of encoded image bytes, or None when neither OpenCV nor Pillow decodes them."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buf.size == 0:
        return None
    img = cv2.imdecode(buf, _CV_FLAGS)
    if img is not None:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return _decode_pillow(buf.tobytes())


def _decode_pillow(data: bytes) -> Optional[np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.seek(0)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, EOFError, SyntaxError):
        return None


def decode_image(path: str) -> Optional[np.ndarray]:
    """RGB uint8 array of the file at ``path``, or None when it cannot be read or decoded."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    return decode_bytes(data)


_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def jpeg_size(path: str) -> Optional[tuple[int, int]]:
    """``(height, width)`` of a JPEG file from its header alone; None for any other file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return (im.size[1], im.size[0]) if im.format in ("JPEG", "MPO") else None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, EOFError, SyntaxError):
        return None


def reduced_factor(height: int, width: int, min_side: int) -> int:
    """The largest libjpeg DCT scale (8, 4, 2, else 1) that keeps at least ``min_side`` pixels on
    each side of a ``height x width`` JPEG."""
    return next((f for f in (8, 4, 2) if height // f >= min_side and width // f >= min_side), 1)


def decode_image_reduced(path: str, min_side: int) -> tuple[Optional[np.ndarray], int]:
    """A JPEG decoded at the DCT scale of :func:`reduced_factor` (libjpeg's scaled decode, through
    OpenCV's ``IMREAD_REDUCED_COLOR_<f>``), and that factor; any other file, or a JPEG too small to
    reduce, decoded fully (factor 1). ``--fast_decode``: never the default, the pixels are not
    those of a full decode followed by the resize."""
    size = jpeg_size(path)
    factor = reduced_factor(*size, min_side) if size else 1
    if factor == 1:
        return decode_image(path), 1
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None, 1
    img = cv2.imdecode(data, _REDUCED[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        return decode_bytes(data), 1
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), factor
