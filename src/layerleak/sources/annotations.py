"""Annotations of an image's index, manifest and descriptors: text outside its config.

OCI annotations are free-form ``name: value`` strings on an index, a manifest and every
descriptor in them (``org.opencontainers.image.source`` is often a clone URL, sometimes one with
``user:token@`` in it). Each becomes an :class:`ImageText` with ``source: "annotation"`` and the
annotation's name as ``key``, scanned as ``name=value``. An image collects the annotations on the
way to it: the index descriptors that lead to it, the indexes themselves, its manifest, and its
config and layer descriptors. The same name and value seen at two levels (builders copy them) is
scanned once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from layerleak.models import SourceKind
from layerleak.sources import attestations
from layerleak.sources.interface import ImageDesc, ImageText

MAX_ANNOTATIONS = 1_000  # per object: more is not metadata anyone wrote by hand

Fetch = Callable[[str], bytes]


def annotation_texts(annotations: Any) -> list[ImageText]:
    """The annotations of one object (a ``dict`` of strings; anything else is ignored)."""
    if not isinstance(annotations, dict):
        return []
    out = []
    for name, value in list(annotations.items())[:MAX_ANNOTATIONS]:
        if isinstance(name, str) and isinstance(value, str) and value:
            out.append(ImageText(SourceKind.ANNOTATION, name, f"{name}={value}"))
    return out


def manifest_texts(manifest: dict[str, Any]) -> tuple[ImageText, ...]:
    """A manifest's own annotations and those of its config and layer descriptors."""
    texts = annotation_texts(manifest.get("annotations"))
    config = manifest.get("config")
    if isinstance(config, dict):
        texts += annotation_texts(config.get("annotations"))
    layers = manifest.get("layers")
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict):
            texts += annotation_texts(layer.get("annotations"))
    return tuple(_unique(texts))


def with_texts(images: Iterable[ImageDesc], texts: Iterable[ImageText]) -> list[ImageDesc]:
    extra = list(texts)
    if not extra:
        return list(images)
    return [dataclasses.replace(i, texts=tuple(_unique([*i.texts, *extra]))) for i in images]


def descriptor_texts(desc: Any) -> list[ImageText]:
    """The annotations of a descriptor (for the images under it)."""
    return annotation_texts(desc.get("annotations")) if isinstance(desc, dict) else []


def finish_index(
    images: list[ImageDesc], index: dict[str, Any], manifest: Fetch, blob: Fetch
) -> list[ImageDesc]:
    """The images under one image index, with the index's own annotations and the attestations
    it lists for them."""
    images = with_texts(images, annotation_texts(index.get("annotations")))
    return attestations.attach(images, index, manifest, blob)


def _unique(texts: Iterable[ImageText]) -> list[ImageText]:
    return list(dict.fromkeys(texts))
