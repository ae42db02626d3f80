"""A progress bar on stderr for long scans, only when stderr is a terminal (rich)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from layerleak.report.escape import escape
from layerleak.scan.layers import ProgressHook

REDRAW = 0.1  # seconds between redraws


@contextmanager
def layer_progress(enabled: bool) -> Iterator[ProgressHook | None]:
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    # rich is imported only for a terminal: a scan in CI or a script starts 0.07 s sooner.
    from rich.console import Console
    from rich.markup import escape as markup_escape
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    # Redrawn from the scanning thread, not by rich's refresh thread: with no other thread
    # running, layer workers can be forked (parallel._pool), which starts them at once.
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
        auto_refresh=False,
    )
    last_redraw = 0.0

    def hook(key: str, size: int | None) -> Callable[[int], None]:
        label = markup_escape(escape(key.rsplit("/", 1)[-1])[:16])  # a name from the image
        task = progress.add_task(label, total=None if size is None else None)

        def advance(n: int) -> None:
            nonlocal last_redraw
            progress.advance(task, n)
            now = time.monotonic()
            if now - last_redraw >= REDRAW:
                last_redraw = now
                progress.refresh()

        return advance

    with progress:
        yield hook
