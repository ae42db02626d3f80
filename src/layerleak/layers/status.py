"""Decide a file's fate from the layers above it, as the OCI image spec's whiteouts define it.

For a file at ``path`` in layer ``i``, the first layer ``j > i`` that does one of these decides:
- adds an entry at ``path`` itself: *overwritten* in ``j`` (even if ``j`` also whites it out);
- whites out ``path`` or one of its parent directories (``.wh.NAME``): *deleted* in ``j``;
- marks a parent directory opaque (``.wh..wh..opq``): *deleted* in ``j``;
- replaces a parent directory with a non-directory: *deleted* in ``j``.
No such layer: *present*.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from layerleak.layers.scanned import KIND_DIR, LayerScan
from layerleak.models import Status


def _parents(path: str) -> list[str]:
    out = []
    while path not in ("/", ""):
        path = posixpath.dirname(path)
        out.append(path)
    return out


def file_status(path: str, index: int, stack: Sequence[LayerScan | None]) -> tuple[Status, int | None]:
    parents = _parents(path)
    for j in range(index + 1, len(stack)):
        layer = stack[j]
        if layer is None:
            continue
        if path in layer.entries:
            return Status.OVERWRITTEN, j
        if path in layer.whiteouts:
            return Status.DELETED, j
        for p in parents:
            if p in layer.whiteouts or p in layer.opaque:
                return Status.DELETED, j
            kind = layer.entries.get(p)
            if kind is not None and kind != KIND_DIR:
                return Status.DELETED, j
    return Status.PRESENT, None
