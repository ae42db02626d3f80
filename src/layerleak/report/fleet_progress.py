"""The progress display of a fleet job: one bar per phase (enumerate -> layers -> images), with
counts, bytes, an ETA, on stderr, only when stderr is a terminal (rich)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from layerleak.scan.fleet import FleetProgress

REDRAW = 0.2  # seconds between redraws


class _Rich(FleetProgress):
    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.task: Any = None
        self.bytes = 0
        self.last = 0.0

    def phase(self, name: str, total: int | None) -> None:
        if self.task is not None:
            self.progress.update(
                self.task, completed=self.progress.tasks[-1].total or self.progress.tasks[-1].completed
            )
        self.task = self.progress.add_task(name, total=total, nbytes="")
        self._redraw(force=True)

    def advance(self, n: int = 1, nbytes: int = 0) -> None:
        self.bytes += nbytes
        self.progress.update(self.task, advance=n, nbytes=f"{self.bytes / 1e6:,.0f} MB" if self.bytes else "")
        self._redraw()

    def _redraw(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= REDRAW:
            self.last = now
            self.progress.refresh()


@contextmanager
def fleet_progress(enabled: bool) -> Iterator[FleetProgress | None]:
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    # Redrawn from the job's own thread (no refresh thread): layer workers can then be forked.
    progress = Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[nbytes]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        auto_refresh=False,
    )
    with progress:
        yield _Rich(progress)
