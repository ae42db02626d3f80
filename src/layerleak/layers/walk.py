"""Walk one layer's tar stream: record what it adds and deletes, and scan every regular file.

A layer is scanned on its own, independently of the others: its result (:class:`LayerScan`)
keeps the paths it touched, so a file's fate (present, deleted, overwritten) is decided afterwards
by :mod:`layerleak.layers.status`. That makes layer order irrelevant to the walk, so streamed
archives and parallel workers need no coordination.
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
import zlib
from collections.abc import Callable
from typing import IO, cast

import zstandard
from isal import igzip_lib

from layerleak.detect.engine import FILE_HEAD, Engine
from layerleak.entries import gitrepo, provenance, pubkeys
from layerleak.entries.content import scan_entry
from layerleak.entries.limits import DEFAULT_LAYER_LIMITS, DEFAULT_LIMITS, LayerLimits, limit_text
from layerleak.entries.streams import ENDED
from layerleak.layers import targuard
from layerleak.layers.decompress import open_decompressed_kind
from layerleak.layers.scanned import KIND_DIR as KIND_DIR
from layerleak.layers.scanned import KIND_OTHER as KIND_OTHER
from layerleak.layers.scanned import OPAQUE as OPAQUE
from layerleak.layers.scanned import WHITEOUT_PREFIX as WHITEOUT_PREFIX
from layerleak.layers.scanned import FileHit as FileHit
from layerleak.layers.scanned import LayerScan as LayerScan
from layerleak.layers.scanned import merge as merge
from layerleak.layers.scanned import normalize as normalize
from layerleak.models import Match


class Hashing:
    """Counts and hashes the bytes read through it; with ``ratio`` set, fails a stream that
    expands more than that many times ``compressed()`` (a compression bomb as a layer)."""

    def __init__(
        self,
        inner: IO[bytes],
        progress: Callable[[int], None] | None = None,
        limits: LayerLimits | None = None,
        compressed: Hashing | None = None,
    ) -> None:
        self.inner = inner
        self.count = 0
        self.progress = progress
        self.hash: hashlib._Hash | None = hashlib.sha256()
        self.limits = limits
        self.compressed = compressed

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.count += len(data)
        if self.hash is not None:
            self.hash.update(data)
        if self.progress is not None:
            self.progress(len(data))
        if self.compressed is not None and self.limits is not None:
            limits = self.limits
            if self.count > limits.layer_ratio_floor and self.count > limits.max_layer_ratio * max(
                1, self.compressed.count
            ):
                text = limit_text("max_layer_ratio", limits.max_layer_ratio)
                raise targuard.TarDamage(
                    f"layer expands more than {text} times its compressed size (a compression bomb?); "
                    f"stopped after {self.count} uncompressed bytes",
                    "max_layer_ratio",
                )
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """python-isal's threaded gzip reader reads its input with ``readinto`` (without it,
        every threaded attempt failed at once and the layer was inflated on the scanning thread)."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def digest(self) -> str:
        return "sha256:" + (self.hash.hexdigest() if self.hash is not None else "")


def scan_layer(
    key: str,
    raw: IO[bytes],
    engine: Engine,
    progress: Callable[[int], None] | None = None,
    limits: LayerLimits = DEFAULT_LAYER_LIMITS,
) -> LayerScan:
    """Scan one layer blob. Corruption is recorded in ``error``; what was read is kept.
    ``bytes_read`` is the blob's whole uncompressed length; ``diff_id`` and ``blob_sha256`` the
    digests of what was read, when it was read to its end."""
    result = LayerScan(key=key)
    blob = Hashing(raw)
    plain = blob
    kind = None
    try:
        stream, kind = open_decompressed_kind(blob)  # type: ignore[arg-type]
        if kind is None:
            blob.hash = None  # a plain tar: its bytes are the uncompressed stream, hashed once, below
        plain = Hashing(stream, progress, limits, blob) if kind is not None else Hashing(stream, progress)
        _walk(plain, result, engine, limits=limits)
        _drain(plain)
        _drain(blob)  # a compression trailer, or what a registry checks at the end
    except _DAMAGE as exc:
        result.error = _describe(exc, plain.count)
    else:
        result.diff_id = plain.digest()
        # plain tar: the same bytes, hashed once
        result.blob_sha256 = result.diff_id if kind is None else blob.digest()
    result.bytes_read = plain.count
    return result


def scan_gzip_threaded(key: str, blob: IO[bytes], engine: Engine) -> LayerScan | None:
    """Scan a gzip layer blob inflated on a second thread (python-isal and hashlib release the
    GIL), its blob digest hashed there too; None if anything about it is damaged: the caller then
    scans it again with :func:`scan_layer`, which reports the damage, and what was read before
    it, exactly as it always does."""
    from isal import igzip_threaded

    compressed = Hashing(blob)
    stream = igzip_threaded.open(compressed, "rb", threads=1)  # type: ignore[no-untyped-call]
    try:
        scan = scan_layer(key, stream, engine)
        while compressed.read(1 << 20):  # a trailer after the gzip stream (a digest check at its end)
            pass
    except Exception:  # noqa: BLE001 - damage of any kind: the plain path reports it as usual
        return None
    finally:
        stream.close()
    if scan.error is not None:
        return None
    scan.blob_sha256 = compressed.digest()
    return scan


def scan_layer_part(
    key: str, tar: IO[bytes], engine: Engine, stop: int | None, limits: LayerLimits = DEFAULT_LAYER_LIMITS
) -> LayerScan:
    """Scan part of an uncompressed layer: ``tar`` is positioned at a member
    (:mod:`layerleak.layers.tarindex`), and the scan ends at the first member at or past ``stop``
    bytes from there (None: at the end-of-archive marker). The parts' scans, merged with
    :func:`merge`, are the whole layer's scan; ``bytes_read`` and the digests are left to
    merge()."""
    result = LayerScan(key=key)
    try:
        _walk(tar, result, engine, stop, limits, _file_region(tar))
    except _DAMAGE as exc:
        result.error = _describe(exc, 0)
    return result


_DAMAGE: tuple[type[BaseException], ...] = (
    tarfile.TarError,
    EOFError,
    OSError,
    zlib.error,
    zstandard.ZstdError,
    cast(type[BaseException], igzip_lib.IsalError),  # a corrupt gzip layer, inflated by isal
)


Region = tuple[int, int]  # (file descriptor, offset of the tar's first byte in it)


def _file_region(stream: IO[bytes]) -> Region | None:
    """Where a tar read from an open file starts in it (None: not a file). Such a tar is read
    seekable: tarfile reads its headers and members straight from the file, not through its
    stream buffer (a tenth of a scan of many small files went there), and a large member is
    digested again from the file only when it has a match."""
    try:
        return stream.fileno(), stream.tell()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def _walk(
    stream: IO[bytes] | Hashing,
    result: LayerScan,
    engine: Engine,
    stop: int | None = None,
    limits: LayerLimits = DEFAULT_LAYER_LIMITS,
    region: Region | None = None,
) -> None:
    if region is None:
        tar, origin, fd = targuard.open_stream(stream, limits), 0, None
    else:  # offsets are then the file's own
        fd, origin = region
        tar = targuard.open_seekable(stream, limits, fd, FILE_HEAD)
    repos = gitrepo.Collector()  # git object databases, read at the end of the layer
    try:
        for member in targuard.members(tar, limits):
            if stop is not None and member.offset - origin >= stop:
                break
            _visit(tar, member, result, engine, repos, fd)
    finally:
        if repos.repos:
            _add_git(repos, result, engine)


def _add_git(repos: gitrepo.Collector, result: LayerScan, engine: Engine) -> None:
    current = ((h.path, h.match.rule_id, h.match.secret) for h in result.hits if isinstance(h.match, Match))
    for hit in repos.finish(engine, current):
        key_id = pubkeys.private_key_id(hit.match.secret)
        result.hits.append(
            FileHit(path=hit.path, match=hit.match, inner_path=hit.inner_path, git=hit.origin, key_id=key_id)
        )
    result.notes.extend(repos.notes)


def _drain(stream: IO[bytes] | Hashing) -> None:
    """Read to the end (the rest of the layer, padding, compression trailer): ``bytes_read`` is
    then the whole layer, and a source that verifies digests (a registry) checks them there, a
    mismatch becoming this layer's error."""
    while stream.read(1 << 20):
        pass


def _describe(exc: BaseException, at: int) -> str:
    if isinstance(exc, targuard.TarDamage):
        return f"layer cannot be read past a tar header ({exc.message}); what came before was scanned"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "truncated" in text.lower() or "unexpected end" in text:
        return f"layer is truncated (after {at} uncompressed bytes)"
    return f"layer is corrupt after {at} uncompressed bytes: {text}"


def _visit(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    result: LayerScan,
    engine: Engine,
    repos: gitrepo.Collector,
    fd: int | None = None,
) -> None:
    """Record and scan one member. ``fd``: the tar is read seekable from this open file, and
    ``member.offset_data`` is where the member's bytes are in it."""
    path = normalize(member.name)
    parent, base = posixpath.split(path)
    if base.startswith(WHITEOUT_PREFIX):
        if base == OPAQUE:
            result.opaque.add(parent)
        elif not base.startswith(".wh..wh."):  # other .wh..wh.* are AUFS metadata
            result.whiteouts.add(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]))
        return
    result.entries[path] = KIND_DIR if member.isdir() else KIND_OTHER
    # Hardlinks and symlinks point at content scanned elsewhere: never scan it twice.
    if not member.isreg() or member.size == 0:
        return
    f: IO[bytes] | targuard.SparseData | provenance.Hashing | None = tar.extractfile(member)
    if f is None:
        return
    if member.issparse():
        f = targuard.SparseData(f, member)
    if repos.take(path, f):  # a git object file: read with its repository
        return
    hashing = None
    if member.issparse():
        fd = None  # its bytes are not one stretch of the file
    if member.size > FILE_HEAD and fd is None:  # too large to digest from its first chunk
        f = hashing = provenance.Hashing(f, path)  # digested on the way
    # never more than the member holds: a read of FILE_HEAD allocates that much first (and with
    # the mmap threshold of layerleak.memory, maps and unmaps it), for every small file
    first = f.read(min(member.size, FILE_HEAD))
    # A file read whole has nothing more to give: asking its reader anyway (the engine reads on
    # until an empty read) allocated another 2 MiB buffer per small file.
    whole = member.size <= len(first)
    rest = ENDED if whole else f
    notes: list[str] = []
    reason, matches = scan_entry(path, first, rest, engine, notes, base)  # type: ignore[arg-type]
    if reason is not None:
        result.skipped[reason] = result.skipped.get(reason, 0) + 1
        return
    result.files_scanned += 1
    hits_before = len(result.hits)
    cap = DEFAULT_LIMITS.max_matches
    distinct: set[tuple[str, str]] = set()
    for count, (inner_path, match) in enumerate(matches):
        distinct.add((match.rule_id, match.secret))
        if len(distinct) > cap or count >= 100 * cap:  # the same secret repeated counts once, up to a point
            notes.append(f"more than {limit_text('max_matches', cap)} secrets in this file; the rest of it "
                         "was not scanned")
            break
        key_id = pubkeys.private_key_id(match.secret)
        result.hits.append(FileHit(path=path, match=match, inner_path=inner_path, key_id=key_id))
    for fp, kind, detail in pubkeys.public_keys(path, first, base):
        result.public_keys.setdefault(fp, []).append((path, kind, detail))
    if len(result.hits) > hits_before:
        if hashing is not None:
            result.digests[path] = hashing.digests()
        elif fd is not None and member.size > FILE_HEAD:  # read again, only now it matters
            result.digests[path] = provenance.region_digests(fd, member.offset_data, member.size, path)
        else:
            result.digests[path] = provenance.file_digests(first)
    if whole and provenance.is_package_db(path):
        for recorded, digest in provenance.package_entries(path, first):
            result.packages.setdefault(recorded, set()).add(digest)
    if notes:
        result.notes.extend((path, note) for note in notes)

