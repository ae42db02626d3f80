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

import re
import struct
import tarfile
from collections.abc import Iterator
from typing import IO, Any, ClassVar

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
        numbers = _octal(mode), _octal(uid), _octal(gid), _octal(size), _octal(mtime)
        major = _octal(devmajor) if devmajor.strip(b"\x00") else 0
        minor = _octal(devminor) if devminor.strip(b"\x00") else 0
    except ValueError:
        return None
    if recorded != 256 + sum(buf) - sum(chksum) or kind == tarfile.GNUTYPE_SPARSE:
        return None
    nts: Any = _tar.nts
    obj: Any = cls()
    obj.name = nts(name, encoding, errors)
    obj.mode, obj.uid, obj.gid, obj.size, obj.mtime = numbers
    obj.chksum = recorded
    obj.type = kind
    obj.linkname = nts(linkname, encoding, errors)
    obj.uname = nts(uname, encoding, errors)
    obj.gname = nts(gname, encoding, errors)
    obj.devmajor, obj.devminor = major, minor
    before = nts(prefix, encoding, errors)
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


def guarded(limits: LayerLimits = DEFAULT_LAYER_LIMITS) -> type[GuardedTarInfo]:
    if limits == DEFAULT_LAYER_LIMITS:
        return GuardedTarInfo
    return type("GuardedTarInfo", (GuardedTarInfo,), {"limits": limits})


def open_stream(fileobj: IO[bytes] | Any, limits: LayerLimits = DEFAULT_LAYER_LIMITS) -> tarfile.TarFile:
    """A tar read front to back (``r|``) through the guard."""
    return tarfile.open(fileobj=fileobj, mode="r|", tarinfo=guarded(limits))


def open_seekable(fileobj: IO[bytes] | Any, limits: LayerLimits = DEFAULT_LAYER_LIMITS) -> tarfile.TarFile:
    """A seekable tar (``r:``) through the guard; its members are read as :func:`members` asks."""
    return tarfile.open(fileobj=fileobj, mode="r:", tarinfo=guarded(limits))


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
