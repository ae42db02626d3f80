"""tarfile, bounded: every tar we read (layers, archives, nested tars) is opened through here.

Python's tarfile trusts a header's size before it reads the header's data: a PAX header or a GNU
long name claiming 3 GB is read into memory whole, a chain of PAX headers recurses once per
header, an old GNU sparse header may chain extension blocks to the end of the stream, and a
negative size sends a seekable archive back to the same header forever. It also ends an archive
quietly at the first header whose checksum is wrong, which loses everything after it without a
word. :class:`GuardedTarInfo` checks each of these *before* tarfile acts on it, against
:class:`~layerleak.entries.limits.LayerLimits`, and raises :class:`TarDamage` (a
``tarfile.TarError``, which tarfile passes through untouched) instead. What was read before the
bad header has already been handed to the caller, so nothing before it is lost.
"""

from __future__ import annotations

import os
import re
import struct
import tarfile
import zlib
from collections.abc import Iterator
from typing import IO, Any, ClassVar, cast

from layerleak.entries.limits import DEFAULT_LAYER_LIMITS, LayerLimits, limit_text

BLOCK = 512
_tar: Any = tarfile  # its header error classes are not in the stubs
_LONG = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_PAX = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
_NUMBER = re.compile(rb"\d{1,20}\n")
_SPARSE = "max_sparse_entries"


class TarDamage(tarfile.TarError):
    """A header that is corrupt or beyond a limit: the tar cannot be read past it.

    ``limit`` names the limit when one was hit (the message says so too).
    """

    def __init__(self, message: str, limit: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit


_FIELDS = struct.Struct("100s8s8s8s12s12s8s1s100s6s2s32s32s8s8s155s")  # a ustar header's fields


def _octal(field: bytes) -> int:
    """A number field in the usual octal text; ValueError for anything else (NULs or spaces only,
    GNU base-256), which tarfile itself then reads. Where this reads a number, tarfile's ``nti``
    reads the same one (``int`` of the text before the first NUL, stripped)."""
    return int(field.rstrip(b"\x00 "), 8)


def _byte_sum(buf: bytes | bytearray) -> int:
    """``sum(buf)`` of a header block, five times faster: Adler-32's first sum is one plus the sum
    of the bytes modulo 65521, and each half of a block sums to at most 256 * 255 = 65280."""
    view = memoryview(buf)
    return (zlib.adler32(view[:256]) & 0xFFFF) + (zlib.adler32(view[256:]) & 0xFFFF) - 2


def _usual_header(cls: type[tarfile.TarInfo], buf: bytes | bytearray, encoding: str, errors: str) -> Any:
    """What ``tarfile.TarInfo.frombuf`` makes of an ordinary header (the usual octal numbers, the
    unsigned checksum right, not old GNU sparse), in a third of its time; None for any other
    block (empty, end of archive, damaged, unusual), which tarfile then reads and judges itself.
    tests/layers/test_targuard.py compares both on real and generated headers."""
    if len(buf) != BLOCK or buf == _ZERO:
        return None
    (name, mode, uid, gid, size, mtime, chksum, kind, linkname, _magic, _version, uname, gname,
     devmajor, devminor, prefix) = _FIELDS.unpack_from(buf)
    try:
        recorded = _octal(chksum)
        if recorded != 256 + _byte_sum(buf) - sum(chksum) or kind == tarfile.GNUTYPE_SPARSE:
            return None
        numbers = _octal(mode), _octal(uid), _octal(gid), _octal(size), _octal(mtime)
        major = _octal(devmajor) if devmajor.strip(b"\x00") else 0
        minor = _octal(devminor) if devminor.strip(b"\x00") else 0
    except ValueError:
        return None
    nts: Any = _tar.nts
    obj: Any = cls()
    obj.name = nts(name, encoding, errors)
    obj.mode, obj.uid, obj.gid, obj.size, obj.mtime = numbers
    obj.chksum = recorded
    obj.type = kind
    # the fields most headers leave empty (a NUL first) are "" to nts too, without its decode
    obj.linkname = nts(linkname, encoding, errors) if linkname[0] else ""
    obj.uname = nts(uname, encoding, errors) if uname[0] else ""
    obj.gname = nts(gname, encoding, errors) if gname[0] else ""
    obj.devmajor, obj.devminor = major, minor
    before = nts(prefix, encoding, errors) if prefix[0] else ""
    if obj.type == tarfile.AREGTYPE and obj.name.endswith("/"):
        obj.type = tarfile.DIRTYPE  # old V7 directory
    if obj.isdir():
        obj.name = obj.name.rstrip("/")
    if before and obj.type not in tarfile.GNU_TYPES:
        obj.name = before + "/" + obj.name  # a ustar long name
    return obj


_ZERO = bytes(BLOCK)


class GuardedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses what would make tarfile blow up, hang or go quiet."""

    limits: ClassVar[LayerLimits] = DEFAULT_LAYER_LIMITS

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Any:
        """tarfile's own, with ordinary headers read in one struct call (a tenth of the
        profile of a layer of many small files was tarfile parsing headers)."""
        obj = _usual_header(cls, buf, encoding, errors)
        return obj if obj is not None else super().frombuf(buf, encoding, errors)

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Any:
        fileobj: Any = tarfile_.fileobj
        offset = fileobj.tell()
        buf = fileobj.read(BLOCK)
        try:
            obj: Any = cls.frombuf(buf, tarfile_.encoding, tarfile_.errors)
        except _tar.EOFHeaderError:
            raise  # the end-of-archive marker
        except _tar.EmptyHeaderError:
            if offset == 0:
                raise
            raise TarDamage(f"tar ends at byte {offset} with no end-of-archive marker (truncated?)") from None
        except _tar.TruncatedHeaderError:
            if offset == 0:
                raise
            raise TarDamage(f"tar is truncated inside the header at byte {offset}") from None
        except _tar.InvalidHeaderError as exc:
            if offset == 0:
                raise
            raise TarDamage(f"bad tar header at byte {offset} ({exc}); nothing after it was read") from None
        obj.offset = offset
        return obj._proc_member(tarfile_)

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        limits = self.limits
        at = f"tar header at byte {self.offset}"
        if self.size < 0:
            raise TarDamage(f"{at} has a negative size ({self.size})")
        chain = getattr(tarfile_, "_layerleak_chain", 0)
        if self.type in _LONG or self.type in _PAX:
            if chain >= limits.max_extension_chain:
                limit = limit_text("max_extension_chain", limits.max_extension_chain)
                raise TarDamage(f"{at}: more extension headers in a row than {limit}", "max_extension_chain")
            if self.type in _LONG and self.size > limits.max_name_bytes:
                limit = limit_text("max_name_bytes", limits.max_name_bytes)
                raise TarDamage(f"{at}: GNU long name of {self.size} bytes is over {limit}", "max_name_bytes")
            if self.type in _PAX and self.size > limits.max_header_bytes:
                limit = limit_text("max_header_bytes", limits.max_header_bytes)
                raise TarDamage(f"{at}: PAX header of {self.size} bytes is over {limit}", "max_header_bytes")
        tarfile_._layerleak_chain = chain + 1  # type: ignore[attr-defined]
        try:
            member = super()._proc_member(tarfile_)  # type: ignore[misc]
        except TarDamage:
            raise
        except tarfile.HeaderError as exc:  # tarfile would end the archive here without a word
            raise TarDamage(f"{at}: malformed extended header ({exc})") from None
        except (ValueError, OverflowError, UnicodeError, IndexError, KeyError, AttributeError) as exc:
            # malformed PAX records (a sparse map that is not numbers, a size that is not one)
            raise TarDamage(f"{at}: malformed extended header ({type(exc).__name__})") from None
        finally:
            tarfile_._layerleak_chain = chain  # type: ignore[attr-defined]
        if not isinstance(member, tarfile.TarInfo):
            raise TarDamage(f"{at}: unreadable header")
        sparse = getattr(member, "sparse", None)
        if sparse is not None and len(sparse) > limits.max_sparse_entries:
            limit = limit_text("max_sparse_entries", limits.max_sparse_entries)
            raise TarDamage(f"{at}: sparse map of {len(sparse)} entries is over {limit}", _SPARSE)
        if member.size < 0:
            raise TarDamage(f"{at} has a negative size ({member.size})")
        return member

    def _proc_sparse(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        """Old GNU sparse (type S): extension blocks are counted against the map limit."""
        structs, isextended, origsize = self._sparse_structs  # type: ignore[attr-defined]
        del self._sparse_structs  # type: ignore[attr-defined]
        limit = self.limits.max_sparse_entries
        fileobj: Any = tarfile_.fileobj
        while isextended:
            if len(structs) > limit:
                text = limit_text("max_sparse_entries", limit)
                raise TarDamage(f"tar header at byte {self.offset}: sparse map over {text}", _SPARSE)
            buf = fileobj.read(BLOCK)
            if len(buf) < BLOCK:
                raise TarDamage(f"tar is truncated inside the sparse map at byte {self.offset}")
            for pos in range(0, 21 * 24, 24):
                try:
                    offset = tarfile.nti(buf[pos : pos + 12])  # type: ignore[attr-defined]
                    numbytes = tarfile.nti(buf[pos + 12 : pos + 24])  # type: ignore[attr-defined]
                except tarfile.HeaderError:
                    break
                if offset and numbytes:
                    structs.append((offset, numbytes))
            isextended = bool(buf[504])
        self.sparse = structs
        self.offset_data = fileobj.tell()
        tarfile_.offset = self.offset_data + self._block(self.size)  # type: ignore[attr-defined]
        self.size = origsize
        return self

    def _proc_gnusparse_10(self, next: Any, pax_headers: dict[str, str], tarfile_: tarfile.TarFile) -> None:
        """GNU sparse 1.0: the map is at the start of the data, one decimal number a line; its
        length is bounded by the map limit and every line must be a number."""
        limit = self.limits.max_sparse_entries
        fileobj: Any = tarfile_.fileobj
        at = f"tar header at byte {self.offset}"
        buf = fileobj.read(BLOCK)
        numbers: list[int] = []
        count: int | None = None
        pos = 0
        while count is None or len(numbers) < 2 * count:
            end = buf.find(b"\n", pos)
            if end < 0:
                if len(buf) - pos > 21:
                    raise TarDamage(f"{at}: malformed sparse map")
                more = fileobj.read(BLOCK)
                if len(more) < BLOCK:
                    raise TarDamage(f"tar is truncated inside the sparse map at byte {self.offset}")
                buf = buf[pos:] + more
                pos = 0
                continue
            line = buf[pos : end + 1]
            if not _NUMBER.fullmatch(line):
                raise TarDamage(f"{at}: malformed sparse map")
            pos = end + 1
            if count is None:
                count = int(line)
                if count > limit:
                    text = limit_text("max_sparse_entries", limit)
                    raise TarDamage(f"{at}: sparse map of {count} entries is over {text}", _SPARSE)
            else:
                numbers.append(int(line))
        next.offset_data = fileobj.tell()
        next.sparse = list(zip(numbers[::2], numbers[1::2], strict=True))


# Headers whose member tarfile's _proc_builtin reads (a regular file's data blocks skipped, none
# for the others): what FileTar.next takes on itself. Every other type goes to tarfile.
_BUILTIN = frozenset((
    tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE,
    tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE,
))
_PLAIN = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)  # a regular file, not sparse
WINDOW = 1 << 20  # how much of the file one read brings in: the headers and data of many small files


class FileTar(tarfile.TarFile):
    """A seekable tar read from an open file, whose ordinary members are read straight from it.

    tarfile reads a member with a seek, two ``tell()`` and a read of the file object for its header
    and a reader object, another seek and a read for its data: system calls and Python layers that
    were a tenth of the CPU of a scan of many small files. Here one ``os.pread`` brings in
    :data:`WINDOW` bytes at a time, and a member is taken from it when its header is an ordinary
    one (:func:`_usual_header`: the usual octal numbers, the checksum right, one of the
    :data:`_BUILTIN` types, no global PAX header in force) and its data, when it is a plain regular
    file of at most ``small`` bytes. Anything else (the first member, extension headers, sparse
    files, base-256 numbers, damage, the end of the archive) is read by tarfile's own ``next()`` and
    :class:`GuardedTarInfo`, from the offset tarfile would be at: the same members, bytes, limits and
    errors. tests/layers/test_filetar.py reads real and generated tars both ways.
    """

    fd: int | None = None  # while None (and while tarfile reads its first member): tarfile's own
    small = 0
    _buffer: bytearray | None = None  # the window, read into again and again (no page faults)
    _window = memoryview(b"")  # the part of it that holds the file's bytes from _window_at
    _window_at = 0

    def next(self) -> tarfile.TarInfo | None:
        offset = self.offset
        own: Any = self  # tarfile's attributes and checks that the stubs leave out
        if self.fd is None or own.firstmember is not None or self.pax_headers or not offset:
            return super().next()
        own._check("ra")
        buf = self._bytes(offset, BLOCK)
        member = _usual_header(self.tarinfo, buf, self.encoding, self.errors) if len(buf) == BLOCK else None
        if member is None or member.type not in _BUILTIN or member.size < 0:
            return super().next()  # tarfile reads and judges it, from this offset
        member.offset = offset
        member.offset_data = offset + BLOCK
        self.offset = member.offset_data + (member._block(member.size) if member.isreg() else 0)
        own.members.append(member)
        return cast(tarfile.TarInfo, member)

    def extractfile(self, member: str | tarfile.TarInfo) -> IO[bytes] | None:
        if (
            self.fd is not None
            and isinstance(member, tarfile.TarInfo)
            and member.type in _PLAIN
            and member.sparse is None
            and member.size <= self.small
        ):
            cast(Any, self)._check("r")
            return cast(IO[bytes], _Stretch(self, member.offset_data, member.size))
        return super().extractfile(member)

    def _bytes(self, at: int, n: int) -> bytes:
        """``n`` bytes of the file from ``at`` (fewer at its end)."""
        rel = at - self._window_at
        window = self._window
        if rel >= 0 and rel + n <= len(window):
            return window[rel : rel + n].tobytes()
        assert self.fd is not None
        if n > WINDOW:
            parts = []
            while n > 0 and (got := os.pread(self.fd, n, at)):
                parts.append(got)
                n -= len(got)
                at += len(got)
            return b"".join(parts)
        if self._buffer is None:
            self._buffer = bytearray(WINDOW)
        filled = os.preadv(self.fd, [self._buffer], at)
        self._window = window = memoryview(self._buffer)[:filled]
        self._window_at = at
        return window[:n].tobytes()


class _Stretch:
    """A plain member's bytes, read as tarfile's reader reads them: never past the member, and
    tarfile's ReadError where the file ends first."""

    __slots__ = ("tar", "at", "left")

    def __init__(self, tar: FileTar, at: int, size: int) -> None:
        self.tar = tar
        self.at = at
        self.left = size

    def read(self, n: int = -1, /) -> bytes:
        want = self.left if n is None or n < 0 else min(n, self.left)
        if want <= 0:
            return b""
        data = self.tar._bytes(self.at, want)
        if len(data) != want:
            raise tarfile.ReadError("unexpected end of data")
        self.at += want
        self.left -= want
        return data


def guarded(limits: LayerLimits = DEFAULT_LAYER_LIMITS) -> type[GuardedTarInfo]:
    if limits == DEFAULT_LAYER_LIMITS:
        return GuardedTarInfo
    return type("GuardedTarInfo", (GuardedTarInfo,), {"limits": limits})


def open_stream(fileobj: IO[bytes] | Any, limits: LayerLimits = DEFAULT_LAYER_LIMITS) -> tarfile.TarFile:
    """A tar read front to back (``r|``) through the guard."""
    return tarfile.open(fileobj=fileobj, mode="r|", tarinfo=guarded(limits))


def open_seekable(
    fileobj: IO[bytes] | Any,
    limits: LayerLimits = DEFAULT_LAYER_LIMITS,
    fd: int | None = None,
    small: int = 0,
) -> tarfile.TarFile:
    """A seekable tar (``r:``) through the guard; its members are read as :func:`members` asks.
    ``fd``: ``fileobj`` reads this open file, at the file's own offsets; ordinary members (and the
    data of plain files up to ``small`` bytes) are then read straight from it (:class:`FileTar`)."""
    if fd is None:
        return tarfile.open(fileobj=fileobj, mode="r:", tarinfo=guarded(limits))
    tar = FileTar.open(fileobj=fileobj, mode="r:", tarinfo=guarded(limits))
    tar.fd, tar.small = fd, small
    return tar


def members(
    tar: tarfile.TarFile, limits: LayerLimits = DEFAULT_LAYER_LIMITS, keep: bool = False
) -> Iterator[tarfile.TarInfo]:
    """Each member, in order, without tarfile's list of every member seen (``keep`` keeps it, for
    archives whose members are looked up by name). More than ``max_members`` raises TarDamage."""
    count = 0
    while True:
        member = tar.next()
        if member is None:
            return
        count += 1
        if count > limits.max_members:
            text = limit_text("max_members", limits.max_members)
            raise TarDamage(f"more than {text} tar members; the rest was not read", "max_members")
        if not keep:
            tar.members.clear()  # type: ignore[attr-defined]
        yield member


class SparseData:
    """A sparse member's stored data regions, one after the other: its holes (which read as
    zeros, and may claim terabytes) are skipped, so a sparse bomb costs only what it stores."""

    def __init__(self, f: Any, member: tarfile.TarInfo) -> None:
        # tarfile's own view of the member (under the buffered reader), which seeks without
        # asking the stream whether it can: a seek forward in a stream reads on
        self.f = getattr(f, "raw", f)
        self.regions = [r for r in (getattr(member, "sparse", None) or []) if r[1] > 0]
        self.index = 0
        self.left = 0

    def read(self, n: int = -1, /) -> bytes:
        parts: list[bytes] = []
        want = n if n is not None and n >= 0 else 1 << 62
        while want > 0:
            if self.left == 0:
                if self.index >= len(self.regions):
                    break
                offset, self.left = self.regions[self.index]
                self.index += 1
                self.f.seek(offset)
            data = self.f.read(min(want, self.left))
            if not data:
                self.left = 0
                self.index = len(self.regions)
                break
            self.left -= len(data)
            want -= len(data)
            parts.append(data)
        return b"".join(parts)
