"""Read image metadata laid out as files: Docker's manifest.json and the OCI image layout.

Used by archives (tar members), OCI directories (files) and streamed archives (buffered members).
Follows the OCI image spec (index, manifest, config) and Docker's `docker save` format, both
legacy (``<id>/layer.tar``) and Docker >= 25 (OCI layout plus ``manifest.json``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from layerleak.errors import ImageFormatError
from layerleak.sources.annotations import finish_index, manifest_texts
from layerleak.sources.interface import ImageDesc, LayerRef

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
REF_ANNOTATION = "org.opencontainers.image.ref.name"
MAX_DEPTH = 4

Reader = Callable[[str], bytes | None]


def blob_path(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if not algo or not hexpart or "/" in hexpart or ".." in hexpart:
        raise ImageFormatError(f"invalid digest {digest!r}")
    return f"blobs/{algo}/{hexpart}"


def load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ImageFormatError(f"{what} is not valid JSON") from None


def platform_of(obj: dict[str, Any] | None) -> str | None:
    if not isinstance(obj, dict):
        return None
    os_, arch = obj.get("os"), obj.get("architecture")
    if not os_ or not arch:
        return None
    variant = obj.get("variant")
    return f"{os_}/{arch}/{variant}" if variant else f"{os_}/{arch}"


def platform_matches(actual: str | None, wanted: str | None) -> bool:
    """``linux/arm64`` matches ``linux/arm64/v8``; ``linux/arm`` matches any arm variant."""
    if wanted is None:
        return True
    if actual is None:
        return False
    a, w = actual.split("/"), wanted.split("/")
    return a[: len(w)] == w


def _diff_ids(config: dict[str, Any]) -> list[str]:
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return [str(x) for x in ids] if isinstance(ids, list) else []


def _need(read: Reader, path: str, what: str) -> bytes:
    data = read(path)
    if data is None:
        raise ImageFormatError(f"{what} is missing ({path})")
    return data


def docker_images(read: Reader, ref: str | None) -> list[ImageDesc]:
    """Images listed in a docker-archive's manifest.json (legacy or Docker >= 25 layout)."""
    manifest = load_json(_need(read, "manifest.json", "manifest.json"), "manifest.json")
    if not isinstance(manifest, list):
        raise ImageFormatError("manifest.json is not a list of images")
    images: list[ImageDesc] = []
    for pos, entry in enumerate(manifest):
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise ImageFormatError(f"manifest.json entry {pos} has no Config")
        tags = [str(t) for t in entry.get("RepoTags") or []]
        if ref is not None and not _docker_ref_matches(ref, pos, tags):
            continue
        config_bytes = _need(read, entry["Config"], f"image config {entry['Config']}")
        config = load_json(config_bytes, f"image config {entry['Config']}")
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        diff_ids = _diff_ids(config)
        layer_paths = [str(p) for p in entry.get("Layers") or []]
        sources = entry.get("LayerSources") or {}
        problems: list[str] = []
        if diff_ids and len(diff_ids) != len(layer_paths):
            problems.append(
                f"config lists {len(diff_ids)} layers but manifest.json lists {len(layer_paths)}"
            )
        layers = []
        for i, path in enumerate(layer_paths):
            diff_id = diff_ids[i] if i < len(diff_ids) else None
            src = sources.get(diff_id) if isinstance(sources, dict) and diff_id else None
            blob_digest = None
            if path.startswith("blobs/"):
                parts = path.split("/")
                blob_digest = f"{parts[1]}:{parts[2]}" if len(parts) == 3 else None
            layers.append(
                LayerRef(
                    index=i,
                    key=path,
                    blob_digest=blob_digest,
                    diff_id=diff_id,
                    media_type=src.get("mediaType") if isinstance(src, dict) else None,
                    size=src.get("size") if isinstance(src, dict) else None,
                )
            )
        name = tags[0] if tags else image_id[:19]
        images.append(
            ImageDesc(
                name=name,
                image_id=image_id,
                platform=platform_of(config),
                config=config,
                layers=tuple(layers),
                problems=tuple(problems),
            )
        )
    if ref is not None and not images:
        raise ImageFormatError(f"no image named {ref!r} in the archive")
    return images


def _docker_ref_matches(ref: str, pos: int, tags: list[str]) -> bool:
    if ref.startswith("@"):
        return ref[1:].isdigit() and int(ref[1:]) == pos
    if ref in tags:
        return True
    # "name" matches "name:latest"; a short name matches "localhost/name:tag" (podman).
    candidates = {ref, ref + ":latest"}
    return any(t in candidates or t.split("/", 1)[-1] in candidates for t in tags)


def oci_images(read: Reader, ref: str | None) -> list[ImageDesc]:
    """Images reachable from an OCI layout's index.json, every platform."""
    index = load_json(_need(read, "index.json", "index.json"), "index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ImageFormatError("index.json has no manifests")
    top = index["manifests"]
    if ref is not None:
        top = [d for d in top if (d.get("annotations") or {}).get(REF_ANNOTATION) == ref]
        if not top:
            raise ImageFormatError(f"no image with ref name {ref!r} in index.json")
    children = []
    for desc in top:
        name = (desc.get("annotations") or {}).get(REF_ANNOTATION)
        children.append((desc, _walk_descriptor(read, desc, name, None, 0)))
    return finish_index(children, index, *_fetchers(read))


def _fetchers(read: Reader) -> tuple[Callable[[str], bytes], Callable[[str], bytes]]:
    """(manifest, blob) by digest, for annotations.finish_index: both are blobs in a layout."""

    def fetch(digest: str) -> bytes:
        return _need(read, blob_path(digest), f"blob {digest}")

    return fetch, fetch


def _walk_descriptor(
    read: Reader, desc: dict[str, Any], name: str | None, platform: str | None, depth: int
) -> list[ImageDesc]:
    if depth > MAX_DEPTH:
        raise ImageFormatError("image index nesting is too deep")
    digest = desc.get("digest")
    if not isinstance(digest, str):
        raise ImageFormatError("a descriptor in the index has no digest")
    annotations = desc.get("annotations") or {}
    if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
        return []
    platform = platform_of(desc.get("platform")) or platform
    doc = load_json(_need(read, blob_path(digest), f"manifest {digest}"), f"manifest {digest}")
    media = desc.get("mediaType") or doc.get("mediaType")
    if media in INDEX_TYPES or (media is None and "manifests" in doc):
        children = [(c, _walk_descriptor(read, c, name, None, depth + 1)) for c in doc.get("manifests") or []]
        return finish_index(children, doc, *_fetchers(read))
    if media not in MANIFEST_TYPES and "layers" not in doc:
        return []  # an artifact we do not scan (signature, SBOM, ...)
    return [image_from_manifest(read, doc, digest, name, platform)]


def image_from_manifest(
    read: Reader, manifest: dict[str, Any], digest: str, name: str | None, platform: str | None
) -> ImageDesc:
    cfg_desc = manifest.get("config") or {}
    cfg_digest = cfg_desc.get("digest")
    if not isinstance(cfg_digest, str):
        raise ImageFormatError(f"manifest {digest} has no config")
    config = load_json(
        _need(read, blob_path(cfg_digest), f"image config {cfg_digest}"), f"config {cfg_digest}"
    )
    diff_ids = _diff_ids(config)
    raw_layers = manifest.get("layers") or []
    problems = []
    if diff_ids and len(diff_ids) != len(raw_layers):
        problems.append(f"config lists {len(diff_ids)} layers but the manifest {len(raw_layers)}")
    layers = []
    for i, layer in enumerate(raw_layers):
        ldigest = layer.get("digest")
        if not isinstance(ldigest, str):
            raise ImageFormatError(f"manifest {digest}: layer {i} has no digest")
        layers.append(
            LayerRef(
                index=i,
                key=blob_path(ldigest),
                blob_digest=ldigest,
                diff_id=diff_ids[i] if i < len(diff_ids) else None,
                media_type=layer.get("mediaType"),
                size=layer.get("size") if isinstance(layer.get("size"), int) else None,
            )
        )
    plat = platform_of(config) or platform
    label = name or digest[:19]
    return ImageDesc(
        name=label,
        image_id=cfg_digest,
        platform=plat,
        config=config,
        layers=tuple(layers),
        problems=tuple(problems),
        manifest_digest=digest,
        texts=manifest_texts(manifest),
    )


def layout_images(read: Reader, kind: str | None, ref: str | None) -> list[ImageDesc]:
    """``kind`` is "docker", "oci" or None (auto: manifest.json wins, as Docker reads it)."""
    if kind == "docker" or (kind is None and read("manifest.json") is not None):
        return docker_images(read, ref)
    if read("index.json") is not None:
        return oci_images(read, ref)
    raise ImageFormatError("not an image archive: no manifest.json and no index.json")
