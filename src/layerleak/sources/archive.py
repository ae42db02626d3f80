"""Image archives: ``docker save`` output (legacy and Docker >= 25) and OCI archives.

A plain tar is read with random access: metadata first, then only the wanted layer members, in
file order. A compressed archive (``docker save | gzip``) is streamed once: every member that may
be a layer is yielded as it comes, small JSON members are kept as metadata.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import sys
import tarfile
from collections.abc import Iterator
from typing import IO, cast

from layerleak.entries.streams import Counting, Prefixed
from layerleak.errors import ImageFormatError, TargetError
from layerleak.layers import targuard
from layerleak.layers.decompress import sniff_compression
from layerleak.sources.interface import BlobLocation, ImageDesc, ImageSource, LayerRef
from layerleak.sources.layout import layout_images
from layerleak.sources.stream import MAX_METADATA, FailingReader, TarStreamSource
from layerleak.sources.stream import norm_member as _norm

MAX_LINK_HOPS = 8
STDIN = "-"  # the archive arrives on standard input


def open_input(path: str) -> IO[bytes]:
    """The archive file, or a copy of standard input's descriptor for ``-`` (so closing the
    source leaves ``sys.stdin`` alone)."""
    if path == STDIN:
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    return open(path, "rb")  # noqa: SIM115 - closed by the source's close()


class TarArchiveSource(ImageSource):
    def __init__(self, target: str, path: str, kind: str | None, ref: str | None) -> None:
        super().__init__(target)
        self.path = path
        self.kind = kind
        self.ref = ref
        try:
            self._file: IO[bytes] = open_input(path)
        except OSError as exc:
            raise TargetError(f"cannot open {path}: {exc.strerror or exc}") from None
        if os.path.isdir(path):
            raise TargetError(f"{path} is a directory, not an archive")
        self._opened = self._file
        # A pipe, a FIFO or a terminal (`docker save x | layerleak scan -`) can be read once only:
        # it is streamed, its first bytes given back in front of the rest.
        # `-` is always streamed: even a file redirected to stdin is read from where stdin stands.
        self._seekable = path != STDIN and stat.S_ISREG(os.fstat(self._file.fileno()).st_mode)
        try:
            head = self._file.read(512)
        except OSError as exc:
            self._file.close()
            raise TargetError(f"cannot read {path}: {exc.strerror or exc}") from None
        if self._seekable:
            self._file.seek(0)
        else:
            self._file = io.BufferedReader(Counting(Prefixed(head, self._file)), buffer_size=1 << 20)
        self._compression = sniff_compression(head)
        self.streaming = self._compression is not None or not self._seekable
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._stream = TarStreamSource(target, self._file, kind, ref, path)
        if not self.streaming:
            self._index()

    def _index(self) -> None:
        """Every member, by name. An archive cut short or corrupt part-way keeps the members
        before the damage (and says so in ``damage``): their layers are still scanned."""
        try:
            self._tar = targuard.open_seekable(self._file)
        except (tarfile.TarError, EOFError, OSError):
            self.close()
            raise TargetError(f"{self.path} is not a tar archive or is truncated") from None
        try:
            for m in targuard.members(self._tar):
                self._members[_norm(m.name)] = m
        except (tarfile.TarError, EOFError, OSError) as exc:
            text = exc.message if isinstance(exc, targuard.TarDamage) else (str(exc) or type(exc).__name__)
            count = len(self._members)
            self.damage = f"{self.path}: archive is corrupt or truncated after {count} members ({text})"

    def _resolve(self, name: str) -> tarfile.TarInfo | str:
        """The regular member ``name`` is, following symbolic and hard links a few hops within
        the archive; a message when it is none (a directory, a link loop, a link outside)."""
        member = self._members.get(name)
        for _ in range(MAX_LINK_HOPS):
            if member is None:
                return f"{name} is not in the archive"
            if member.isreg():
                return member
            if not (member.issym() or member.islnk()):
                return f"{name} is not a regular file in the archive"
            target = member.linkname
            if member.issym():
                target = posixpath.join(posixpath.dirname(_norm(member.name)), target)
            member = self._members.get(_norm(posixpath.normpath(target)))
        return f"{name} is a chain of links more than {MAX_LINK_HOPS} long (a loop?)"

    def _read_member(self, name: str) -> bytes | None:
        if self.streaming:
            return self._stream.metadata.get(name)
        assert self._tar is not None
        member = self._resolve(name)
        if isinstance(member, str) or member.size > MAX_METADATA:
            return None
        f = self._tar.extractfile(member)
        try:
            return f.read() if f else None
        except (tarfile.TarError, EOFError, OSError):
            return None  # cut short: missing, as the caller will say

    def images(self) -> list[ImageDesc]:
        return layout_images(self._read_member, self.kind, self.ref)

    def blobs(self, keys: set[str] | None) -> Iterator[tuple[str, IO[bytes]]]:
        if self.streaming:
            if self._seekable:
                self._file.seek(0)
            yield from self._stream.blobs(None)
            self.damage = self._stream.damage
            return
        assert self._tar is not None
        wanted: list[tuple[str, tarfile.TarInfo]] = []
        for key in sorted(keys or ()):
            if key not in self._members:
                continue  # reported as a missing layer by the scanner
            member = self._resolve(key)
            if isinstance(member, str):
                yield key, cast(IO[bytes], FailingReader(f"layer {member}"))
            else:
                wanted.append((key, member))
        for key, member in sorted(wanted, key=lambda km: km[1].offset_data):
            f = self._tar.extractfile(member)
            if f is not None:
                yield key, f

    def unattributed(self) -> list[LayerRef]:
        if self.streaming:
            return self._stream.unattributed()
        found: list[LayerRef] = []
        for name, member in self._members.items():
            if member.isreg() and looks_like_layer(name) and member.size > 0 and not self._json(member):
                found.append(LayerRef(index=len(found), key=name, blob_digest=None, diff_id=None,
                                      media_type=None, size=member.size))
        return found

    def _json(self, member: tarfile.TarInfo) -> bool:
        assert self._tar is not None
        f = self._tar.extractfile(member)
        try:
            return f is not None and f.read(64).lstrip()[:1] in (b"{", b"[")
        except (tarfile.TarError, EOFError, OSError):
            return False

    def locate(self, key: str) -> BlobLocation | None:
        member = None if self.streaming else self._resolve(key)
        if member is None or isinstance(member, str):
            return None
        # realpath: /dev/stdin redirected from a file is that file, for the worker processes
        return BlobLocation(os.path.realpath(self.path), member.offset_data, member.size)

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        self._file.close()
        self._opened.close()


class OciDirSource(ImageSource):
    """An OCI image layout directory (``oci:DIR[:REF]``)."""

    def __init__(self, target: str, path: str, ref: str | None) -> None:
        super().__init__(target)
        self.root = os.path.abspath(path)
        self.ref = ref
        if not os.path.isfile(os.path.join(self.root, "index.json")):
            raise TargetError(f"{path} is not an OCI layout directory (no index.json)")

    def _read(self, name: str) -> bytes | None:
        full = os.path.join(self.root, name)
        if not os.path.realpath(full).startswith(os.path.realpath(self.root) + os.sep):
            raise ImageFormatError(f"{name} points outside the layout")
        try:
            with open(full, "rb") as f:
                return f.read(MAX_METADATA + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ImageFormatError(f"cannot read {name}: {exc.strerror}") from None

    def images(self) -> list[ImageDesc]:
        return layout_images(self._read, "oci", self.ref)

    def _blob(self, key: str) -> str | None:
        """The path of blob ``key``: inside the layout (symbolic links included) and a regular
        file (never a FIFO or a device, which would block or never end); None otherwise."""
        full = os.path.join(self.root, key)
        real = os.path.realpath(full)
        if not real.startswith(os.path.realpath(self.root) + os.sep):
            return None
        try:
            return full if stat.S_ISREG(os.stat(real).st_mode) else None
        except OSError:
            return None

    def locate(self, key: str) -> BlobLocation | None:
        full = self._blob(key)
        if full is None:
            return None
        try:
            size = os.path.getsize(full)
        except OSError:
            return None
        return BlobLocation(full, 0, size)

    def blobs(self, keys: set[str] | None) -> Iterator[tuple[str, IO[bytes]]]:
        for key in sorted(keys or ()):
            full = self._blob(key)
            if full is None:
                if os.path.lexists(os.path.join(self.root, key)):
                    failing = FailingReader(f"blob {key} is not a regular file inside the layout")
                    yield key, cast(IO[bytes], failing)
                continue  # else reported as a missing layer by the scanner
            try:
                f = open(full, "rb")  # noqa: SIM115 - closed below
            except OSError:
                continue
            with f:
                yield key, f

    def unattributed(self) -> list[LayerRef]:
        found: list[LayerRef] = []
        blobs = os.path.join(self.root, "blobs")
        for algo in sorted(os.listdir(blobs)) if os.path.isdir(blobs) else []:
            folder = os.path.join(blobs, algo)
            if not os.path.isdir(folder) or os.path.islink(folder):
                continue
            for name in sorted(os.listdir(folder)):
                key = f"blobs/{algo}/{name}"
                full = self._blob(key)
                if full is not None and looks_like_layer(key) and not _is_json_file(full):
                    found.append(LayerRef(index=len(found), key=key, blob_digest=None, diff_id=None,
                                          media_type=None, size=os.path.getsize(full)))
        return found


def looks_like_layer(name: str) -> bool:
    """A member that a docker or OCI archive stores layers as."""
    return name.endswith("/layer.tar") or name.endswith(".tar") or name.startswith("blobs/")


def _is_json_file(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(64).lstrip()[:1] in (b"{", b"[")
