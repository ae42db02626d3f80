"""A progress bar on stderr for long scans, only when stderr is a terminal (rich).

A bar's label is never text from the image (a member name could hold anything, control
characters or a secret): it is the first 12 hex digits of the layer's sha256 digest when its key
holds one, else ``layer N``, counted in the order layers start.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from layerleak.scan.layers import ProgressHook

REDRAW = 0.1  # seconds between redraws
_DIGEST = re.compile(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])")


def label(key: str, ordinal: int) -> str:
    """What a bar is called: ``sha256:`` and 12 hex digits, or ``layer N`` (never image text)."""
    found = _DIGEST.findall(key)
    return f"sha256:{found[-1][:12]}" if found else f"layer {ordinal}"


@contextmanager
def layer_progress(enabled: bool) -> Iterator[ProgressHook | None]:
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    # rich is imported only for a terminal: a scan in CI or a script starts 0.07 s sooner.
    from rich.console import Console
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
    started = 0

    def hook(key: str, size: int | None) -> Callable[[int], None]:
        nonlocal started
        started += 1
        task = progress.add_task(label(key, started), total=None)

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
