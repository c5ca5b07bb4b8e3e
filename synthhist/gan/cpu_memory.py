"""Keep freed memory in the process heap so large CPU tensors do not page-fault on every allocation."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory(limit_bytes: int = 2**30) -> bool:
    """glibc only: serve blocks up to limit_bytes from the heap and do not trim it; True if applied.

    By default glibc maps every block > 32 MiB afresh and unmaps it when freed, so each activation of the
    top synthesis blocks (64 MiB at 512 px) is page-faulted in anew; on CPU this can cost as much as the
    convolutions. Call once at the start of a generation process (it changes the allocator process-wide).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return all(libc.mallopt(opt, value) == 1 for opt, value in
                   ((M_MMAP_THRESHOLD, limit_bytes), (M_TRIM_THRESHOLD, limit_bytes), (M_TOP_PAD, limit_bytes // 4)))
    except (OSError, AttributeError):
        return False
