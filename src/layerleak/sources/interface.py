"""The one interface the scanner sees: image descriptions and layer blob streams."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from layerleak.models import SourceKind


@dataclass(frozen=True, slots=True)
class LayerRef:
    """A layer as the manifest describes it. ``key`` is how its source finds the blob."""

    index: int
    key: str
    blob_digest: str | None
    diff_id: str | None
    media_type: str | None
    size: int | None

    @property
    def digest(self) -> str:
        """The digest we report: diff_id (same for every compression of the layer), else blob."""
        return self.diff_id or self.blob_digest or self.key


@dataclass(frozen=True, slots=True)
class ImageText:
    """Text an image carries outside its config: an annotation, a field of an attestation."""

    source: SourceKind  # ANNOTATION or ATTESTATION
    key: str  # the annotation's name; "<predicateType> <path in the statement>"
    text: str


@dataclass(frozen=True, slots=True)
class ImageDesc:
    name: str
    image_id: str | None
    platform: str | None
    config: Mapping[str, Any]
    layers: tuple[LayerRef, ...]
    problems: tuple[str, ...] = field(default=())  # warnings: readable, but not as specified
    # errors: the image is not what it claims (a digest mismatch, a config that is not an
    # object, a refused blob path); exit 2, what could be scanned still is
    errors: tuple[str, ...] = field(default=())
    manifest_digest: str | None = None  # the image manifest's digest, when it has one
    texts: tuple[ImageText, ...] = field(default=())  # annotations, attestations (sources/annotations.py)


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """How to reach images that live elsewhere (a registry, a daemon). Archives ignore it."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    insecure: bool = False  # registries: allow plain HTTP and skip TLS verification
    ca_file: str | None = None  # registries: trust this PEM file's CAs (see registry_tls.py)
    cert_dir: str | None = None  # registries: trust the *.crt files in this directory
    platform: str | None = None  # registries: fetch only this platform's manifests


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """Where a blob's bytes lie in a local file, so another process can read it on its own."""

    path: str
    offset: int
    size: int


class ImageSource(abc.ABC):
    """A TARGET: one or more images and their layer blobs.

    A *streaming* source (a compressed archive, a daemon's save stream) can only be read once,
    front to back: :meth:`blobs` yields every blob that may be a layer, and :meth:`images` is
    valid after that. Other sources answer :meth:`images` first and :meth:`blobs` only the keys
    asked for.
    """

    streaming: bool = False
    # True when every blob stream checks its bytes against the blob digest (a registry): a layer
    # scanned from such a source may be cached under that digest.
    verifies_blobs: bool = False

    def __init__(self, target: str) -> None:
        self.target = target

    @abc.abstractmethod
    def images(self) -> list[ImageDesc]:
        """Every image in the target (after a ref filter given at construction)."""

    @abc.abstractmethod
    def blobs(self, keys: set[str] | None) -> Iterator[tuple[str, IO[bytes]]]:
        """(key, raw blob stream) for each wanted key, in the order cheapest to read.

        Each stream is valid until the next item is requested. A missing blob raises
        ImageFormatError for that key only if the source cannot go on.
        """

    # Set when the target itself is cut short or corrupt part-way (an archive): what was read
    # before is still scanned, and the scan reports this as an error of the target.
    damage: str | None = None

    def unattributed(self) -> list[LayerRef]:
        """Blobs that look like layers, for a target whose images cannot be described (its
        manifest was never reached, or cannot be read): they are scanned as layers of no image."""
        return []

    # True when blobs() may be called for one key at a time from forked worker processes, each
    # after :meth:`after_fork`: several remote blobs then stream at once (a registry).
    parallel_blobs: bool = False

    def after_fork(self) -> None:  # noqa: B027 - optional hook
        """In a forked worker: stop using connections shared with the parent (open new ones)."""

    def locate(self, key: str) -> BlobLocation | None:
        """Where blob ``key`` lies in a local file, when it does (then layers can be scanned in
        parallel processes); None for streams and remote blobs."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
