"""Sources read once, front to back: an image archive arriving as a stream, and blob streams
whose digest is checked as they are read.

:class:`TarStreamSource` serves ``docker save | gzip`` files and a daemon's ``image.save()``
stream alike: every member that may be a layer is yielded as it comes, small JSON members are
kept as metadata, and the images are described once the stream has ended.
:class:`VerifyingReader` hashes what passes through it and fails the read that reaches the end
when the digest or size is wrong, so the layer walk records a layer error and goes on.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Protocol

import zstandard

from layerleak.errors import ImageFormatError
from layerleak.layers import targuard
from layerleak.layers.decompress import open_decompressed
from layerleak.sources.interface import ImageDesc, ImageSource, LayerRef
from layerleak.sources.layout import layout_images

MAX_METADATA = 32 * 1024 * 1024  # a JSON member larger than this is not metadata
METADATA_NAMES = ("manifest.json", "index.json", "oci-layout", "repositories")


def norm_member(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


class TarStreamSource(ImageSource):
    """An image archive (docker-archive or OCI, optionally compressed) read from any stream once.

    ``label`` names the stream in errors (a path, or the daemon image).
    """

    streaming = True

    def __init__(self, target: str, stream: IO[bytes], kind: str | None, ref: str | None, label: str) -> None:
        super().__init__(target)
        self._stream = stream
        self.kind = kind
        self.ref = ref
        self.label = label
        self.metadata: dict[str, bytes] = {}
        self._yielded: list[tuple[str, int]] = []

    def images(self) -> list[ImageDesc]:
        return layout_images(self.metadata.get, self.kind, self.ref)

    def blobs(self, keys: set[str] | None) -> Iterator[tuple[str, IO[bytes]]]:
        """Every member that may be a layer. A stream cut short or corrupt part-way ends here
        and says so in ``damage``: what was yielded before stays scanned."""
        count = 0
        try:
            stream = open_decompressed(self._stream)
            tar = targuard.open_stream(stream)
            for member in targuard.members(tar):
                if not member.isreg():
                    continue
                count += 1
                name = norm_member(member.name)
                f = tar.extractfile(member)
                if f is None:
                    continue
                if member.size <= MAX_METADATA and (
                    name in METADATA_NAMES or name.endswith(".json") or _looks_json(f)
                ):
                    self.metadata[name] = f.read()
                    continue
                self._yielded.append((name, member.size))
                yield name, f
        except (tarfile.TarError, EOFError, OSError, zlib.error, zstandard.ZstdError) as exc:
            if count == 0 and not self._yielded:  # nothing read: the whole target's error
                why = _why(exc)
                raise ImageFormatError(f"{self.label}: archive is truncated or corrupt ({why})") from None
            self.damage = f"{self.label}: archive is corrupt or truncated after {count} files ({_why(exc)})"

    def unattributed(self) -> list[LayerRef]:
        return [
            LayerRef(index=i, key=name, blob_digest=None, diff_id=None, media_type=None, size=size)
            for i, (name, size) in enumerate(
                (n, s) for n, s in self._yielded if n.endswith(".tar") or n.startswith("blobs/")
            )
        ]

    def close(self) -> None:
        self._stream.close()


def _why(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, targuard.TarDamage) else str(exc)
    return " ".join((text or type(exc).__name__).split())[:200]


def _looks_json(f: IO[bytes]) -> bool:
    peek = getattr(f, "peek", None)
    head = peek(64) if peek else b""
    return head.lstrip()[:1] == b"{"


class ChunkStream(io.RawIOBase):
    """A readable stream over an iterable of byte chunks (e.g. the docker SDK's ``save()``).

    ``translate`` turns a transport error raised by the iterable into an OSError for the reader.
    """

    def __init__(
        self, chunks: Iterable[bytes], translate: Callable[[Exception], OSError] | None = None
    ) -> None:
        self._chunks = iter(chunks)
        self._pending = b""
        self._translate = translate

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
            except Exception as exc:
                if self._translate is None:
                    raise
                raise self._translate(exc) from None
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class BlobError(OSError):
    """A blob could not be read in full or is not what its digest says.

    An OSError, so the layer walk records it as that layer's error and the scan goes on.
    """


class VerifyingReader:
    """Passes ``raw`` through, hashing it; the read that meets the end checks digest and size."""

    def __init__(self, raw: Readable, digest: str, size: int | None) -> None:
        algo, _, self._expected = digest.partition(":")
        if algo not in ("sha256", "sha512"):
            raise ImageFormatError(f"unsupported digest algorithm in {digest!r}")
        self._hash = hashlib.new(algo)
        self._algo = algo
        self._raw = raw
        self._digest = digest
        self._size = size
        self.count = 0
        self._failure: BlobError | None = None

    def read(self, n: int = -1) -> bytes:
        if self._failure is not None:
            raise self._failure
        data = self._raw.read(n)
        if data:
            self._hash.update(data)
            self.count += len(data)
            if self._size is not None and self.count > self._size:
                self._fail(f"blob {self._digest} is longer than the {self._size} bytes announced")
            return data
        if n == 0:
            return data
        if self._size is not None and self.count < self._size:
            self._fail(f"blob {self._digest} is truncated: got {self.count} of {self._size} bytes")
        actual = self._hash.hexdigest()
        if actual != self._expected:
            self._fail(f"blob digest mismatch: expected {self._digest}, got {self._algo}:{actual}")
        return data

    def _fail(self, message: str) -> None:
        self._failure = BlobError(message)
        raise self._failure

    def close(self) -> None:
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()


class FailingReader:
    """Stands in for a blob that could not be opened: its first read raises the reason."""

    def __init__(self, message: str) -> None:
        self.message = message

    def read(self, n: int = -1) -> bytes:
        raise BlobError(self.message)

    def close(self) -> None:
        pass
