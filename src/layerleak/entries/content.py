"""Scan one file's content: classify it cheaply, then feed its bytes to the engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from layerleak.detect.classify import skip_reason
from layerleak.detect.engine import Engine
from layerleak.models import Match


class _Rest:
    """A file stream whose first chunk was already read."""

    def __init__(self, first: bytes, inner: IO[bytes]) -> None:
        self.first: bytes | None = first
        self.inner = inner

    def read(self, n: int = -1) -> bytes:
        if self.first is not None:
            data, self.first = self.first, None
            return data
        return self.inner.read(n)


def scan_entry(
    path: str, first: bytes, rest: IO[bytes], engine: Engine
) -> tuple[str | None, Iterator[tuple[str | None, Match]]]:
    """(skip reason, iterator of (inner_path, match)). ``first`` is the file's first chunk,
    ``rest`` yields the remainder."""
    reason = skip_reason(first[:64])
    if reason is not None:
        return reason, iter(())
    return None, ((None, m) for m in engine.scan_stream(_Rest(first, rest), path))  # type: ignore[arg-type]
