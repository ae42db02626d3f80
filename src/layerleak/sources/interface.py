"""The one interface the scanner sees: image descriptions and layer blob streams."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any


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
class ImageDesc:
    name: str
    image_id: str | None
    platform: str | None
    config: Mapping[str, Any]
    layers: tuple[LayerRef, ...]
    problems: tuple[str, ...] = field(default=())


class ImageSource(abc.ABC):
    """A TARGET: one or more images and their layer blobs.

    A *streaming* source (a compressed archive, a daemon's save stream) can only be read once,
    front to back: :meth:`blobs` yields every blob that may be a layer, and :meth:`images` is
    valid after that. Other sources answer :meth:`images` first and :meth:`blobs` only the keys
    asked for.
    """

    streaming: bool = False

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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
