"""Where a plain tar's members start, read from their headers alone: the places a scan of one
layer can be split so that several processes share it.

A worker given ``[start, stop)`` reads the layer from ``start`` as a tar stream of its own and
stops at the first member at or past ``stop``, so the split points must be where Python's
tarfile would begin a member: at its first header, extension headers (pax ``x``, GNU ``L``/``K``)
included. Anything this walk does not read exactly as tarfile does (a global pax header, a pax
``size``, sparse files, a bad checksum, a truncated or compressed blob) makes it give up: the
layer is then scanned whole (so is a layer holding a git repository, whose objects are read
together at the end of the walk), the straightforward way, which also reports any damage.
"""

from __future__ import annotations

import bisect
import os
import tarfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO

BLOCK = 512
_ZERO = bytes(BLOCK)
_REGULAR = (b"0", b"\x00", b"7")
_EXTENSION = (b"x", b"L", b"K")  # headers of the member that follows
_BUILTIN = (b"1", b"2", b"3", b"4", b"5", b"6")  # no data blocks follow, whatever the size says
_REFUSED = (b"g", b"X", b"S")  # global pax, Solaris extended, GNU sparse
MAX_PAX = 1 << 20  # a larger pax header is read by tarfile alone
_GIT = b".git/"  # a layer holding a git repository is not split


class Unsplittable(Exception):
    """The tar is not one this walk reads exactly as tarfile does: it is scanned whole."""


def member_starts(f: IO[bytes], size: int) -> list[int] | None:
    """Offsets (from ``f``'s current position) of every member of the tar in the next ``size``
    bytes of the seekable ``f``, in order; None if the tar is not one this walk reads exactly."""
    try:
        return list(walk_members(f, size))
    except Unsplittable:
        return None


def walk_members(f: IO[bytes], size: int) -> Iterator[int]:
    """Each member's offset (see :func:`member_starts`) as the walk reaches it; raises
    :class:`Unsplittable` when it gives up, which it may do after yielding some: a caller that
    acts on an offset before the walk's end must be ready to undo it.

    Only the header blocks are read (and a long name's or pax header's records), 512 bytes at a
    time: a member's data is never read. Copying a layer through a read-ahead buffer cost more
    than the walk itself (most of half a second for the 500 MB of a Python image). ``f``'s
    position is taken now, not when the walk starts."""
    return _walk(_reader(f), size)


def _walk(read_at: Callable[[int, int], bytes], size: int) -> Iterator[int]:
    pending: int | None = None  # the first extension header of the member being read
    pos = 0
    while True:
        if pos + BLOCK > size:
            raise Unsplittable  # no end-of-archive marker: truncated, tarfile would say so
        block = read_at(pos, BLOCK)
        if len(block) < BLOCK:
            raise Unsplittable
        if block == _ZERO:
            if pending is not None:
                raise Unsplittable
            return
        length = _header_size(block)
        if length is None:
            raise Unsplittable
        kind = block[156:157]
        if kind in _REFUSED:
            raise Unsplittable
        if pending is None:
            pending = pos
        data = (length + BLOCK - 1) // BLOCK * BLOCK
        if _GIT in block[:100] or _GIT in block[345:500]:
            raise Unsplittable  # a git repository is read as a whole by one walk (entries/gitrepo.py)
        if kind in (b"x", b"L"):
            if length > MAX_PAX:
                raise Unsplittable
            records = read_at(pos + BLOCK, length)
            if b" size=" in records or b"GNU.sparse" in records or _GIT in records:
                raise Unsplittable  # the pax header changes how much data follows
        elif kind in _BUILTIN or (kind == b"\x00" and _name(block).endswith(b"/")):
            data = 0  # tarfile skips no data for these (an old-style directory among them)
        if kind not in _EXTENSION:
            yield pending
            pending = None
        pos += BLOCK + data


def _reader(f: IO[bytes]) -> Callable[[int, int], bytes]:
    """``read_at(pos, n)``: ``n`` bytes (fewer at the end) at ``pos`` from ``f``'s current
    position. An open file is read with pread, past its buffer; other streams by seek and read."""
    base = f.tell()
    try:
        fd = f.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        fd = -1
    if fd >= 0 and hasattr(os, "pread"):
        return lambda pos, n: os.pread(fd, n, base + pos)

    def read_at(pos: int, n: int) -> bytes:
        f.seek(base + pos)
        return f.read(n)

    return read_at


def split_points(starts: list[int], size: int, parts: int) -> list[int]:
    """Up to ``parts - 1`` member starts that cut ``size`` bytes into about equal parts."""
    points: list[int] = []
    for j in range(1, parts):
        i = bisect.bisect_left(starts, j * size // parts)
        if i < len(starts) and starts[i] > (points[-1] if points else 0):
            points.append(starts[i])
    return points


def split_stream(starts: Iterable[int], size: int, parts: int) -> Iterator[int]:
    """:func:`split_points` of ``starts`` (increasing), each point yielded as soon as the first
    member start at or past its mark is seen: a scan can begin on a part before the walk that
    finds the later ones is over."""
    marks = (j * size // parts for j in range(1, parts))
    mark = next(marks, None)
    last = 0
    for start in starts:
        while mark is not None and start >= mark:
            if start > last:
                yield start
                last = start
            mark = next(marks, None)


def _name(block: bytes) -> bytes:
    raw = block[:100]
    end = raw.find(b"\x00")
    return raw if end < 0 else raw[:end]


def _header_size(block: bytes) -> int | None:
    """The size field, when the checksum is right and the field reads as tarfile reads it."""
    try:
        recorded = _number(block[148:156])
        unsigned = 256 + sum(block) - sum(block[148:156])  # the usual sum, without tarfile's struct
        if recorded != unsigned and recorded not in tarfile.calc_chksums(block):  # type: ignore[attr-defined]
            return None
        size = _number(block[124:136])
    except ValueError:
        return None
    return size if size >= 0 else None


def _number(field: bytes) -> int:
    """A numeric header field as tarfile reads it: the usual octal text ("0000644\0") in one
    call, anything else (GNU base-256, NULs inside) by tarfile's own ``nti``."""
    try:
        return int(field.rstrip(b"\x00 "), 8)
    except ValueError:
        pass
    try:
        return int(tarfile.nti(field))  # type: ignore[attr-defined]
    except tarfile.HeaderError:
        raise ValueError("not a number tarfile reads") from None
