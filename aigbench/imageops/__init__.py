"""Pure uint8 image operations, shared by datasets and robustness alike (importing neither)."""

from aigbench.imageops.io import decode_bytes, decode_image

__all__ = ["decode_bytes", "decode_image"]
