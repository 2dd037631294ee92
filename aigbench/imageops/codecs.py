"""Lossy re-encoding of RGB uint8 ``HxWx3`` arrays (OpenCV's libjpeg / libwebp)."""

from __future__ import annotations

import cv2
import numpy as np

_ENCODE = {
    "jpeg": (".jpg", cv2.IMWRITE_JPEG_QUALITY),
    "webp": (".webp", cv2.IMWRITE_WEBP_QUALITY),
}


def reencode(img: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    """``img`` encoded as ``fmt`` (``jpeg``: 4:2:0 chroma subsampling; ``webp``) at ``quality``
    (1-100) and decoded again."""
    ext, flag = _ENCODE[fmt]
    ok, buf = cv2.imencode(ext, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [flag, int(quality)])
    if not ok:
        raise RuntimeError(f"{fmt} encoding failed at quality {quality}")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


class FormatAlign:
    """Re-encode every image in one format before any other processing (``--align_format
    jpeg:96``): the format-aligned evaluation of Grommelt et al. 2024 ("Fake or JPEG?") and DDA,
    which takes away the shortcut of reals and fakes stored in different formats."""

    def __init__(self, spec: str) -> None:
        fmt, _, quality = spec.strip().lower().partition(":")
        fmt = {"jpg": "jpeg"}.get(fmt, fmt)
        if fmt not in _ENCODE or not quality.isdigit() or not 1 <= int(quality) <= 100:
            raise ValueError(f"--align_format takes jpeg:QUALITY or webp:QUALITY with QUALITY in 1..100, got {spec!r}")
        self.format, self.quality = fmt, int(quality)
        self.spec = f"{fmt}:{self.quality}"

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return reencode(img, self.format, self.quality)

    def __repr__(self) -> str:
        return f"FormatAlign({self.spec!r})"
