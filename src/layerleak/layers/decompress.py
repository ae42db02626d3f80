"""Open a layer blob as an uncompressed stream, deciding by magic bytes (media types lie).

gzip uses python-isal (about twice stdlib zlib's speed here); zstd uses zstandard.
"""

from __future__ import annotations

import io
from typing import IO

import zstandard
from isal import igzip

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_SKIPPABLE = (0x184D2A50, 0x184D2A5F)  # zstd:chunked starts with a skippable frame? (rare)


def sniff_compression(head: bytes) -> str | None:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if len(head) >= 4:
        magic = int.from_bytes(head[:4], "little")
        if ZSTD_SKIPPABLE[0] <= magic <= ZSTD_SKIPPABLE[1]:
            return "zstd"
    return None


class _Prefixed(io.RawIOBase):
    """A raw stream that first returns ``head`` then the rest of ``inner``."""

    def __init__(self, head: bytes, inner: IO[bytes]) -> None:
        self._head = head
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


def open_decompressed(raw: IO[bytes]) -> IO[bytes]:
    """A readable uncompressed stream over ``raw`` (which is read once, front to back)."""
    return open_decompressed_kind(raw)[0]


def open_decompressed_kind(raw: IO[bytes]) -> tuple[IO[bytes], str | None]:
    """:func:`open_decompressed`, and the compression found (None: the layer is plain tar)."""
    head = raw.read(4)
    kind = sniff_compression(head)
    stream: IO[bytes] = io.BufferedReader(_Prefixed(head, raw), buffer_size=1 << 16)
    if kind == "gzip":
        gz: IO[bytes] = igzip.IGzipFile(fileobj=stream, mode="rb")  # type: ignore[no-untyped-call,assignment]
        return gz, kind
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(
            stream, read_across_frames=True, closefd=False
        ), kind
    return stream, kind
