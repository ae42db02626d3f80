"""Whiteouts, opaque directories and replacements decide a file's fate (OCI image spec)."""

from __future__ import annotations

import pytest

from layerleak.layers.status import file_status
from layerleak.layers.walk import KIND_DIR, KIND_OTHER, LayerScan
from layerleak.models import Status


def layer(entries: dict[str, str] | None = None, whiteouts: set[str] | None = None,
          opaque: set[str] | None = None) -> LayerScan:
    scan = LayerScan(key="k")
    scan.entries.update(entries or {})
    scan.whiteouts.update(whiteouts or set())
    scan.opaque.update(opaque or set())
    return scan


BASE = layer({"/etc": KIND_DIR, "/etc/app": KIND_DIR, "/etc/app/key": KIND_OTHER})


@pytest.mark.parametrize(
    ("above", "expected"),
    [
        ([], (Status.PRESENT, None)),
        ([layer({"/tmp/x": KIND_OTHER})], (Status.PRESENT, None)),
        ([layer(whiteouts={"/etc/app/key"})], (Status.DELETED, 1)),
        ([layer(whiteouts={"/etc/app"})], (Status.DELETED, 1)),
        ([layer(whiteouts={"/etc"})], (Status.DELETED, 1)),
        ([layer(opaque={"/etc/app"}, entries={"/etc/app/other": KIND_OTHER})], (Status.DELETED, 1)),
        ([layer(opaque={"/etc/app"}, entries={"/etc/app/key": KIND_OTHER})], (Status.OVERWRITTEN, 1)),
        ([layer({"/etc/app/key": KIND_OTHER})], (Status.OVERWRITTEN, 1)),
        ([layer({"/etc/app": KIND_OTHER})], (Status.DELETED, 1)),
        ([layer({"/etc/app": KIND_DIR})], (Status.PRESENT, None)),
        ([layer(), layer(whiteouts={"/etc/app/key"}), layer({"/etc/app/key": KIND_OTHER})],
         (Status.DELETED, 2)),
        ([layer({"/etc/app/key": KIND_OTHER}), layer(whiteouts={"/etc/app/key"})],
         (Status.OVERWRITTEN, 1)),
        ([None, layer(whiteouts={"/etc/app/key"})], (Status.DELETED, 2)),
        ([layer(whiteouts={"/etc/app/ke"})], (Status.PRESENT, None)),
        ([layer(opaque={"/etc/ap"})], (Status.PRESENT, None)),
        ([layer(opaque={"/"})], (Status.DELETED, 1)),
    ],
)
def test_file_status(above: list[LayerScan | None], expected: tuple[Status, int | None]) -> None:
    assert file_status("/etc/app/key", 0, [BASE, *above]) == expected


def test_status_only_looks_above() -> None:
    below = layer(whiteouts={"/etc/app/key"})
    assert file_status("/etc/app/key", 1, [below, BASE]) == (Status.PRESENT, None)
