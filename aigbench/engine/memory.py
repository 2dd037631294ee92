"""Giving freed heap memory back to the system during long evaluations.

glibc raises its mmap threshold after large blocks are freed, so that later batch-sized tensors
come from the heap; small long-lived allocations between them then pin the heap, and a
process evaluating 100 000 images grew by 1.3 GB although it kept only scores
(``benchmarks/eval_memory.py``). ``malloc_trim(0)`` returns the free pages inside the heap to
the system; the loops call it every :data:`TRIM_EVERY` batches. Elsewhere (musl, macOS,
Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Any, Optional

TRIM_EVERY = 64


@lru_cache(maxsize=1)
def _libc() -> Optional[Any]:
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None


def trim_heap() -> bool:
    """Return free heap pages to the system (glibc); True when it could."""
    lib = _libc()
    return bool(lib.malloc_trim(0)) if lib is not None else False
