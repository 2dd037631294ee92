"""Whether an encoded image file is whole: what its first bytes announce and how it ends.

A file cut short (an interrupted download or copy) may still decode: the decoder fills or
drops what is missing, with at most a warning. Decoding alone therefore cannot tell such a
file from a whole one; its structure can, cheaply:

* a JPEG's main image ends with the end-of-image marker ``FF D9`` after its first scan (found by
  walking the marker segments, so that an EXIF thumbnail's own ``FF D9`` does not count, and
  bytes appended after the marker do not make a whole file look cut);
* a PNG holds its ``IEND`` chunk;
* a GIF's blocks end with the trailer byte ``;``;
* a WebP holds all the bytes that its RIFF header announces.

Other formats (BMP, TIFF, AVIF, ...) have no such check here: :func:`missing_end` says None.
Nothing here decodes pixels, and :mod:`aigbench.imageops.io` is unchanged by it.
"""

from __future__ import annotations

import os
from typing import Optional

JPEG_EOI = b"\xff\xd9"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
HEAD_BYTES = 16  # enough for every signature that :func:`sniff_format` reads
TAIL_BYTES = len(PNG_IEND)

END_WORDS = {
    "JPEG": "no end-of-image marker (FFD9)",
    "MPO": "no end-of-image marker (FFD9)",
    "PNG": "no IEND chunk",
    "GIF": "no trailer byte",
    "WEBP": "fewer bytes than its RIFF header announces",
}


def sniff_format(data: bytes) -> str:
    """The image format that the first bytes of a file announce (Pillow's names: ``JPEG``,
    ``PNG``, ``GIF``, ``WEBP``, ``BMP``, ``TIFF``, ``PPM``, ``AVIF``), or "" when none of these."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if len(data) > 2 and data[0:1] == b"P" and data[1:2] in b"123456" and data[2:3].isspace():
        return "PPM"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "AVIF"
    return ""


def ends_as_whole(fmt: str, head: bytes, tail: bytes, size: int) -> Optional[bool]:
    """The cheap test on the first and last bytes only: True when the file ends as a whole ``fmt``
    file does, False when it does not (it may still hold its end further in), None when ``fmt``
    has no such test."""
    if fmt in ("JPEG", "MPO"):
        return tail.endswith(JPEG_EOI)
    if fmt == "PNG":
        return tail.endswith(PNG_IEND)
    if fmt == "GIF":
        return tail.endswith(b";")
    if fmt == "WEBP":
        return size >= int.from_bytes(head[4:8], "little") + 8
    return None


def _jpeg_has_end(data: bytes) -> bool:
    """Whether the main image of a JPEG reaches its end-of-image marker: the marker segments are
    walked by their lengths up to the first scan (APPn segments, EXIF thumbnails included, are
    skipped whole), then the first ``FF D9`` after it is the end (inside entropy-coded data an
    ``FF`` byte is always followed by ``00`` or a restart marker)."""
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return False  # not a marker where one must be: a damaged file
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data (and any further scans) follow
            return data.find(JPEG_EOI, pos + 2 + length) != -1
        pos += 2 + length
    return False


def _gif_has_end(data: bytes) -> bool:
    """Whether a GIF's blocks reach the trailer byte: header, screen descriptor and colour
    table, then extensions and images (each a chain of sub-blocks) until ``;``."""
    n = len(data)
    if n < 13:
        return False
    pos = 13 + ((3 << ((data[10] & 7) + 1)) if data[10] & 0x80 else 0)
    while pos < n:
        block = data[pos]
        if block == 0x3B:
            return True
        if block == 0x21:  # extension: label, then sub-blocks
            pos += 2
        elif block == 0x2C:  # image descriptor, local colour table, LZW code size, then sub-blocks
            if pos + 10 > n:
                return False
            flags = data[pos + 9]
            pos += 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0) + 1
        else:
            return False
        while pos < n and data[pos]:
            pos += data[pos] + 1
        pos += 1  # the zero-length terminator
    return False


def ends_complete(fmt: str, data: bytes) -> Optional[bool]:
    """True when ``data``, a file in format ``fmt`` (Pillow's name), holds its end (see the module
    docstring), False when it is cut short, None when ``fmt`` has no check here."""
    whole = ends_as_whole(fmt, data[:HEAD_BYTES], data[-TAIL_BYTES:], len(data))
    if whole is None or whole:
        return whole
    if fmt in ("JPEG", "MPO"):
        return _jpeg_has_end(data)
    if fmt == "PNG":
        return PNG_IEND in data
    if fmt == "GIF":
        return _gif_has_end(data)
    return False


def missing_end(data: bytes) -> Optional[str]:
    """Why the encoded file ``data`` is cut short (e.g. ``"JPEG with no end-of-image marker
    (FFD9)"``), or None when it is whole or its format has no check here. Bytes appended after a
    whole image do not make it cut short."""
    fmt = sniff_format(data[:HEAD_BYTES])
    return f"{fmt} with {END_WORDS[fmt]}" if ends_complete(fmt, data) is False else None


def file_missing_end(path: str) -> Optional[str]:
    """:func:`missing_end` of the file at ``path``, reading only its first and last bytes when
    they show a whole file (the usual case), the whole file otherwise. An unreadable file is
    None: this says nothing about files that cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read()
            whole = ends_as_whole(sniff_format(head), head, tail, size)
            if whole is None or whole:
                return None
            f.seek(0)
            data = f.read()
    except OSError:
        return None
    return missing_end(data)
