"""The ``-o FILE`` report appears whole or not at all.

It is written to a temporary file in the same directory and renamed over FILE once complete, so a
scan that is interrupted (Ctrl-C, SIGTERM), or fails to write, never leaves half a report that a
pipeline could take for a whole one. A FILE that is not a regular file (``/dev/stdout``, a FIFO)
is written in place: there is nothing to rename over.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import TextIO


class AtomicFile:
    """A text file that becomes ``path`` on :meth:`commit`, and vanishes on :meth:`discard`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._final = Path(os.path.realpath(path))  # through a symlink, to the file it names
        self._temp: Path | None = None
        try:
            mode = os.stat(self._final).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            self.file: TextIO = open(self._final, "w", encoding="utf-8")  # noqa: SIM115
            return
        fd, temp = tempfile.mkstemp(dir=self._final.parent, prefix=f".{self._final.name}.", suffix=".part")
        self._temp = Path(temp)
        os.fchmod(fd, stat.S_IMODE(mode) if mode is not None else 0o666 & ~_umask())
        self.file = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, text: str) -> int:
        return self.file.write(text)

    def flush(self) -> None:
        self.file.flush()

    def commit(self) -> None:
        """Rename the complete file over ``path`` (an OSError leaves ``path`` as it was)."""
        try:
            self.file.flush()
            if self._temp is not None:
                os.fsync(self.file.fileno())
            self.file.close()
            if self._temp is not None:
                os.replace(self._temp, self._final)
                self._temp = None
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        self.file.close()
        if self._temp is not None:
            with contextlib.suppress(OSError):
                self._temp.unlink()
            self._temp = None


def write_atomic(path: Path, text: str) -> None:
    out = AtomicFile(path)
    try:
        out.write(text)
    except BaseException:
        out.discard()
        raise
    out.commit()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
