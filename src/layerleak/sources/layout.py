"""Read image metadata laid out as files: Docker's manifest.json and the OCI image layout.

Used by archives (tar members), OCI directories (files) and streamed archives (buffered members).
Follows the OCI image spec (index, manifest, config) and Docker's `docker save` format, both
legacy (``<id>/layer.tar``) and Docker >= 25 (OCI layout plus ``manifest.json``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from layerleak.entries.limits import DEFAULT_IMAGE_LIMITS, limit_text
from layerleak.errors import ImageFormatError
from layerleak.sources.annotations import descriptor_texts, finish_index, manifest_texts, with_texts
from layerleak.sources.interface import ImageDesc, LayerRef

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
REF_ANNOTATION = "org.opencontainers.image.ref.name"
MAX_DEPTH = DEFAULT_IMAGE_LIMITS.max_index_depth
MAX_NAMES_SHOWN = 20  # an unknown REF's error lists at most this many of the image's names
_HEX = re.compile(r"[0-9a-f]{32,128}")
_ALGO = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*")
# What nests, outside strings: the brackets a JSON parser recurses into.
_STRUCTURE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]')  # an unclosed string runs to the end

Reader = Callable[[str], bytes | None]


def blob_path(digest: str) -> str:
    """``blobs/ALGO/HEX``; anything else (``../`` traversal, a slash, an empty part) is refused."""
    algo, _, hexpart = digest.partition(":") if isinstance(digest, str) else ("", "", "")
    if not _ALGO.fullmatch(algo) or not _HEX.fullmatch(hexpart):
        raise ImageFormatError(f"invalid digest {str(digest)[:80]!r}; refused")
    return f"blobs/{algo}/{hexpart}"


def json_depth(data: bytes) -> int:
    """How deep arrays and objects nest in ``data`` (strings skipped), without parsing it."""
    depth = deepest = 0
    for m in _STRUCTURE.finditer(data):
        c = m.group()
        if c in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif c in (b"]", b"}"):
            depth -= 1
    return deepest


def load_json(data: bytes, what: str) -> Any:
    """A JSON document within ``max_json_bytes`` and ``max_json_depth``; ImageFormatError else."""
    limits = DEFAULT_IMAGE_LIMITS
    if len(data) > limits.max_json_bytes:
        limit = limit_text("max_json_bytes", limits.max_json_bytes)
        raise ImageFormatError(f"{what} is larger than {limit}")
    if json_depth(data) > limits.max_json_depth:
        limit = limit_text("max_json_depth", limits.max_json_depth)
        raise ImageFormatError(f"{what} nests deeper than {limit}")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ImageFormatError(f"{what} is not valid JSON") from None


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (wrong types read as absent)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def verify_digest(data: bytes, digest: str, what: str) -> str | None:
    """A message when ``data`` does not hash to ``digest`` (sha256 and sha512 are checked)."""
    algo, _, expected = digest.partition(":")
    if algo not in ("sha256", "sha512"):
        return None
    actual = hashlib.new(algo, data).hexdigest()
    if actual == expected:
        return None
    return f"{what} does not match its digest: expected {digest}, content is {algo}:{actual}"


def platform_of(obj: dict[str, Any] | None) -> str | None:
    if not isinstance(obj, dict):
        return None
    os_, arch = obj.get("os"), obj.get("architecture")
    if not isinstance(os_, str) or not isinstance(arch, str) or not os_ or not arch:
        return None
    variant = _str(obj.get("variant"))
    return f"{os_}/{arch}/{variant}" if variant else f"{os_}/{arch}"


def names_listing(names: list[str], limit: int = MAX_NAMES_SHOWN) -> str:
    """Names read from an image, for an error line: printable, each at most 128 long, at most
    ``limit`` of them (``none`` when empty)."""
    shown = ["".join(c if c.isprintable() else "?" for c in n[:128]) for n in names[:limit]]
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return (", ".join(shown) + more) if shown else "none"


def _diff_ids(config: dict[str, Any]) -> list[str]:
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return [x if isinstance(x, str) else "" for x in ids] if isinstance(ids, list) else []


def _config(data: bytes, what: str, errors: list[str]) -> dict[str, Any]:
    """An image config; one that is not a JSON object is an error of its image (whose layers
    are still scanned), not of the whole target."""
    try:
        config = load_json(data, what)
    except ImageFormatError as exc:
        errors.append(exc.message)
        return {}
    if not isinstance(config, dict):
        errors.append(f"{what} is not a JSON object")
        return {}
    return config


def _capped_layers(layers: list[Any], errors: list[str]) -> list[Any]:
    limit = DEFAULT_IMAGE_LIMITS.max_layers
    if len(layers) <= limit:
        return layers
    errors.append(f"the image lists {len(layers)} layers, more than {limit_text('max_layers', limit)}; "
                  f"only the first {limit} were scanned")
    return layers[:limit]


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
    names: list[str] = []  # what a REF may name, for the error when it names nothing
    for pos, entry in enumerate(manifest):
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise ImageFormatError(f"manifest.json entry {pos} has no Config")
        tags = [t for t in as_list(entry.get("RepoTags")) if isinstance(t, str)]
        names += tags or [f"@{pos}"]
        if ref is not None and not _docker_ref_matches(ref, pos, tags):
            continue
        config_path: str = entry["Config"]
        what = f"image config {config_path}"
        config_bytes = _need(read, config_path, what)
        errors: list[str] = []
        config = _config(config_bytes, what, errors)
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        claimed = _claimed_config_digest(config_path)
        if claimed is not None and claimed != image_id:
            errors.append(f"{what} does not match its digest: expected {claimed}, content is {image_id}")
        diff_ids = _diff_ids(config)
        if not isinstance(entry.get("Layers"), list):
            raise ImageFormatError(f"manifest.json entry {pos}: Layers is not a list")
        raw_paths = _capped_layers(entry["Layers"], errors)
        layer_paths = []
        for i, path in enumerate(raw_paths):
            if isinstance(path, str) and path:
                layer_paths.append(path)
            else:
                errors.append(f"manifest.json entry {pos}: layer {i} is not a path")
                layer_paths.append(f"invalid:{i}")
        sources = as_dict(entry.get("LayerSources"))
        problems: list[str] = []
        if diff_ids and len(diff_ids) != len(layer_paths):
            problems.append(
                f"config lists {len(diff_ids)} layers but manifest.json lists {len(layer_paths)}"
            )
        layers = []
        for i, path in enumerate(layer_paths):
            diff_id = diff_ids[i] if i < len(diff_ids) and diff_ids[i] else None
            src = as_dict(sources.get(diff_id)) if diff_id else {}
            blob_digest = None
            if path.startswith("blobs/"):
                parts = path.split("/")
                blob_digest = f"{parts[1]}:{parts[2]}" if len(parts) == 3 else None
            size = src.get("size")
            layers.append(
                LayerRef(
                    index=i,
                    key=path,
                    blob_digest=blob_digest,
                    diff_id=diff_id,
                    media_type=_str(src.get("mediaType")),
                    size=size if isinstance(size, int) and not isinstance(size, bool) else None,
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
                errors=tuple(errors),
            )
        )
    if ref is not None and not images:
        if ref.startswith("@"):
            raise ImageFormatError(f"no image {ref} in the archive: it holds {_positions(len(manifest))}")
        raise ImageFormatError(
            f"no image named {ref!r} in the archive (it holds {_positions(len(manifest))}: "
            f"{names_listing(names)})"
        )
    return _with_oci_texts(read, images)


def _claimed_config_digest(path: str) -> str | None:
    """The digest a config's file name claims: ``<hex>.json`` (Docker < 25) or
    ``blobs/sha256/<hex>`` (Docker >= 25); None for other names."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "blobs" and parts[1] == "sha256" and _HEX.fullmatch(parts[2]):
        return f"sha256:{parts[2]}"
    stem = path.removesuffix(".json")
    if "/" not in stem and len(stem) == 64 and _HEX.fullmatch(stem):
        return f"sha256:{stem}"
    return None


def _with_oci_texts(read: Reader, images: list[ImageDesc]) -> list[ImageDesc]:
    """A Docker >= 25 archive is an OCI layout too: the annotations and attestations its index
    holds for an image (matched by config digest) come with the image manifest.json lists."""
    if not images or read("index.json") is None:
        return images
    try:
        texts = {i.image_id: i.texts for i in oci_images(read, None) if i.texts}
    except ImageFormatError:
        return images  # the OCI side is broken: manifest.json still says what to scan
    return [dataclasses.replace(i, texts=texts[i.image_id]) if i.image_id in texts else i for i in images]


def _docker_ref_matches(ref: str, pos: int, tags: list[str]) -> bool:
    if ref.startswith("@"):
        return ref[1:].isdigit() and int(ref[1:]) == pos
    if ref in tags:
        return True
    # "name" matches "name:latest"; a short name matches "localhost/name:tag" (podman).
    candidates = {ref, ref + ":latest"}
    return any(t in candidates or t.split("/", 1)[-1] in candidates for t in tags)


def oci_images(read: Reader, ref: str | None) -> list[ImageDesc]:
    """Images reachable from an OCI layout's index.json, every platform. A cycle of indexes,
    nesting past ``max_index_depth`` or a bad descriptor is an error of the images found (the
    first one carries it); every image reachable without it is still described."""
    index = load_json(_need(read, "index.json", "index.json"), "index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ImageFormatError("index.json has no manifests")
    top = index["manifests"]
    if ref is not None:
        top = _oci_ref(top, ref)
    walk = _IndexWalk(read)
    for desc in top:
        name = _str(as_dict(as_dict(desc).get("annotations")).get(REF_ANNOTATION))
        walk.descriptor(desc, name, None, 0, ("index.json",))
    if not walk.images:
        if walk.errors:
            raise ImageFormatError("; ".join(walk.errors[:3]))
        return []
    walk.images = finish_index(walk.images, index, walk.fetch, walk.fetch)
    first = walk.images[0]
    walk.images[0] = dataclasses.replace(first, errors=(*walk.errors, *first.errors))
    return walk.images


def _oci_ref(top: list[Any], ref: str) -> list[Any]:
    """The index.json entries a REF names: a ref name annotation, or ``@N`` (as skopeo reads it)."""
    if ref.startswith("@") and ref[1:].isdigit():
        pos = int(ref[1:])
        if pos >= len(top):
            raise ImageFormatError(f"no image {ref} in index.json: it lists {_positions(len(top))}")
        return [top[pos]]
    refs = [as_dict(as_dict(d).get("annotations")).get(REF_ANNOTATION) for d in top]
    chosen = [d for d, name in zip(top, refs, strict=True) if name == ref]
    if not chosen:
        named = [str(n) for n in refs if n is not None]
        raise ImageFormatError(
            f"no image with ref name {ref!r} in index.json (ref names: {names_listing(named)}; "
            f"it lists {_positions(len(top))})"
        )
    return chosen


def _positions(count: int) -> str:
    """``3 images, @0 to @2``: how many there are and how ``@N`` names them."""
    if count == 0:
        return "no images"
    return "1 image, @0" if count == 1 else f"{count} images, @0 to @{count - 1}"


class _IndexWalk:
    def __init__(self, read: Reader) -> None:
        self.read = read
        self.images: list[ImageDesc] = []
        self.errors: list[str] = []

    def error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)

    def fetch(self, digest: str) -> bytes:
        """A manifest or blob by digest (annotations.finish_index: both are blobs here)."""
        return _need(self.read, blob_path(digest), f"blob {digest}")

    def descriptor(
        self, desc: Any, name: str | None, platform: str | None, depth: int, path: tuple[str, ...]
    ) -> None:
        """The images under ``desc``, with its annotations (sources/annotations.py)."""
        start = len(self.images)
        self._descriptor(desc, name, platform, depth, path)
        if len(self.images) > start:
            self.images[start:] = with_texts(self.images[start:], descriptor_texts(desc))

    def _descriptor(
        self, desc: Any, name: str | None, platform: str | None, depth: int, path: tuple[str, ...]
    ) -> None:
        limits = DEFAULT_IMAGE_LIMITS
        if not isinstance(desc, dict):
            self.error(f"{path[-1]}: a descriptor is not a JSON object; skipped")
            return
        digest = desc.get("digest")
        if not isinstance(digest, str):
            self.error(f"{path[-1]}: a descriptor has no digest; skipped")
            return
        if digest in path:
            self.error(f"image index cycle: {' -> '.join((*path, digest))}; not followed")
            return
        if depth > limits.max_index_depth:
            limit = limit_text("max_index_depth", limits.max_index_depth)
            self.error(f"{digest}: index nesting deeper than {limit}; not followed")
            return
        if len(self.images) >= limits.max_images:
            limit = limit_text("max_images", limits.max_images)
            self.error(f"more than {limit} images; the rest were not scanned")
            return
        annotations = as_dict(desc.get("annotations"))
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            return
        platform = platform_of(desc.get("platform")) or platform
        try:
            data = _need(self.read, blob_path(digest), f"manifest {digest}")
            doc = load_json(data, f"manifest {digest}")
        except ImageFormatError as exc:
            self.error(exc.message)
            return
        if not isinstance(doc, dict):
            self.error(f"manifest {digest} is not a JSON object; skipped")
            return
        mismatch = verify_digest(data, digest, f"manifest {digest}")
        media = _str(desc.get("mediaType")) or _str(doc.get("mediaType"))
        if media in INDEX_TYPES or (media is None and "manifests" in doc):
            if mismatch:
                self.error(mismatch)
            start = len(self.images)
            for child in as_list(doc.get("manifests")):
                self.descriptor(child, name, None, depth + 1, (*path, digest))
            self.images[start:] = finish_index(self.images[start:], doc, self.fetch, self.fetch)
            return
        if media not in MANIFEST_TYPES and "layers" not in doc:
            return  # an artifact we do not scan (signature, SBOM, ...)
        try:
            image = image_from_manifest(self.read, doc, digest, name, platform)
        except ImageFormatError as exc:
            self.error(exc.message)
            return
        if mismatch:
            image = dataclasses.replace(image, errors=(mismatch, *image.errors))
        self.images.append(image)


def image_from_manifest(
    read: Reader, manifest: dict[str, Any], digest: str, name: str | None, platform: str | None
) -> ImageDesc:
    cfg_digest = as_dict(manifest.get("config")).get("digest")
    if not isinstance(cfg_digest, str):
        raise ImageFormatError(f"manifest {digest} has no config")
    errors: list[str] = []
    what = f"config {cfg_digest}"
    data = _need(read, blob_path(cfg_digest), f"image config {cfg_digest}")
    config = _config(data, what, errors)
    mismatch = verify_digest(data, cfg_digest, f"image {what}")
    if mismatch:
        errors.append(mismatch)
    diff_ids = _diff_ids(config)
    raw_layers = _capped_layers(as_list(manifest.get("layers")), errors)
    problems = []
    if diff_ids and len(diff_ids) != len(raw_layers):
        problems.append(f"config lists {len(diff_ids)} layers but the manifest {len(raw_layers)}")
    layers = []
    for i, raw in enumerate(raw_layers):
        layer = as_dict(raw)
        ldigest = layer.get("digest")
        try:
            key = blob_path(ldigest if isinstance(ldigest, str) else "")
        except ImageFormatError as exc:
            # refused, and reported; the other layers are still scanned
            errors.append(f"layer {i}: {exc.message}")
            key, ldigest = f"invalid:{i}", None
        size = layer.get("size")
        layers.append(
            LayerRef(
                index=i,
                key=key,
                blob_digest=ldigest if isinstance(ldigest, str) else None,
                diff_id=diff_ids[i] if i < len(diff_ids) and diff_ids[i] else None,
                media_type=_str(layer.get("mediaType")),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
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
        errors=tuple(errors),
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
