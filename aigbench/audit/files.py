"""One file at a time: what it holds (format, size, colour mode, estimated JPEG quality) and
whether it is whole.

:func:`inspect_file` reads a file (or a ``<file>#<row>`` row of a parquet/Arrow table) once:
the content hash and the image header come from the same bytes. Only headers are parsed where
the format allows a cheap integrity check (:mod:`aigbench.imageops.integrity`: a JPEG reaches
its EOI marker, a PNG its IEND chunk, whose chunk CRCs are verified, a GIF its trailer, a WebP
has all the bytes its RIFF header announces); a file that fails the check, and a file in any
other format, is decoded fully. :func:`estimate_jpeg_quality` reads the quality from the
quantisation tables. Nothing here imports torch.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import os
import warnings
from collections import Counter
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from aigbench.datasets.layouts import Sample
from aigbench.datasets.sources import ROW_PATH, read_row_bytes
from aigbench.imageops.integrity import END_WORDS, HEAD_BYTES, TAIL_BYTES, ends_as_whole, ends_complete, sniff_format

PROBLEM_KINDS = ("missing", "unreadable", "empty", "not an image", "truncated", "undecodable")
# ITU-T T.81 Annex K tables in natural (row-major) order: libjpeg scales them by quality.
IJG_LUMINANCE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
IJG_CHROMINANCE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    *((99,) * 8,) * 4,
)


def ijg_table(quality: int, base: Sequence[Sequence[int]] = IJG_LUMINANCE) -> np.ndarray:
    """The 64 quantisation steps (natural order) that libjpeg's ``jpeg_set_quality(quality,
    force_baseline=TRUE)`` derives from an Annex K table."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    steps = (np.asarray(base, dtype=np.int64).reshape(64) * scale + 50) // 100
    return np.clip(steps, 1, 255)


_QUALITIES = np.arange(1, 101)
_LUMA_TABLES = np.stack([ijg_table(int(q), IJG_LUMINANCE) for q in _QUALITIES])  # 100 x 64
_CHROMA_TABLES = np.stack([ijg_table(int(q), IJG_CHROMINANCE) for q in _QUALITIES])
_quality_cache: dict[tuple, int] = {}


def estimate_jpeg_quality(quantization: Mapping[int, Sequence[int]]) -> int:
    """The libjpeg quality 1..100 whose scaled standard tables are closest to a file's
    quantisation tables (Pillow's ``im.quantization``: table id → 64 steps in natural order).

    The distance is the sum of absolute differences over the luminance table (id 0) and, when
    present, the chrominance table (id 1). Files from libjpeg, libjpeg-turbo, Pillow, OpenCV
    and most tools built on them match one quality exactly; tables of other encoders (cameras,
    Photoshop) get the nearest libjpeg quality, hence "q≈" in the report.
    """
    luma = quantization.get(0)
    if luma is None or len(luma) != 64:
        raise ValueError("expected a 64-step luminance quantisation table under id 0")
    chroma = quantization.get(1)
    key = (tuple(luma), tuple(chroma) if chroma is not None and len(chroma) == 64 else ())
    cached = _quality_cache.get(key)
    if cached is not None:
        return cached
    dist = np.abs(_LUMA_TABLES - np.asarray(luma, dtype=np.int64)).sum(axis=1)
    if key[1]:
        dist = dist + np.abs(_CHROMA_TABLES - np.asarray(chroma, dtype=np.int64)).sum(axis=1)
    quality = int(_QUALITIES[int(np.argmin(dist))])
    if len(_quality_cache) < 4096:
        _quality_cache[key] = quality
    return quality


class FileInfo(NamedTuple):
    """What one file holds. ``problem`` is "" for a readable image, else one of
    :data:`PROBLEM_KINDS`, and ``detail`` says why."""

    size: int
    digest: str
    format: str = ""
    quality: int = -1  # estimated JPEG quality; -1 when not a JPEG
    width: int = 0
    height: int = 0
    mode: str = ""
    problem: str = ""
    detail: str = ""


def _broken(fmt: str, data: bytes, error: BaseException) -> tuple[str, str]:
    """Classify a file of a known format that Pillow could not open or decode."""
    message = str(error) or type(error).__name__
    if ends_complete(fmt, data) is False:
        return "truncated", f"{fmt} with {END_WORDS[fmt]}; Pillow: {message}"
    if "truncated" in message.lower():
        return "truncated", f"{fmt}; Pillow: {message}"
    return "undecodable", f"{fmt}; Pillow: {message}"


_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, MemoryError)


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _header(info: FileInfo, im: Any, fmt: str) -> FileInfo:
    """``info`` with what an opened image's header says: format, size, colour mode and, for a
    JPEG, its estimated quality (unknown, -1, for a non-standard table layout)."""
    info = info._replace(format=fmt, width=im.size[0], height=im.size[1], mode=im.mode)
    if fmt in ("JPEG", "MPO") and getattr(im, "quantization", None):
        try:
            info = info._replace(quality=estimate_jpeg_quality(im.quantization))
        except ValueError:
            pass
    return info


def inspect_bytes(data: bytes, hashed: bool = True) -> FileInfo:
    """Hash (unless not ``hashed``: ``digest`` ""), header and integrity of one encoded file;
    decodes pixels only when needed (see the module docstring)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        return FileInfo(0, _digest(data), problem="empty", detail="0 bytes")
    info = FileInfo(len(data), _digest(data) if hashed else "")
    sniffed = sniff_format(data[:HEAD_BYTES])
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as e:
        if sniffed:
            problem, detail = _broken(sniffed, data, e)
            return info._replace(format=sniffed, problem=problem, detail=detail)
        return info._replace(problem="not an image", detail=f"no image format recognised; starts with {data[:16]!r}")
    except Image.DecompressionBombError as e:
        return info._replace(format=sniffed, problem="undecodable", detail=f"Pillow: {e}")
    except _PIL_ERRORS as e:
        problem, detail = _broken(sniffed or "image", data, e)
        return info._replace(format=sniffed, problem=problem, detail=detail)
    with im:
        fmt = im.format or sniffed or "unknown"
        info = _header(info, im, fmt)
        complete = ends_complete(fmt, data)
        try:
            if complete and fmt == "PNG":
                im.verify()  # chunk CRCs, without decompressing
            elif not complete:
                im.load()  # no cheap check, or it failed: decode to find out
        except _PIL_ERRORS as e:
            problem, detail = _broken(fmt, data, e)
            return info._replace(problem=problem, detail=detail)
    return info


def inspect_file(path: str, hashed: bool = True) -> FileInfo:
    """:func:`inspect_bytes` of the file at ``path`` (or of the ``<file>#<row>`` row of a
    parquet/Arrow table); a missing or unreadable file is a problem, not an exception. Not
    ``hashed`` (a file whose size no other file has cannot have a copy): a JPEG whose first and
    last bytes show it whole is read no further than its header; other files are read whole."""
    row = ROW_PATH.match(path)
    if row is not None:
        if not os.path.isfile(row.group("file")):
            return FileInfo(0, "", problem="missing", detail=f"no such file {row.group('file')}")
        data = read_row_bytes(path)
        if data is None:
            return FileInfo(0, "", problem="unreadable", detail="the row has no image bytes or cannot be read")
        return inspect_bytes(bytes(data), hashed)
    try:
        with open(path, "rb") as f:
            if not hashed:
                info = _jpeg_header(f)
                if info is not None:
                    return info
                f.seek(0)
            data = f.read()
    except FileNotFoundError:
        return FileInfo(0, "", problem="missing", detail="no such file")
    except OSError as e:
        return FileInfo(0, "", problem="unreadable", detail=e.strerror or str(e))
    return inspect_bytes(data, hashed)


def _jpeg_header(f: Any) -> Optional[FileInfo]:
    """A whole JPEG's :class:`FileInfo` (no digest) from its header and its last bytes; None for
    anything else (read whole then)."""
    from PIL import Image

    head = f.read(HEAD_BYTES)
    size = os.fstat(f.fileno()).st_size
    if sniff_format(head) not in ("JPEG", "MPO") or size <= len(head):
        return None
    f.seek(max(0, size - TAIL_BYTES))
    if not ends_as_whole("JPEG", head, f.read(), size):
        return None
    f.seek(0)
    try:
        with Image.open(f) as im:
            return _header(FileInfo(size, ""), im, im.format or "JPEG")
    except _PIL_ERRORS:
        return None


def inspect_all(paths: Sequence[str], progress: bool, workers: Optional[int]) -> list[FileInfo]:
    """:func:`inspect_file` of every path, in order, on a thread pool (file reads, hashing and
    Pillow's decoders release the GIL), with a tqdm bar when ``progress``. Only the files whose
    byte size another file shares are hashed (only they can be copies); the others are read no
    further than their header where the format allows."""
    from tqdm import tqdm

    workers = workers or min(8, 2 * (os.cpu_count() or 1))
    if any(ROW_PATH.match(p) for p in paths):
        workers = 1  # table rows: read in order, one row group at a time (their caches are not thread-safe)
    sizes = [_size(p) for p in paths]
    shared = {s for s, n in Counter(sizes).items() if n > 1 or s is None}

    def one(k: int) -> FileInfo:
        return inspect_file(paths[k], hashed=sizes[k] in shared)

    out: list[FileInfo] = []
    bar = tqdm(total=len(paths), desc="checking", unit="img", disable=not progress, leave=False, dynamic_ncols=True)
    with warnings.catch_warnings(), bar:
        warnings.simplefilter("ignore")  # Pillow's warnings about odd files: the report has the problems
        if workers <= 1:
            for k in range(len(paths)):
                out.append(one(k))
                bar.update()
        else:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                for start in range(0, len(paths), 4096):  # bounded batches: no million pending futures
                    for info in pool.map(one, range(start, min(start + 4096, len(paths)))):
                        out.append(info)
                        bar.update()
    return out


def extension_mismatches(samples: Sequence[Sample], infos: Sequence[FileInfo]) -> list[dict[str, str]]:
    """Readable files whose extension names another format than their content (a .png that is a JPEG)."""
    out = []
    for s, i in zip(samples, infos):
        if i.problem or not i.format or ROW_PATH.match(s.path):
            continue
        ext = os.path.splitext(s.path)[1].lower().lstrip(".")
        expected = {"jpg": "JPEG", "jpeg": "JPEG", "jfif": "JPEG", "tif": "TIFF", "pgm": "PPM"}.get(ext, ext.upper())
        if i.format != expected and not (i.format == "MPO" and expected == "JPEG"):
            out.append({"path": s.path, "extension": ext, "format": i.format})
    return out


def _size(path: str) -> Optional[int]:
    """The byte size of a file (None: a table row or an unreadable file, always hashed)."""
    if ROW_PATH.match(path):
        return None
    try:
        return os.stat(path).st_size
    except OSError:
        return None
