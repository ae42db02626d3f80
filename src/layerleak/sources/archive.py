"""Image archives: ``docker save`` output (legacy and Docker >= 25) and OCI archives.

A plain tar is read with random access: metadata first, then only the wanted layer members, in
file order. A compressed archive (``docker save | gzip``) is streamed once: every member that may
be a layer is yielded as it comes, small JSON members are kept as metadata.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from typing import IO

from layerleak.errors import ImageFormatError, TargetError
from layerleak.layers.decompress import open_decompressed, sniff_compression
from layerleak.sources.interface import ImageDesc, ImageSource
from layerleak.sources.layout import layout_images

MAX_METADATA = 32 * 1024 * 1024  # a JSON member larger than this is not metadata
METADATA_NAMES = ("manifest.json", "index.json", "oci-layout", "repositories")


def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


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
        self._metadata: dict[str, bytes] = {}
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
            return self._metadata.get(name)
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
            yield from self._stream_blobs()
            return
        assert self._tar is not None
        wanted = [self._members[k] for k in keys or () if k in self._members]
        for member in sorted(wanted, key=lambda m: m.offset_data):
            f = self._tar.extractfile(member)
            if f is not None:
                yield _norm(member.name), f

    def _stream_blobs(self) -> Iterator[tuple[str, IO[bytes]]]:
        self._file.seek(0)
        stream = open_decompressed(self._file)
        try:
            tar = tarfile.open(fileobj=stream, mode="r|")
            for member in tar:
                if not member.isreg():
                    continue
                name = _norm(member.name)
                f = tar.extractfile(member)
                if f is None:
                    continue
                if member.size <= MAX_METADATA and (
                    name in METADATA_NAMES or name.endswith(".json") or _looks_json(f)
                ):
                    self._metadata[name] = f.read()
                    continue
                yield name, f
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ImageFormatError(f"{self.path}: archive is corrupt or truncated ({exc})") from None

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        self._file.close()


def _looks_json(f: IO[bytes]) -> bool:
    peek = getattr(f, "peek", None)
    head = peek(64) if peek else b""
    return head.lstrip()[:1] == b"{"


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

    def blobs(self, keys: set[str] | None) -> Iterator[tuple[str, IO[bytes]]]:
        for key in sorted(keys or ()):
            full = os.path.join(self.root, key)
            try:
                f = open(full, "rb")  # noqa: SIM115 - closed below
            except OSError:
                continue  # reported as a missing layer by the scanner
            with f:
                yield key, f
