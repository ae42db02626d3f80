"""Keep the process's memory near what it holds, not what it once held.

glibc serves allocations below its mmap threshold from the heap, and raises that threshold
dynamically (up to 32 MiB) after large blocks are freed; the 2-8 MiB buffers a scan allocates and
frees for every large file then stay in the heap, fragmented, and resident. Pinning the threshold
at 4 MiB gives such buffers back to the system as soon as they are freed. Elsewhere (musl, macOS)
this is a no-op.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 * 1024 * 1024


def return_large_buffers() -> bool:
    """True when the allocator was told; never raises."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        # the process's own symbols, libc's among them: find_library("c") would run ldconfig
        # in a subprocess at every start-up
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False
