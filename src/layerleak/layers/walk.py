"""Walk one layer's tar stream: record what it adds and deletes, and scan every regular file.

A layer is scanned on its own, independently of the others: its result (:class:`LayerScan`)
keeps the paths it touched, so a file's fate (present, deleted, overwritten) is decided afterwards
by :mod:`layerleak.layers.status`. That makes layer order irrelevant to the walk, so streamed
archives and parallel workers need no coordination.
"""

from __future__ import annotations

import posixpath
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

import zstandard

from layerleak.detect.engine import FILE_HEAD, Engine
from layerleak.entries import provenance
from layerleak.entries.content import scan_entry
from layerleak.layers.decompress import open_decompressed
from layerleak.models import Match

if TYPE_CHECKING:
    from layerleak.store.sealed import SealedMatch

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
KIND_DIR = "d"
KIND_OTHER = "f"


@dataclass(frozen=True, slots=True)
class FileHit:
    path: str
    match: Match | SealedMatch  # sealed: from the cache, without plaintext (store/sealed.py)
    inner_path: str | None = None


@dataclass(slots=True)
class LayerScan:
    """What one layer holds and what was found in it."""

    key: str
    entries: dict[str, str] = field(default_factory=dict)  # path -> KIND_DIR | KIND_OTHER
    whiteouts: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)
    hits: list[FileHit] = field(default_factory=list)
    bytes_read: int = 0
    files_scanned: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # format -> count
    error: str | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, what was cut short)
    # Vendor provenance (entries/provenance.py): what this layer's package databases record
    # (path -> {"algo:hex"}), and the digests of its files that have matches.
    packages: dict[str, set[str]] = field(default_factory=dict)
    digests: dict[str, frozenset[str]] = field(default_factory=dict)


def normalize(name: str) -> str:
    return posixpath.normpath("/" + name.lstrip("/"))


class _Counting:
    """Counts uncompressed bytes read through it (for bytes_scanned and progress)."""

    def __init__(self, inner: IO[bytes], progress: Callable[[int], None] | None) -> None:
        self.inner = inner
        self.count = 0
        self.progress = progress

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.count += len(data)
        if self.progress is not None:
            self.progress(len(data))
        return data


def scan_layer(
    key: str,
    raw: IO[bytes],
    engine: Engine,
    progress: Callable[[int], None] | None = None,
) -> LayerScan:
    """Scan one layer blob. Corruption is recorded in ``error``; what was read is kept.
    ``bytes_read`` is the blob's whole uncompressed length."""
    result = LayerScan(key=key)
    counter = _Counting(open_decompressed(raw), progress)
    try:
        _walk(counter, result, engine)
        _drain(counter)
        _drain(raw)
    except _DAMAGE as exc:
        result.error = _describe(exc, counter.count)
    result.bytes_read = counter.count
    return result


def scan_layer_part(key: str, tar: IO[bytes], engine: Engine, stop: int | None) -> LayerScan:
    """Scan part of an uncompressed layer: ``tar`` is positioned at a member
    (:mod:`layerleak.layers.tarindex`), and the scan ends at the first member at or past ``stop``
    bytes from there (None: at the end-of-archive marker). The parts' scans, merged with
    :func:`merge`, are the whole layer's scan; ``bytes_read`` is left to merge()."""
    result = LayerScan(key=key)
    try:
        _walk(tar, result, engine, stop)
    except _DAMAGE as exc:
        result.error = _describe(exc, 0)
    return result


_DAMAGE = (tarfile.TarError, EOFError, OSError, zlib.error, zstandard.ZstdError)


def _walk(stream: IO[bytes] | _Counting, result: LayerScan, engine: Engine, stop: int | None = None) -> None:
    tar = tarfile.open(fileobj=stream, mode="r|")  # type: ignore[call-overload]
    for member in tar:
        if stop is not None and member.offset >= stop:
            break
        _visit(tar, member, result, engine)


def merge(key: str, parts: list[LayerScan], size: int) -> LayerScan:
    """One layer's scan from the scans of its consecutive parts (``size``: the whole layer)."""
    result = LayerScan(key=key, bytes_read=size)
    for part in parts:
        result.entries.update(part.entries)  # a path seen twice keeps its last kind, as in one walk
        result.whiteouts |= part.whiteouts
        result.opaque |= part.opaque
        result.hits.extend(part.hits)
        result.files_scanned += part.files_scanned
        for reason, count in part.skipped.items():
            result.skipped[reason] = result.skipped.get(reason, 0) + count
        result.notes.extend(part.notes)
        for path, digests in part.packages.items():
            result.packages.setdefault(path, set()).update(digests)
        result.digests.update(part.digests)
    return result


def _drain(stream: IO[bytes] | _Counting) -> None:
    """Read to the end (the rest of the layer, padding, compression trailer): ``bytes_read`` is
    then the whole layer, and a source that verifies digests (a registry) checks them there, a
    mismatch becoming this layer's error."""
    while stream.read(1 << 20):
        pass


def _describe(exc: BaseException, at: int) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "truncated" in text.lower() or "unexpected end" in text:
        return f"layer is truncated (after {at} uncompressed bytes)"
    return f"layer is corrupt after {at} uncompressed bytes: {text}"


def _visit(tar: tarfile.TarFile, member: tarfile.TarInfo, result: LayerScan, engine: Engine) -> None:
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
    f = tar.extractfile(member)
    if f is None:
        return
    first = f.read(FILE_HEAD)
    notes: list[str] = []
    reason, matches = scan_entry(path, first, f, engine, notes)
    if reason is not None:
        result.skipped[reason] = result.skipped.get(reason, 0) + 1
        return
    result.files_scanned += 1
    hits_before = len(result.hits)
    for inner_path, match in matches:
        result.hits.append(FileHit(path=path, match=match, inner_path=inner_path))
    whole = member.size <= len(first)
    if len(result.hits) > hits_before:  # a file too large to hold whole: no digest, its path still counts
        result.digests[path] = provenance.file_digests(first) if whole else frozenset()
    if whole and provenance.is_package_db(path):
        for recorded, digest in provenance.package_entries(path, first):
            result.packages.setdefault(recorded, set()).add(digest)
    result.notes.extend((path, note) for note in notes)
