"""Nested archives under their bounds: each limit cuts short what it must, says so, and keeps the
rest; broken containers are notes, a broken layer stream is still the layer's error."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from collections.abc import Callable

import plant
import pytest

from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.entries.content import scan_entry
from layerleak.entries.limits import DEFAULT_LIMITS, MIB, Budget, Limits
from layerleak.entries.nested import scan_file
from layerleak.layers.walk import scan_layer


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_rules(()))


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _scan(
    engine: Engine, path: str, data: bytes, limits: Limits = DEFAULT_LIMITS
) -> tuple[list[tuple[str | None, str, int]], list[str]]:
    """The github-pat-classic hits as (inner_path, secret, line), and the notes."""
    budget = Budget(limits=limits)
    stream = io.BytesIO(data)
    first = stream.read(8 * MIB)
    hits = [
        (inner, m.secret, m.line)
        for inner, m in scan_file(engine, path, first, stream, budget)
        if m.rule_id == "github-pat-classic"
    ]
    return hits, budget.notes


def _token_line() -> tuple[str, bytes]:
    token = plant.github_pat_classic()
    return token, f"token={token}\n".encode()


def test_entry_limit_stops_and_says_so(engine: Engine) -> None:
    token, line = _token_line()
    data = _zip({f"f{i:03}.txt": b"nothing\n" for i in range(50)} | {"z-last.txt": line})
    hits, notes = _scan(engine, "/a.zip", data, Limits(max_entries=20))
    assert token not in {secret for _, secret, _ in hits}
    assert notes == [
        "f020.txt: stopped after 20 archive entries in this file (entry limit); the rest was not scanned"
    ]
    hits, notes = _scan(engine, "/a.zip", data)
    assert ("z-last.txt", token, 1) in hits and notes == []


def test_expansion_budget_covers_all_levels(engine: Engine) -> None:
    token, line = _token_line()
    noise = os.urandom(2 * MIB)  # does not compress: no ratio cut
    data = gzip.compress(_tar({"a.bin": noise, "b.bin": noise, "c.txt": line}), mtime=0)
    hits, notes = _scan(engine, "/b.tgz", data, Limits(max_expanded_bytes=3 * MIB))
    assert token not in {secret for _, secret, _ in hits}
    assert len(notes) == 1 and "stopped after 3 MiB decompressed" in notes[0], notes
    hits, notes = _scan(engine, "/b.tgz", data)
    assert ("c.txt", token, 1) in hits and notes == []


def test_ratio_limit_cuts_only_the_bomb(engine: Engine) -> None:
    token, line = _token_line()
    data = _zip({"bomb.bin": b"\0" * (32 * MIB), "ok.txt": line})
    hits, notes = _scan(engine, "/c.zip", data)
    assert hits == [("ok.txt", token, 1)]
    assert len(notes) == 1 and notes[0].startswith("bomb.bin: stopped after ") and "200 times" in notes[0]


def test_zip_too_large_to_hold_is_not_opened(engine: Engine) -> None:
    _, line = _token_line()
    data = _zip({"ok.txt": line, "pad.bin": os.urandom(8192)})
    hits, notes = _scan(engine, "/d.jar", data, Limits(zip_memory=1024, zip_spool=4096))
    assert hits == []
    assert notes == ["this file: zip larger than 0 MiB; not opened"]


def test_zip_spooled_to_disk_is_still_read(engine: Engine) -> None:
    token, line = _token_line()
    data = _zip({"pad.bin": os.urandom(8192), "ok.txt": line})
    hits, notes = _scan(engine, "/e.jar", data, Limits(zip_memory=1024))
    assert hits == [("ok.txt", token, 1)] and notes == []


def test_truncated_gzip_keeps_what_was_read(engine: Engine) -> None:
    token, line = _token_line()
    data = gzip.compress(line + os.urandom(64 * 1024), mtime=0)
    hits, notes = _scan(engine, "/var/log/x.log.gz", data[: len(data) // 2])
    assert hits == [("x.log", token, 1)]
    assert len(notes) == 1 and notes[0].startswith("this file (gzip): corrupt or truncated"), notes


def test_corrupt_zip_member_is_a_note_and_others_are_read(engine: Engine) -> None:
    token, line = _token_line()
    data = bytearray(_zip({"a.txt": b"A" * 4096, "b.txt": line}))
    at = data.find(b"a.txt") + 5  # a.txt's deflated data follows its name in the local header
    data[at + 2 : at + 6] = b"\xff\xff\xff\xff"
    hits, notes = _scan(engine, "/f.zip", bytes(data))
    assert ("b.txt", token, 1) in hits
    assert len(notes) == 1 and notes[0].startswith("a.txt: corrupt or truncated"), notes


def test_tar_at_the_depth_limit_is_not_opened(engine: Engine) -> None:
    token, line = _token_line()
    data = _tar({"x.txt": line})
    for level in range(3):
        data = _tar({f"t{level}.tar": data})
    hits, notes = _scan(engine, "/g.tar", data, Limits(max_depth=2))
    assert hits == [] and notes == ["t2.tar!/t1.tar: tar nested more than 2 levels deep; not opened"]
    hits, notes = _scan(engine, "/g.tar", data)
    assert hits == [("t2.tar!/t1.tar!/t0.tar!/x.txt", token, 1)] and notes == []


@pytest.mark.parametrize(
    ("name", "wrap", "inner"),
    [
        ("bundle.tar.gz", lambda d: gzip.compress(d, mtime=0), "etc/x.conf"),
        ("notes.gz", lambda d: gzip.compress(d, mtime=0), "notes"),
        ("blob", lambda d: gzip.compress(d, mtime=0), "blob[gzip]"),
    ],
)
def test_names_of_decompressed_content(
    engine: Engine, name: str, wrap: Callable[[bytes], bytes], inner: str
) -> None:
    token, line = _token_line()
    payload = _tar({"etc/x.conf": line}) if name.endswith(".tar.gz") else line
    hits, _ = _scan(engine, f"/srv/{name}", wrap(payload))
    assert hits == [(inner, token, 1)]


def test_scan_entry_still_skips_media_and_reports_notes(engine: Engine) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    reason, hits = scan_entry("/logo.png", png, io.BytesIO(b""), engine)
    assert reason == "png" and list(hits) == []
    notes: list[str] = []
    data = _zip({"bomb.bin": b"\0" * (16 * MIB)})
    reason, hits = scan_entry("/h.zip", data, io.BytesIO(b""), engine, notes)
    assert reason is None and list(hits) == [] and len(notes) == 1


def test_a_broken_layer_is_still_the_layers_error(engine: Engine) -> None:
    """A layer cut off inside a nested gzip: the walk reports the layer, not a nested note."""
    _, line = _token_line()
    member = gzip.compress(line + bytes(range(256)) * 16384, mtime=0)
    layer = _tar({"var/log/x.gz": member})
    scan = scan_layer("k", io.BytesIO(layer[: 512 + len(member) // 2]), engine)
    assert scan.error is not None and "truncated" in scan.error
    assert scan.notes == []


@pytest.mark.parametrize(("size", "in_memory"), [(1024, True), (1025, False), (3000, False)])
def test_a_zip_is_held_in_memory_up_to_zip_memory_then_on_disk(
    engine: Engine, size: int, in_memory: bool
) -> None:
    """The spool zipfile reads is a BytesIO up to ``zip_memory`` bytes, an unnamed temporary
    file past it (never more than ``zip_memory`` in memory), with the zip's bytes unchanged."""
    from layerleak.entries.nested import _FileScan

    data = os.urandom(size)
    budget = Budget(limits=Limits(zip_memory=1024, zip_spool=4096))
    spool = _FileScan(engine, "/x.zip", budget)._spool("x", data[:100], io.BytesIO(data[100:]))
    assert spool is not None
    with spool:
        assert isinstance(spool, io.BytesIO) is in_memory
        assert spool.read() == data


def test_prefixed_hands_out_its_first_chunk_whole_without_a_copy() -> None:
    from layerleak.entries.streams import Prefixed

    first = os.urandom(64)
    whole = Prefixed(first, io.BytesIO(b"rest"))
    assert whole.read(1 << 20) is first  # the small file's bytes, not a copy of them
    assert whole.read(3) == b"res" and whole.read(9) == b"t" and whole.read(1) == b""
    split = Prefixed(first, io.BytesIO(b"rest"))
    assert split.read(10) == first[:10] and split.read(100) == first[10:] and split.read() == b"rest"
    assert Prefixed(first, io.BytesIO(b"rest")).read() is first
