"""Open archives and compressed files inside a layer file, recursively, within a budget.

What is opened (magic bytes decide, never the name): tar; zip and everything that is a zip (jar,
war, ear, whl, egg, apk, ...); single-stream gzip, bzip2, xz and zstd, which covers .tar.gz/.tgz,
.tar.xz and friends and rotated logs such as ``app.log.1.gz``.

Where a match is reported: the layer file's ``path``, plus an ``inner_path`` naming the member
chain, joined with ``!/`` (``lib/app.jar!/config/app.properties``). A compressed stream holding
an archive is transparent (the members of ``bundle.tgz`` are ``etc/app.conf``, not
``bundle.tar!/etc/app.conf``); a compressed stream holding a plain file names it by its name
without the compression suffix (``app.log.1.gz`` -> ``app.log.1``), or ``NAME[gzip]`` when the
name has no such suffix.

A git repository packed in an archive (``repo.tar.gz`` holding ``app/.git``, a zip of a checkout)
is read like one in the layer (:mod:`layerleak.entries.gitrepo`): its object files are gathered
as the archive's members pass, then every blob and commit message is scanned when the archive
ends; a hit's inner path is the object file's, then the commit and path
(``app/.git/objects/pack/pack-1a2b.pack!/[git] 3f2a9c1d0e4b:config/prod.env``).

Bounds are in :class:`layerleak.entries.limits.Limits`; whatever they cut short becomes a note.
Tar is read as a stream. Zip needs its central directory at the end, so a zip is held in memory
up to ``zip_memory`` bytes, then in an unnamed temporary file up to ``zip_spool`` bytes; a larger
zip is not opened (and said so).
"""

from __future__ import annotations

import _compression  # the reader LZMAFile is built on, which takes the decompressor's memlimit
import bz2
import gzip
import io
import lzma
import posixpath
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, cast

import zstandard
from isal import isal_zlib

from layerleak.detect.classify import (
    BZIP2,
    GZIP,
    HEAD,
    STREAMS,
    TAR,
    XZ,
    ZSTD,
    container_kind,
    skip_reason,
)
from layerleak.detect.engine import CHUNK_SIZE, Engine
from layerleak.entries import keystores
from layerleak.entries.decoders import scan_leaf
from layerleak.entries.limits import DEFAULT_LIMITS, MIB, Budget, Cut, Limited, Limits, ended
from layerleak.entries.streams import ENDED, Counting, Prefixed, Reader, read_up_to

if TYPE_CHECKING:  # gitrepo scans blobs with content, which imports this module
    from layerleak.entries.gitrepo import Collector
from layerleak.layers import targuard
from layerleak.models import Match

SEP = "!/"

SUFFIXES = {
    GZIP: {".gz": "", ".tgz": ".tar", ".taz": ".tar", ".z": ""},
    BZIP2: {".bz2": "", ".tbz2": ".tar", ".tbz": ".tar", ".bz": ""},
    XZ: {".xz": "", ".txz": ".tar", ".lzma": ""},
    ZSTD: {".zst": "", ".zstd": "", ".tzst": ".tar"},
}

# What a broken archive or stream raises (zipfile: RuntimeError for encrypted members,
# NotImplementedError for unsupported compression methods).
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    zlib.error,
    lzma.LZMAError,
    zstandard.ZstdError,
    cast(type[BaseException], isal_zlib.error),
    zipfile.BadZipFile,
    tarfile.TarError,
)

Hit = tuple[str | None, Match]


class OuterFailure(Exception):
    """The layer's own stream failed under us: not a nested problem, the walk must see it."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _Guard:
    def __init__(self, inner: Reader) -> None:
        self.inner = inner

    def read(self, n: int = -1, /) -> bytes:
        try:
            return self.inner.read(n)
        except Exception as exc:
            raise OuterFailure(exc) from exc


def join(inner: str | None, name: str) -> str:
    return name if inner is None else f"{inner}{SEP}{name}"


def scan_file(
    engine: Engine,
    path: str,
    first: bytes,
    rest: Reader,
    budget: Budget,
    name: str | None = None,
    head: bytes | None = None,
) -> Iterator[Hit]:
    """Every (inner_path, match) in one layer file, opening what it contains. ``name``: its file
    name, ``head``: ``first[:HEAD]``, when the caller has them already."""
    scan = _FileScan(engine, path, budget)
    if head is None:
        head = first[:HEAD]
    kind = container_kind(head)
    try:
        if kind is None:
            # A plain file, the common case: no archive reader sits between it and the layer's
            # stream to swallow that stream's failure, so its rest needs no _Guard.
            if _may_be_keystore(head):  # a binary key container: read it whole
                first, whole = read_up_to(first, rest, keystores.MAX_CONTAINER)
                if whole:
                    yield from keystores.scan(first)
            yield from scan_leaf(engine, path, first, rest, budget)  # its markers are inner paths
        else:
            name = _basename(path) if name is None else name
            guarded = rest if rest is ENDED else _Guard(rest)  # a file read whole cannot fail
            yield from scan.container(kind, None, None, name, first, guarded, 0)
    except OuterFailure as failure:
        raise failure.error from None
    except Cut as cut:  # the file's entry budget is spent
        budget.note(cut.message)


def _may_be_keystore(head: bytes) -> bool:
    """keystores.is_candidate, after the test it starts with (a DER SEQUENCE or a Java store magic)."""
    return (head[:1] == b"\x30" or head[:4] in _STORE_MAGIC) and keystores.is_candidate(head)


_STORE_MAGIC = (keystores.JKS_MAGIC, keystores.JCEKS_MAGIC)


class _FileScan:
    def __init__(self, engine: Engine, path: str, budget: Budget) -> None:
        self.engine = engine
        self.path = path
        self.budget = budget

    def content(
        self, inner: str | None, base: str | None, name: str, first: bytes, rest: Reader, depth: int
    ) -> Iterator[Hit]:
        """``inner``: this content's inner path (None for the layer file itself); ``base``: what
        archive members are joined to; ``name``: its file name."""
        head = first[:HEAD]
        kind = container_kind(head)
        if kind is None:
            if depth and skip_reason(head):
                return  # media inside an archive: nothing readable
            rule_path = self.path if inner is None else f"{self.path}{SEP}{inner}"
            if _may_be_keystore(head):  # a binary key container: read it whole
                first, whole = read_up_to(first, rest, keystores.MAX_CONTAINER)
                for box, m in keystores.scan(first) if whole else ():
                    yield join(inner, box), m
            for marker, m in scan_leaf(self.engine, rule_path, first, rest, self.budget):
                yield (inner if marker is None else join(inner, marker)), m
            return
        yield from self.container(kind, inner, base, name, first, rest, depth)

    def container(
        self, kind: str, inner: str | None, base: str | None, name: str, first: bytes, rest: Reader,
        depth: int,
    ) -> Iterator[Hit]:
        if depth >= self.budget.limits.max_depth:
            self.budget.note(
                f"{inner or 'this file'}: {kind} nested more than {self.budget.limits.max_depth} "
                "levels deep; not opened"
            )
            return
        if kind in STREAMS:
            yield from self._stream(kind, inner, base, name, first, rest, depth)
        elif kind == TAR:
            yield from self._tar(inner, base, first, rest, depth)
        else:
            yield from self._zip(inner, base, first, rest, depth)

    def _stream(
        self,
        kind: str,
        inner: str | None,
        base: str | None,
        name: str,
        first: bytes,
        rest: Reader,
        depth: int,
    ) -> Iterator[Hit]:
        where = f"{inner or 'this file'} ({kind})"
        if kind == GZIP and LEAN_GZIP and _drained(rest):
            data = _whole_gzip(first, self.budget)
            if data is not None:  # read whole under the budget, as the Limited below would have
                if data:
                    self.budget.expanded += len(data)
                    drained = Limited(ENDED, self.budget, _zero, where, READ_ERRORS)
                    drained.count = len(data)
                    child = _strip(name, kind)
                    yield from self.content(join(inner, child), base, child, data, drained, depth + 1)
                return
        source = Counting(Prefixed(first, rest))
        inflate = _decompressor(kind, source, self.budget.limits)
        plain = Limited(inflate, self.budget, lambda: source.count, where, READ_ERRORS)
        child = _strip(name, kind)
        head = plain.read(CHUNK_SIZE)
        if head:
            yield from self.content(join(inner, child), base, child, head, plain, depth + 1)

    def _tar(
        self, inner: str | None, base: str | None, first: bytes, rest: Reader, depth: int
    ) -> Iterator[Hit]:
        where = inner or "this file"
        git = _Git(self, base)
        try:
            try:
                tar = targuard.open_stream(cast(IO[bytes], Prefixed(first, rest)))
                for member in targuard.members(tar):
                    name = _member_name(member.name)
                    self.budget.entry(join(base, name))
                    if not member.isreg() or member.size == 0:
                        continue
                    f: Any = tar.extractfile(member)
                    if f is None:
                        continue
                    if member.issparse():
                        f = targuard.SparseData(f, member)  # its stored data, not its holes
                    if git.take(name, f):
                        continue
                    head = f.read(CHUNK_SIZE)
                    child = join(base, name)
                    found = self.content(child, child, _basename(name), head, f, depth + 1)
                    yield from git.seen(name, found)
            except (tarfile.TarError, EOFError, zlib.error) as exc:
                if not ended(rest):  # else the stream it came from said why it ended
                    self.budget.note(f"{where}: tar is corrupt or truncated ({exc}); scanned up to there")
            yield from git.finish()
        finally:
            git.close()

    def _zip(
        self, inner: str | None, base: str | None, first: bytes, rest: Reader, depth: int
    ) -> Iterator[Hit]:
        where = inner or "this file"
        spool = self._spool(where, first, rest)
        if spool is None:
            return
        with spool:
            try:
                archive = zipfile.ZipFile(spool)
            except READ_ERRORS as exc:
                if not ended(rest):
                    self.budget.note(f"{where}: zip is corrupt ({exc}); not scanned")
                return
            # A zip held in memory: its small members are read straight from its buffer
            # (_member_bytes), without zipfile's reader machinery, when that gives their bytes
            # exactly; released before the spool closes.
            view = spool.getbuffer() if LEAN_ZIP_MEMBERS and isinstance(spool, io.BytesIO) else None
            git = _Git(self, base)
            worktree = git.worktree
            budget = self.budget
            try:
                with archive:
                    for info in archive.infolist():
                        name = _member_name(info.filename or "(unnamed)")
                        child = join(base, name)
                        budget.entry(child)
                        if info.filename.endswith("/") or info.file_size == 0:  # is_dir() fails on ""
                            continue
                        data = None if view is None else _member_bytes(view, info, name, budget)
                        if data is None:
                            found = self._zip_member(archive, info, child, name, depth, git)
                        else:  # read whole under the budget, as _zip_member's Limited would have
                            budget.expanded += len(data)
                            drained = Limited(ENDED, budget, _zero, child, READ_ERRORS)
                            drained.count = len(data)
                            found = self.content(child, child, _basename(name), data, drained, depth + 1)
                        for hit in found:  # what _Git.seen records, without its generator
                            worktree.add(("/" + name, hit[1].rule_id, hit[1].secret))
                            yield hit
                    yield from git.finish()
            finally:
                git.close()
                if view is not None:
                    view.release()

    def _zip_member(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, child: str, name: str, depth: int, git: _Git
    ) -> Iterator[Hit]:
        try:
            raw = archive.open(info)
        except READ_ERRORS as exc:
            self.budget.note(f"{child}: not scanned ({exc})")
            return
        size = info.compress_size
        plain = Limited(raw, self.budget, lambda: size, child, READ_ERRORS)
        with raw:
            if git.take(name, plain):
                return
            head = plain.read(CHUNK_SIZE)
            if head:
                yield from self.content(child, child, _basename(name), head, plain, depth + 1)

    def _spool(self, where: str, first: bytes, rest: Reader) -> IO[bytes] | None:
        """The whole zip, seekable: in memory up to ``zip_memory``, then in an unnamed
        temporary file (gone when closed, even after a crash); None when it is too large.
        zipfile is handed the BytesIO or the file itself: through a SpooledTemporaryFile every
        seek, tell and read of every member went through a Python method."""
        limits = self.budget.limits
        spool: IO[bytes] = io.BytesIO()
        memory: io.BytesIO | None = cast(io.BytesIO, spool)
        total = 0
        chunk = first
        while chunk:
            total += len(chunk)
            if total > limits.zip_spool:
                spool.close()
                self.budget.note(f"{where}: zip larger than {limits.zip_spool // MIB} MiB; not opened")
                return None
            if memory is not None and total > limits.zip_memory:  # on to disk, as the spool did
                spool = tempfile.TemporaryFile()
                spool.write(memory.getbuffer())
                memory.close()
                memory = None
            spool.write(chunk)
            chunk = rest.read(CHUNK_SIZE)
        spool.seek(0)
        return spool


class _Git:
    """The git repositories among one archive's members (entries/gitrepo.py), read when it ends."""

    def __init__(self, scan: _FileScan, base: str | None) -> None:
        self.scan = scan
        self.base = base
        self.repos: Collector | None = None  # made when the first object file comes
        self.worktree: set[tuple[str, str, str]] = set()  # (path, rule, secret) of the other members

    def take(self, name: str, f: Reader) -> bool:
        if ".git/" not in name:
            return False
        if self.repos is None:
            from layerleak.entries import gitrepo  # gitrepo scans blobs with content, which imports us

            self.repos = gitrepo.Collector()
        return bool(self.repos.take("/" + name, f))

    def seen(self, name: str, hits: Iterator[Hit]) -> Iterator[Hit]:
        for hit in hits:
            self.worktree.add(("/" + name, hit[1].rule_id, hit[1].secret))
            yield hit

    def finish(self) -> Iterator[Hit]:
        if self.repos is None or not self.repos.repos:
            return
        found = self.repos.finish(self.scan.engine, self.worktree)
        for path, message in self.repos.notes:
            self.scan.budget.note(f"{join(self.base, path.lstrip('/'))}: {message}")
        for hit in found:
            yield join(join(self.base, hit.path.lstrip("/")), hit.inner_path), hit.match

    def close(self) -> None:
        if self.repos is not None:
            self.repos.close()


def _decompressor(kind: str, source: Counting, limits: Limits = DEFAULT_LIMITS) -> Reader:
    raw = io.BufferedReader(source, buffer_size=1 << 16)
    if kind == GZIP:
        # stdlib, not isal: isal's reader loses the last buffer of a truncated stream
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == BZIP2:
        return bz2.BZ2File(raw)
    if kind == XZ:
        # LZMAFile, with a memory limit: an .xz header declaring a 1.5 GiB dictionary costs that
        # much memory to inflate (1 MB of xz reached 1.3 GB RSS); past xz_memory it is an error
        inner = _compression.DecompressReader(
            raw, lzma.LZMADecompressor, trailing_error=lzma.LZMAError, memlimit=limits.xz_memory
        )
        return io.BufferedReader(inner)
    return cast(
        Reader, zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False)
    )


def _strip(name: str, kind: str) -> str:
    lower = name.lower()
    for suffix, replacement in SUFFIXES[kind].items():
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)] + replacement
    return f"{name}[{kind}]"


def _member_name(name: str) -> str:
    if (
        name.isascii()
        and name
        and not name.startswith(("/", "."))
        and not name.endswith("/")
        and "/." not in name
        and "//" not in name
    ):
        return name  # no ".", ".." or empty component, no slash to strip: normpath keeps it
    if not name.isascii():  # undecodable bytes as \xNN text, as layers/walk.py does
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return posixpath.normpath("/" + name).lstrip("/") or name


LEAN_ZIP_MEMBERS = True  # tests turn these off to compare with the general readers on the same input
LEAN_GZIP = True

_LOCAL = struct.Struct("<4s2B4HL2L2H")  # a zip local file header (zipfile's structFileHeader)
_LOCAL_MAGIC = b"PK\x03\x04"
_FLAG_ENCRYPTED, _FLAG_PATCHED, _FLAG_STRONG, _FLAG_UTF8 = 1 << 0, 1 << 5, 1 << 6, 1 << 11


def _zero() -> int:
    return 0


def _basename(name: str) -> str:
    return name[name.rfind("/") + 1 :]


def _member_bytes(view: memoryview, info: zipfile.ZipInfo, name: str, budget: Budget) -> bytes | None:
    """A zip member's bytes read straight from the zip's buffer, when that is exactly what
    zipfile's reader under a :class:`Limited` gives for it: a member that is no git object file,
    stored or deflated, not encrypted, with the local header and name zipfile checks, at most
    ``ratio_floor`` bytes (so one read of CHUNK_SIZE has it all and the ratio check cannot
    fire), within what is left of the expansion budget, whose inflated length and CRC-32 are the
    ones the directory records. Anything else (None) goes through zipfile, whose errors and
    notes are then the same as ever: this path never notes, and changes the budget only when it
    returns bytes (its caller then counts them)."""
    size = info.file_size
    limits = budget.limits
    if (
        size > limits.ratio_floor
        or budget.spent
        or budget.expanded + size > limits.max_expanded_bytes
        or info.flag_bits & (_FLAG_ENCRYPTED | _FLAG_PATCHED | _FLAG_STRONG)
        or ".git/" in name
    ):
        return None
    method = info.compress_type
    if method != zipfile.ZIP_DEFLATED and method != zipfile.ZIP_STORED:
        return None
    at = info.header_offset
    if at < 0 or at + _LOCAL.size > len(view):
        return None
    header = _LOCAL.unpack_from(view, at)
    if header[0] != _LOCAL_MAGIC:
        return None
    start = at + _LOCAL.size + header[10] + header[11]
    end = start + info.compress_size
    # Past the buffer, or past where the next member starts when zipfile knows it (the overlap
    # check of later Pythons, which then refuse the member in ZipFile.open): zipfile decides.
    if end > len(view) or end > (getattr(info, "_end_offset", None) or end):
        return None
    try:
        stored = bytes(view[at + _LOCAL.size : at + _LOCAL.size + header[10]])
        named = stored.decode("utf-8") if header[3] & _FLAG_UTF8 else stored.decode("cp437")
    except UnicodeDecodeError:
        return None
    if named != info.orig_filename:
        return None
    if method == zipfile.ZIP_STORED:
        if info.compress_size != size:
            return None
        data = bytes(view[start:end])
    else:
        try:  # python-isal: the same bytes as zlib, in about 60% of the time (the CRC is checked below)
            data = isal_zlib.decompressobj(-15).decompress(view[start:end], size + 1)
        except _INFLATE_ERRORS:
            return None
        if len(data) != size:
            return None
    if zlib.crc32(data) != info.CRC:
        return None
    return data


_INFLATE_ERRORS = (zlib.error, cast(type[BaseException], isal_zlib.error))


def _drained(rest: Reader) -> bool:
    """Whether nothing follows ``first``: a file read whole, or a member read whole under the budget."""
    return rest is ENDED or (isinstance(rest, Limited) and rest.inner is ENDED and not rest.ended)


def _whole_gzip(data: bytes, budget: Budget) -> bytes | None:
    """The content of ``data``, a whole gzip file, when that is exactly what GzipFile under a
    :class:`Limited` gives for it: one member, nothing after it, its header, CRC-32 and length
    checked by zlib (which accepts no header GzipFile refuses), at most ``ratio_floor`` bytes
    (one read of CHUNK_SIZE has it all; the ratio check cannot fire), within what is left of
    the expansion budget. Else None, and GzipFile reads it, with its notes; this never notes
    and never spends."""
    limits = budget.limits
    if budget.spent:
        return None
    inflate = isal_zlib.decompressobj(31)  # zlib's answer, faster (header, CRC, length checked)
    try:
        out = inflate.decompress(data, limits.ratio_floor + 1)
    except _INFLATE_ERRORS:
        return None
    if not inflate.eof or inflate.unused_data or len(out) > limits.ratio_floor:
        return None
    if budget.expanded + len(out) > limits.max_expanded_bytes:
        return None
    return out
