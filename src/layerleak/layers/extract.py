"""One file exactly as a layer stores it, for evidence (``layerleak extract``).

The bytes come from the layer's own tar stream, so a file a later layer deleted or overwrote is
still there. Nothing from the image decides where anything is written: the only file written is
the one the user named, created anew (never over an existing file, never through a symlink). A
symbolic link is never followed; a hard link is resolved only to a file stored in the same layer.
A directory is refused unless ``as_tar``: then its members are copied into a tar as stored
(links stay links).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import zstandard

from layerleak.errors import LayerleakError, UsageError
from layerleak.layers.decompress import open_decompressed
from layerleak.layers.scanned import OPAQUE, WHITEOUT_PREFIX, normalize
from layerleak.sources.interface import ImageDesc, ImageSource, LayerRef
from layerleak.sources.platforms import select

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

MAX_LINK_HOPS = 8


class ExtractError(LayerleakError):
    """The file cannot be extracted as asked (not in that layer, a link, a directory)."""


@dataclass(frozen=True, slots=True)
class Extracted:
    path: str  # in the image
    image: str
    layer_index: int
    diff_id: str | None
    blob_digest: str | None
    size: int  # bytes written
    sha256: str  # of the bytes written
    as_tar: bool
    members: int = 1
    via_link: str | None = None  # the hard link asked for, when the bytes are its target's


class _Sink:
    """The output file: created only when there is something to write, removed if cut short."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.handle: IO[bytes] | None = None
        self.hash = hashlib.sha256()
        self.size = 0

    def open(self) -> IO[bytes]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.out, flags, 0o600)  # evidence may hold a secret: owner only
        except FileExistsError:
            raise UsageError(f"-o {self.out}: already exists (evidence is never overwritten)") from None
        except OSError as exc:
            raise UsageError(f"-o {self.out}: cannot create it ({exc.strerror})") from None
        self.handle = os.fdopen(fd, "wb")
        return self.handle

    def write(self, data: bytes) -> None:
        handle = self.handle or self.open()
        handle.write(data)
        self.hash.update(data)
        self.size += len(data)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()

    def discard(self) -> None:
        if self.handle is not None:
            self.handle.close()
            with contextlib.suppress(OSError):
                self.out.unlink()


class _Hashing(io.RawIOBase):
    """A write-only file object over the sink (what tarfile and copyfileobj write to)."""

    def __init__(self, sink: _Sink) -> None:
        super().__init__()
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        chunk = bytes(data)
        self.sink.write(chunk)
        return len(chunk)


def pick_image(images: list[ImageDesc], name: str | None, target: str, platform: str | None = None
               ) -> ImageDesc:
    images = select(images, platform, target)
    if name is not None:
        chosen = [i for i in images if name in (i.name, i.image_id)]
        if not chosen:
            raise UsageError(f"{target}: no image {name!r} (it holds {', '.join(i.name for i in images)})")
        return chosen[0]
    if len(images) != 1:
        names = ", ".join(i.name for i in images) or "none"
        raise UsageError(f"{target}: holds {len(images)} images ({names}); pick one with --image")
    return images[0]


def _layer(image: ImageDesc, index: int) -> LayerRef:
    if not 0 <= index < len(image.layers):
        raise UsageError(f"--layer {index}: {image.name} has {len(image.layers)} layers "
                         f"(0..{len(image.layers) - 1})")
    return image.layers[index]


@contextlib.contextmanager
def _layer_stream(source: ImageSource, image_name: str | None, platform: str | None, index: int
                  ) -> Iterator[tuple[ImageDesc, LayerRef, IO[bytes]]]:
    """The uncompressed tar stream of layer ``index``. A streaming source (a compressed archive,
    a daemon's save stream) names its images only after its last blob, so its blobs are first
    copied to a temporary directory, removed on return."""
    if not source.streaming:
        image = pick_image(source.images(), image_name, source.target, platform)
        ref = _layer(image, index)
        for key, raw in source.blobs({ref.key}):
            if key == ref.key:
                yield image, ref, open_decompressed(raw)
                return
        raise ExtractError(f"layer {index} ({ref.digest}) is missing from the image")
    with tempfile.TemporaryDirectory(prefix="layerleak-extract-") as tmp:
        spooled: dict[str, Path] = {}
        for n, (key, raw) in enumerate(source.blobs(None)):
            dest = Path(tmp) / str(n)
            with dest.open("wb") as f:
                shutil.copyfileobj(raw, f, 1 << 20)
            spooled[key] = dest
        image = pick_image(source.images(), image_name, source.target, platform)
        ref = _layer(image, index)
        if ref.key not in spooled:
            raise ExtractError(f"layer {index} ({ref.digest}) is missing from the image")
        with spooled[ref.key].open("rb") as raw_file:
            yield image, ref, open_decompressed(raw_file)


_DAMAGE = (tarfile.TarError, EOFError, zlib.error, zstandard.ZstdError)


def extract(
    open_source: Callable[[], ImageSource],
    path: str,
    layer_index: int,
    out: Path,
    *,
    image_name: str | None = None,
    platform: str | None = None,
    as_tar: bool = False,
) -> Extracted:
    """Write ``path`` as layer ``layer_index`` stores it to ``out``. ``open_source`` opens the
    target afresh (a hard link is resolved by reading the layer a second time)."""
    want = normalize(path)
    asked = want
    for _hop in range(MAX_LINK_HOPS):
        sink = _Sink(out)
        try:
            with open_source() as source, _layer_stream(source, image_name, platform, layer_index) as found:
                image, ref, tar = found
                members, link = _copy(tar, want, sink, as_tar, layer_index)
        except _DAMAGE as exc:
            sink.discard()
            raise ExtractError(f"layer {layer_index} is damaged before {want} could be read: {exc}") from None
        except OSError as exc:
            sink.discard()
            raise ExtractError(f"{want}: cannot be extracted ({exc.strerror or exc})") from None
        except BaseException:
            sink.discard()
            raise
        sink.close()
        if link is None:
            return Extracted(
                path=want, image=image.name, layer_index=layer_index, diff_id=ref.diff_id,
                blob_digest=ref.blob_digest, size=sink.size, sha256=sink.hash.hexdigest(), as_tar=as_tar,
                members=members, via_link=asked if asked != want else None,
            )
        want = link
    raise ExtractError(f"{asked}: more than {MAX_LINK_HOPS} hard links")


_COPIED = ("mode", "uid", "gid", "uname", "gname", "mtime", "type", "linkname", "size", "pax_headers")


def _copy(stream: IO[bytes], want: str, sink: _Sink, as_tar: bool, layer_index: int
          ) -> tuple[int, str | None]:
    """(members copied, the hard link's target to read instead, or None)."""
    tar = tarfile.open(fileobj=stream, mode="r|")
    prefix = want.rstrip("/") + "/"
    parent, base = posixpath.split(want)
    writer: tarfile.TarFile | None = None
    copied = 0
    for member in tar:
        name = normalize(member.name)
        mparent, mbase = posixpath.split(name)
        if mbase.startswith(WHITEOUT_PREFIX) and mparent == parent and mbase[len(WHITEOUT_PREFIX):] == base:
            raise ExtractError(f"{want} is deleted in layer {layer_index} (a whiteout): the layer stores "
                               "no bytes for it; extract it from the layer that added it")
        if mbase == OPAQUE or not (name == want or (as_tar and name.startswith(prefix))):
            continue
        if as_tar:
            if writer is None:
                writer = tarfile.open(fileobj=_Hashing(sink), mode="w|", format=tarfile.PAX_FORMAT)
            copy = tarfile.TarInfo(member.name)
            for attr in _COPIED:
                setattr(copy, attr, getattr(member, attr))
            writer.addfile(copy, tar.extractfile(member) if member.isreg() else None)
            copied += 1
            continue
        if member.issym():
            raise ExtractError(f"{want} is a symbolic link to {member.linkname!r} in layer "
                               f"{layer_index}: links are not followed; extract the path it names")
        if member.isdir():
            raise ExtractError(f"{want} is a directory in layer {layer_index}; --tar writes a tar of it")
        if member.islnk():
            return 0, normalize(member.linkname)  # in this layer: tar hard links name earlier members
        data = tar.extractfile(member) if member.isreg() else None
        if data is None:
            raise ExtractError(f"{want} is not a regular file in layer {layer_index} (a device or fifo)")
        sink.open()
        shutil.copyfileobj(data, _Hashing(sink), 1 << 20)
        return 1, None
    if writer is not None:
        writer.close()
        return copied, None
    raise ExtractError(f"{want} is not in layer {layer_index}")
