"""What every pool of layer-scanning worker processes needs: signals left to the parent, held
while the workers are forked, and a way to stop running workers at once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor


def leave_signals_to_the_parent() -> None:
    """Ctrl-C reaches the whole process group: a worker ignores it (and SIGTERM) instead of
    printing a traceback, and the parent, which stops with one line, kills its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # held since the fork (signals_held): now ignored
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait while workers are forked, so that none arrives in a worker before
    it ignores them (it would print a traceback); here they are delivered when this ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def kill_workers(pool: ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor has no public way to stop running workers before Python 3.14
    # (terminate_workers): kill them; the executor then sees them gone and winds down at once
    # (waiting for that keeps its exit hook from writing to a pipe it has closed).
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
    pool.shutdown(wait=True, cancel_futures=True)
