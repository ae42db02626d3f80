"""Image archives: ``docker save`` output (legacy and Docker >= 25) and OCI archives.

A plain tar is read with random access: metadata first, then only the wanted layer members, in
file order. A compressed archive (``docker save | gzip``) is streamed once: every member that may
be a layer is yielded as it comes, small JSON members are kept as metadata.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from collections.abc import Iterator
from typing import IO

from layerleak.errors import ImageFormatError, TargetError
from layerleak.layers.decompress import sniff_compression
from layerleak.sources.interface import BlobLocation, ImageDesc, ImageSource
from layerleak.sources.layout import layout_images
from layerleak.sources.stream import MAX_METADATA, TarStreamSource
from layerleak.sources.stream import norm_member as _norm


class TarArchiveSource(ImageSource):
    def __init__(self, target: str, path: str, kind: str | None, ref: str | None) -> None:
        super().__init__(target)
        self.path = path
        self.kind = kind
        self.ref = ref
        try:
            self._file: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise TargetError(f"cannot open {path}: {exc.strerror or exc}") from None
        if os.path.isdir(path):
            raise TargetError(f"{path} is a directory, not an archive")
        head = self._file.read(512)
        self._file.seek(0)
        self._compression = sniff_compression(head)
        self.streaming = self._compression is not None
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._stream = TarStreamSource(target, self._file, kind, ref, path)
        if not self.streaming:
            try:
                self._tar = tarfile.open(fileobj=self._file, mode="r:")
                for m in self._tar.getmembers():
                    self._members[_norm(m.name)] = m
            except (tarfile.TarError, EOFError, OSError):
                self.close()
                raise TargetError(f"{path} is not a tar archive or is truncated") from None

    def _read_member(self, name: str) -> bytes | None:
        if self.streaming:
            return self._stream.metadata.get(name)
        assert self._tar is not None
        member = self._members.get(name)
        if member is None or not member.isreg() or member.size > MAX_METADATA:
            return None
        f = self._tar.extractfile(member)
        return f.read() if f else None

    def images(self) -> list[ImageDesc]:
        return layout_images(self._read_member, self.kind, self.ref)

    def blobs(self, keys: set[str] | None) -> Iterator[tuple[str, IO[bytes]]]:
        if self.streaming:
            self._file.seek(0)
            yield from self._stream.blobs(None)
            return
        assert self._tar is not None
        wanted = [self._members[k] for k in keys or () if k in self._members]
        for member in sorted(wanted, key=lambda m: m.offset_data):
            f = self._tar.extractfile(member)
            if f is not None:
                yield _norm(member.name), f

    def locate(self, key: str) -> BlobLocation | None:
        member = None if self.streaming else self._members.get(key)
        for _ in range(8):  # a layer.tar that links to the blob (docker save, Docker >= 25)
            if member is None or not (member.issym() or member.islnk()):
                break
            target = member.linkname
            if member.issym():
                target = posixpath.join(posixpath.dirname(_norm(member.name)), target)
            member = self._members.get(_norm(posixpath.normpath(target)))
        if member is None or not member.isreg():
            return None
        return BlobLocation(os.path.abspath(self.path), member.offset_data, member.size)

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        self._file.close()


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

    def locate(self, key: str) -> BlobLocation | None:
        full = os.path.join(self.root, key)
        try:
            size = os.path.getsize(full)
        except OSError:
            return None
        return BlobLocation(full, 0, size)

    def blobs(self, keys: set[str] | None) -> Iterator[tuple[str, IO[bytes]]]:
        for key in sorted(keys or ()):
            full = os.path.join(self.root, key)
            try:
                f = open(full, "rb")  # noqa: SIM115 - closed below
            except OSError:
                continue  # reported as a missing layer by the scanner
            with f:
                yield key, f
