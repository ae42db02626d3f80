"""The entry points that hostile bytes reach first, each as a function of one ``bytes`` input.

Shared by the hypothesis properties (test_properties.py) and the atheris harness (harness.py).
Each target may raise only :data:`ALLOWED` (our own error types); anything else is a bug.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.entries.decoders import scan_leaf
from layerleak.entries.limits import Budget, Limits
from layerleak.entries.nested import scan_file
from layerleak.errors import LayerleakError
from layerleak.layers import tarindex
from layerleak.layers.walk import scan_layer
from layerleak.sources.layout import layout_images

ALLOWED: tuple[type[BaseException], ...] = (LayerleakError,)
_ENGINE: Engine | None = None
SMALL = Limits(max_expanded_bytes=4 << 20, zip_memory=1 << 20, zip_spool=4 << 20, max_entries=1000)


def engine() -> Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Engine(load_rules(()))
    return _ENGINE


def _split(data: bytes, parts: int) -> list[bytes]:
    """Cut one input into ``parts`` documents at ``\\x00\\x00`` (so a fuzzer can vary each)."""
    pieces = data.split(b"\x00\x00", parts - 1)
    return pieces + [b""] * (parts - len(pieces))


def layout(data: bytes) -> None:
    """manifest.json / index.json / a manifest / a config, each a piece of ``data``; blob names
    the fuzzer cannot guess are answered with the other pieces."""
    manifest, index, blob, config = _split(data, 4)
    files = {"manifest.json": manifest, "index.json": index}

    def read(name: str) -> bytes | None:
        if name in files:
            return files[name] if files[name] else None
        if name.startswith("blobs/"):
            return blob if "config" not in name and len(name) % 2 else config
        return config if name.endswith(".json") else None

    for kind in ("docker", "oci", None):
        try:
            images = layout_images(read, kind, None)
        except ALLOWED:
            continue
        for image in images:
            json.dumps([image.name, image.image_id, image.platform, [layer.key for layer in image.layers]])


def layer_walk(data: bytes) -> None:
    """One layer blob, plain or compressed: never an exception, errors are recorded."""
    scan = scan_layer("fuzz", io.BytesIO(data), engine())
    assert scan.error is None or isinstance(scan.error, str)


def tar_index(data: bytes) -> None:
    starts = tarindex.member_starts(io.BytesIO(data), len(data))
    if starts is not None:
        assert starts == sorted(starts)
        tarindex.split_points(starts, len(data), 4)


def nested(data: bytes) -> None:
    """A layer file's content through the nested-archive openers (zip, tar, gzip, ...)."""
    budget = Budget(limits=SMALL)
    for _ in scan_file(engine(), "/fuzz/file", data[:65536], io.BytesIO(data[65536:]), budget):
        pass


def decoders(data: bytes) -> None:
    """The decoders (base64, UTF-16, .pyc strings) on one leaf file."""
    budget = Budget(limits=SMALL)
    for path in ("/fuzz/file.txt", "/fuzz/mod.pyc"):
        for _ in scan_leaf(engine(), path, data, io.BytesIO(b""), budget):
            pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "layout": layout,
    "layer_walk": layer_walk,
    "tar_index": tar_index,
    "nested": nested,
    "decoders": decoders,
}
