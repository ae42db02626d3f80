"""``--timeout``: a wall-clock budget per target, so one image cannot stall a batch.

The budget is an interval timer (SIGALRM); when it runs out, :class:`ScanTimeout` is raised in
the main thread wherever the scan is, so every ``finally`` on the way out runs: worker processes
are killed (scan/layers.py), files and the cache's open transaction are closed or rolled back.
The target then reports one error line and the next target starts. Outside the main thread
(an embedding caller's worker thread) signals cannot be used, and no budget is kept.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from layerleak.errors import LayerleakError


class ScanTimeout(LayerleakError):
    """A target took longer than ``--timeout``."""


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise ScanTimeout(f"stopped after {seconds:g} s (--timeout); this target's results are not reported")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
