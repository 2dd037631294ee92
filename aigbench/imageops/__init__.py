"""Pure uint8 image operations, shared by datasets and robustness alike (importing neither)."""

from aigbench.imageops.codecs import FormatAlign, reencode
from aigbench.imageops.io import decode_bytes, decode_image

__all__ = ["FormatAlign", "decode_bytes", "decode_image", "reencode"]
