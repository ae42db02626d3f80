"""Small readers the content pipeline is built from: anything with ``read(n) -> bytes``."""

from __future__ import annotations

import io
from typing import IO, Any, Protocol

from layerleak.detect.engine import CHUNK_SIZE


class Reader(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class Ended:
    """The rest of something that was read whole: nothing. Handing it on instead of the real
    reader spares a read to the end (a buffer allocated, a decompressor asked) per small file."""

    def read(self, n: int = -1, /) -> bytes:
        return b""


ENDED = Ended()


class Prefixed:
    """``first`` then the rest of ``inner``, never more than ``n`` bytes per read."""

    def __init__(self, first: bytes, inner: Reader) -> None:
        self.whole: bytes | None = first  # while nothing of it was read: handed out without a copy
        self.first = memoryview(first)
        self.inner = inner

    def read(self, n: int = -1, /) -> bytes:
        if self.first:
            size = len(self.first) if n is None or n < 0 else n
            if self.whole is not None and size >= len(self.whole):
                data, self.whole, self.first = self.whole, None, memoryview(b"")
                return data
            self.whole = None
            data, self.first = bytes(self.first[:size]), self.first[size:]
            return data
        return self.inner.read(n)


class Counting(io.RawIOBase):
    """A raw file over a reader that counts the bytes read through it (the compressed side of a
    decompressor, which wants a real file object)."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def read_up_to(first: bytes, rest: Reader, cap: int) -> tuple[bytes, bool]:
    """``first`` and what follows it, up to about ``cap`` bytes; True when that is everything."""
    parts = [first]
    total = len(first)
    while total <= cap:
        chunk = rest.read(CHUNK_SIZE)
        if not chunk:
            return b"".join(parts), True
        total += len(chunk)
        parts.append(chunk)
    return b"".join(parts), False


class Region(io.RawIOBase):
    """``size`` bytes of an open file from its current position."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self._f = f
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        got = self._f.readinto(memoryview(buffer)[:n])  # type: ignore[attr-defined]
        self._left -= got
        return int(got)
