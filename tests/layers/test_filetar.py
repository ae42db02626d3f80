"""A tar read from its file (targuard.FileTar, the layer parts' reader) gives what tarfile gives.

Every tar here is read twice from the same file: the way main read it (``open_seekable`` without a
descriptor: tarfile's ``next()``, ``extractfile()`` and reader) and the fast way (ordinary headers
parsed once and members' bytes taken from one read of the file). Both must give the same members,
field for field, the same bytes, read in the same pieces, and the same error at the same point:
on tars tarfile writes in every format, on hand-made unusual and damaged ones, on thousands of
random mutations and truncations of them, and on the real layers of the buildah-built fixture.
"""

from __future__ import annotations

import contextlib
import io
import random
import tarfile
from pathlib import Path
from typing import Any

import pytest

import hostile
from conftest import TOKEN, TOKEN_RULE, Built
from layerleak.detect.engine import Engine
from layerleak.detect.rules import parse_rules_text
from layerleak.entries.limits import DEFAULT_LAYER_LIMITS, LayerLimits
from layerleak.layers import targuard, walk
from layerleak.layers.scanned import LayerScan

# every field a member carries, and what _visit and gitrepo.Collector.take ask of it
_FIELDS = ("name", "mode", "uid", "gid", "size", "mtime", "chksum", "type", "linkname", "uname", "gname",
           "devmajor", "devminor", "offset", "offset_data", "pax_headers", "sparse")
_ASKED = ("isreg", "isdir", "issym", "islnk", "issparse", "isfile", "ischr", "isblk", "isfifo", "isdev")
SMALL = 3000  # members up to this size are read by the fast reader; larger ones by tarfile's
PIECE = 1700  # the rest of a large member is read in pieces, as the engine and the git spool do


def _reads(f: Any, size: int) -> list[object]:
    """The pieces a member's reader gives, as _visit asks for them (the head, then the rest)."""
    out: list[object] = []
    try:
        out.append(f.read(min(size, SMALL)))
        while piece := f.read(PIECE):
            out.append(piece)
        out.append(f.read())
    except (tarfile.TarError, OSError) as exc:
        out.append(("error", type(exc).__name__, str(exc)))
    return out


def _members(tar: tarfile.TarFile, limits: LayerLimits) -> list[object]:
    rows: list[object] = []
    try:
        for member in targuard.members(tar, limits):
            row: list[object] = [type(member).__mro__[1:], *(getattr(member, a) for a in _FIELDS)]
            row += [getattr(member, a)() for a in _ASKED]
            if member.isreg():
                f = tar.extractfile(member)
                row.append(None if f is None else _reads(f, member.size))
            rows.append(row)
    except Exception as exc:  # noqa: BLE001 - the error is part of what is compared
        rows.append(("error", type(exc).__name__, str(exc), getattr(exc, "limit", None)))
    return rows


def _read(path: Path, at: int, limits: LayerLimits, fast: bool) -> list[object]:
    with path.open("rb", buffering=1 << 20) as f:
        f.seek(at)
        try:
            if fast:
                tar = targuard.open_seekable(f, limits, f.fileno(), SMALL)
                assert isinstance(tar, targuard.FileTar)
            else:
                tar = targuard.open_seekable(f, limits)
        except Exception as exc:  # noqa: BLE001
            return [("open", type(exc).__name__, str(exc))]
        return _members(tar, limits)


def both(path: Path, at: int = 0, limits: LayerLimits = DEFAULT_LAYER_LIMITS) -> list[object]:
    """The tar at ``at`` in ``path`` read both ways; they must agree."""
    slow = _read(path, at, limits, fast=False)
    fast = _read(path, at, limits, fast=True)
    assert fast == slow
    return fast


def _file(tmp_path: Path, data: bytes, before: int = 1536, name: str = "layer") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\x07" * before + data)  # the tar starts inside the file, as in an archive
    return path


def _written(fmt: int, git: bool = True) -> bytes:
    """Members of every kind, as tarfile writes them in ``fmt``."""
    buf = io.BytesIO()
    rng = random.Random(fmt)
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8") as tar:
        def add(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: Any) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.size, info.mtime = kind, len(data), 1_700_000_000
            for key, value in fields.items():
                setattr(info, key, value)
            with contextlib.suppress(ValueError):  # a field this format cannot hold: nothing written
                tar.addfile(info, io.BytesIO(data) if kind in tarfile.REGULAR_TYPES else None)

        add("etc/", tarfile.DIRTYPE, mode=0o755)
        for size in (0, 1, 511, 512, 513, 1024, SMALL - 1, SMALL, SMALL + 1, 5000, 40_000):
            add(f"etc/f{size}.conf", data=bytes(rng.randrange(256) for _ in range(size)))
        add("srv/" + "deep/" * 30 + "long-name.txt", data=b"long\n")  # over 100 bytes: prefix or extension
        add("srv/" + "x" * 150, data=b"longer than a ustar prefix can hold\n")
        add("bin/sh", tarfile.SYMTYPE, linkname="dash")
        add("bin/link", tarfile.LNKTYPE, linkname="etc/f1.conf")
        add("bin/far", tarfile.SYMTYPE, linkname="../" * 40 + "target")  # a long link name
        add("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
        add("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)
        add("run/pipe", tarfile.FIFOTYPE)
        add("x/caf\xe9.txt", data=b"accent\n", uname="r\xf6ot", gname="wheel")
        add("etc/.wh.gone")
        add("etc/.wh..wh..opq")
        add("big-ids", data=b"ids\n", uid=8**7 + 5, gid=8**8, mtime=8**11 + 3)  # base-256 in GNU, pax else
        add("contiguous", tarfile.CONTTYPE, data=b"type 7\n")
        if git:
            add("repo/.git/objects/ab/cdef", data=b"x" * 4000)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_tars_tarfile_writes_read_the_same(fmt: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _written(fmt)
    path = _file(tmp_path, data)
    slow_calls: list[int] = []
    real = tarfile.TarFile.next

    def counted(self: tarfile.TarFile) -> tarfile.TarInfo | None:
        slow_calls.append(self.offset)
        return real(self)

    rows = both(path, 1536)
    assert len(rows) >= 20 and not any(r[0] == "error" for r in rows)  # type: ignore[index]
    monkeypatch.setattr(tarfile.TarFile, "next", counted)
    assert _read(path, 1536, DEFAULT_LAYER_LIMITS, fast=True) == rows
    # the first member (read on opening, handed out by the next call), the end marker, the members
    # with extension headers and the one with base-256 numbers (GNU) went to tarfile, no others
    extended = data.count(b"././@")
    assert 3 + extended <= len(slow_calls) <= 4 + extended
    assert len(slow_calls) < len(rows) // 2


def _block(name: bytes | str, size: int, kind: bytes = b"0", **kw: Any) -> bytes:
    return hostile.header(name, size, kind, **kw)


def _signed_checksum(block: bytes) -> bytes:
    """The header with the checksum some old tars wrote: high bytes summed as signed."""
    buf = bytearray(block)
    buf[148:156] = b" " * 8
    signed = sum(b - 256 if b > 127 else b for b in buf)
    buf[148:156] = b"%06o\0 " % signed
    return bytes(buf)


_OLD_SPARSE = {386: hostile.number(1 << 20, 12) + hostile.number(5, 12), 483: hostile.number(1 << 21, 12)}


def _unusual() -> dict[str, bytes]:
    """Hand-made tars that take tarfile's path somewhere, each after an ordinary member or two."""
    m = hostile.member
    ordinary = m("a.txt", b"first\n") + m("b.txt", b"second " * 100)
    sparse10 = hostile.pad(b"1\n0\n5\n") + hostile.pad(b"hello")
    cases = {
        "v7-directory": m("old/", b"", b"\0") + m("old/file", b"v7\n", b"\0"),
        "v7-dir-with-data": m("old2/", b"data a directory claims", b"\0"),
        "unknown-type": m("weird", b"a type tarfile does not know\n", b"Z"),
        "volume-header": m("label", b"", b"V"),
        "base-256-size": _block("b256", 5, extra={124: hostile.number(8**11 + 5, 12)}),
        "base-256-mode": _block("bmode", 2, extra={100: b"\x80" + bytes(6) + b"\x01"}) + hostile.pad(b"ok"),
        "negative-size": _block("neg", -512),
        "octal-negative-size": _block("neg", 0, extra={124: b"-0000000777\0"}),
        "bad-checksum": _block("bad", 1, checksum=False) + hostile.pad(b"2"),
        "signed-checksum": _signed_checksum(_block("caf\xe9\xff", 3)) + hostile.pad(b"sig"),
        "spaces-in-numbers": _block("spaced", 3, extra={124: b"       3   \0"}) + hostile.pad(b"abc"),
        "nul-numbers": _block("nuls", 0, extra={108: bytes(8), 116: bytes(8)}),
        "old-gnu-sparse": _block("s", 512, b"S", extra=_OLD_SPARSE) + hostile.pad(b"hello"),
        "old-gnu-sparse-extended": _block("s", 512, b"S", extra={**_OLD_SPARSE, 482: b"\x01"})
        + bytes(512) + hostile.pad(b"hello"),
        "pax-sparse-0.1": hostile.pax([("GNU.sparse.map", "0,5"), ("GNU.sparse.size", "1000"),
                                       ("GNU.sparse.name", "sparse01")]) + m("GNUSparseFile.0/x", b"hello"),
        "pax-sparse-1.0": hostile.pax([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"),
                                       ("GNU.sparse.name", "sparse10"), ("GNU.sparse.realsize", "9000")])
        + _block("GNUSparseFile.0/y", len(sparse10)) + sparse10,
        "pax-long-name-and-size": hostile.pax([("path", "p/" * 200 + "f"), ("size", "3")])
        + _block("short", 0) + hostile.pad(b"abc"),
        "pax-bad-size": hostile.pax([("size", "-5")]) + m("x", b"1"),
        "pax-empty-record": hostile.pax([("comment", "")]) + m("x", b"1"),
        "global-pax": hostile.pax([("uid", "77"), ("mtime", "12.5"), ("uname", "global")], b"g")
        + m("g1", b"one") + hostile.dirent("gdir") + m("g2", b"two"),
        "global-pax-path": hostile.pax([("path", "every")], b"g") + m("p1", b"1") + m("p2", b"2"),
        "global-pax-size": hostile.pax([("size", "2")], b"g") + m("s1", b"12") + m("s2", b"34"),
        "gnu-long-name": m(b"././@LongLink", b"l/" * 80 + b"name\0", b"L") + m("short", b"data")
        + m(b"././@LongLink", b"t/" * 80 + b"target\0", b"K") + hostile.link("ln", "short") + m("z", b"z"),
        "long-name-over-limit": _block(b"././@LongLink", 1 << 40, b"L"),
        "pax-over-limit": _block(b"././@PaxHeader", 1 << 40, b"x"),
        "extension-chain": b"".join(hostile.pax([("comment", "c")]) for _ in range(20)) + m("x", b""),
        "solaris-extended": m(b"././@Sol", b"10 path=s\n", b"X") + m("sol", b"s"),
        "hardlink-with-size": _block("hl", 700, b"1", linkname="a.txt"),
        "symlink-with-size": _block("sl", 700, b"2", linkname="a.txt"),
        "directory-with-size": _block("dd", 700, b"5"),
        "device-with-numbers": _block("cd", 0, b"3", extra={329: b"0000001\0", 337: b"0000003\0"}),
        "device-bad-numbers": _block("cd", 0, b"4", extra={329: b"zz\0"}),
        "prefix-on-directory": _block("name/", 0, b"5", extra={345: b"pre/fix"}),
        "prefix-on-gnu-type": m(b"././@LongLink", b"ln\0", b"L", extra={345: b"pre"}),
        "zero-then-member": bytes(512) + m("after-zero", b"z"),
        "empty-name": m("", b"nameless"),
        "undecodable-name": m(b"caf\xe9\xff/\x80", b"bytes") + m(b"ok", b"x"),
    }
    after = m("after", b"an ordinary member after it\n")
    return {name: ordinary + body + after for name, body in cases.items()}


@pytest.mark.parametrize("case", sorted(_unusual()))
def test_unusual_and_damaged_tars_read_the_same(case: str, tmp_path: Path) -> None:
    data = _unusual()[case]
    path = _file(tmp_path, hostile.tar(data))
    rows = both(path, 1536)
    assert len(rows) >= 2  # the ordinary members before it were read
    both(_file(tmp_path, hostile.tar(data, end=False), name="no-end"), 1536)  # no end-of-archive marker
    both(_file(tmp_path, hostile.tar(data), before=0, name="at-zero"), 0)


def test_limits_are_the_same(tmp_path: Path) -> None:
    """max_members and the extension limits stop both ways at the same member, with the same
    message and limit."""
    many = hostile.tar(*(hostile.member(f"f{i}", b"x" * i) for i in range(12)))
    chain = hostile.tar(hostile.member("a", b"1"), *(hostile.pax([("comment", "c")]) for _ in range(4)),
                        hostile.member("x", b"2"))
    rows = both(_file(tmp_path, many), 1536, LayerLimits(max_members=10))
    assert len(rows) == 11 and rows[-1][-1] == "max_members"  # type: ignore[index]
    rows = both(_file(tmp_path, chain), 1536, LayerLimits(max_extension_chain=3))
    assert rows[-1][-1] == "max_extension_chain"  # type: ignore[index]
    assert both(_file(tmp_path, many), 1536, LayerLimits(max_members=12))[-1][0] != "error"  # type: ignore[index]


def _mutants(rng: random.Random, base: bytes, count: int) -> list[bytes]:
    """``base`` with a few bytes of its headers changed (the checksum kept right most times, so
    the change reaches the fields), or cut short anywhere."""
    starts = [i for i in range(0, len(base) - 512, 512) if base[i + 257 : i + 262] == b"ustar"]
    out = []
    for _ in range(count):
        buf = bytearray(base)
        if rng.random() < 0.25:
            out.append(bytes(buf[: rng.randrange(len(buf))]))
            continue
        at = rng.choice(starts)
        for _ in range(rng.randint(1, 3)):
            pos = at + rng.choice([rng.randrange(512), rng.randrange(100, 160), rng.randrange(124, 136),
                                   rng.randrange(156, 157), rng.randrange(329, 500)])
            buf[pos] = rng.choice(b"\x00 0127x5gLKSV\x80\xff/-") if rng.random() < 0.8 else rng.randrange(256)
        if rng.random() < 0.75:
            buf[at + 148 : at + 156] = b" " * 8
            buf[at + 148 : at + 156] = b"%06o\0 " % (sum(buf[at : at + 512]) & 0o777777)
        out.append(bytes(buf))
    return out


def test_mutated_and_truncated_tars_read_the_same(tmp_path: Path) -> None:
    rng = random.Random(15)
    bases = [_written(fmt) for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT)]
    bases.append(hostile.tar(*_unusual().values()))
    outcomes: set[object] = set()
    for n, data in enumerate(m for base in bases for m in _mutants(rng, base, 250)):
        rows = both(_file(tmp_path, data, before=512 * (n % 3), name="m"), 512 * (n % 3))
        last = rows[-1]
        outcomes.add(last[0] if last[0] in ("error", "open") else "read")  # type: ignore[index]
    assert outcomes == {"error", "open", "read"}  # the mutations reached every way a read can end


def test_members_past_a_part_and_from_any_start_read_the_same(tmp_path: Path) -> None:
    """A part starts at any member (tarindex's split points), tarfile reading its first member."""
    from layerleak.layers import tarindex

    data = _written(tarfile.PAX_FORMAT, git=False)
    path = _file(tmp_path, data)
    with path.open("rb") as f:
        f.seek(1536)

        starts = tarindex.member_starts(f, len(data))
    assert starts is not None and len(starts) > 20
    for start in starts[1::3]:
        both(path, 1536 + start)


# --- the walk of a layer part: old and new give the same scan ------------------------------------


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(parse_rules_text(TOKEN_RULE, "test"))


def _scan_both(
    monkeypatch: pytest.MonkeyPatch, path: Path, at: int, stop: int | None, engine: Engine
) -> LayerScan:
    real = targuard.open_seekable

    def plain(stream: Any, limits: LayerLimits = DEFAULT_LAYER_LIMITS, fd: Any = None, small: int = 0) -> Any:
        return real(stream, limits)  # main's reader: tarfile's own next() and extractfile()

    def scan() -> LayerScan:
        with path.open("rb", buffering=1 << 20) as f:
            f.seek(at)
            return walk.scan_layer_part("k", f, engine, stop)

    fast = scan()
    with monkeypatch.context() as m:
        m.setattr(targuard, "open_seekable", plain)
        slow = scan()
    assert _summary(fast) == _summary(slow)
    return fast


def _summary(scan: LayerScan) -> tuple[object, ...]:
    hits = [(h.path, h.inner_path, h.match.rule_id, h.match.secret, h.match.line, h.match.offset, h.git)
            for h in scan.hits]
    return (scan.error, scan.entries, scan.whiteouts, scan.opaque, hits, scan.files_scanned, scan.skipped,
            scan.digests, scan.notes, scan.public_keys, scan.packages)


def _secret_layer(fmt: int, big: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for i in range(80):
            name = f"srv/{'d' * (60 + i)}/f{i}.conf" if i % 3 else f"etc/app{i}.conf"
            data = f"n={i}\ntoken={TOKEN}\n".encode() if i % 7 == 0 else f"plain {i}\n".encode() * i
            if i == 41:
                data = b"y" * big + f"\ntoken={TOKEN}\n".encode()  # past FILE_HEAD: tarfile's reader
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            if i % 11 == 0:
                tar.addfile(tarfile.TarInfo(f"etc/.wh.gone{i}"))
                link = tarfile.TarInfo(f"srv/link{i}")
                link.type, link.linkname = tarfile.SYMTYPE, name
                tar.addfile(link)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_a_layer_part_scans_the_same(fmt: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     engine: Engine) -> None:
    from layerleak.detect.engine import FILE_HEAD
    from layerleak.layers import tarindex

    data = _secret_layer(fmt, FILE_HEAD + 4321)
    path = _file(tmp_path, data)
    with path.open("rb") as f:
        f.seek(1536)
        starts = tarindex.member_starts(f, len(data))
    assert starts is not None
    whole = _scan_both(monkeypatch, path, 1536, None, engine)
    assert whole.error is None and len(whole.hits) >= 12 and whole.digests
    for lo, hi in [(starts[5], starts[50]), (starts[50], None), (0, starts[1])]:
        _scan_both(monkeypatch, path, 1536 + lo, None if hi is None else hi - lo, engine)
    cut_short = 0
    for cut in (len(data) - 1024, len(data) // 2, len(data) // 3 + 77, 2000, 1000):  # a layer cut short
        short = _file(tmp_path, data[:cut], name="short")
        cut_short += _scan_both(monkeypatch, short, 1536, None, engine).error is not None
    assert cut_short >= 3


def test_damaged_layer_parts_scan_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           engine: Engine) -> None:
    secret = hostile.member("etc/s.conf", f"token={TOKEN}\n".encode())
    for name, body in sorted(_unusual().items()):
        data = hostile.tar(secret, body, secret)
        _scan_both(monkeypatch, _file(tmp_path, data, name=name), 1536, None, engine)


@pytest.mark.builder
def test_real_layers_read_the_same(leaky_image: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   engine: Engine) -> None:
    """Every layer of the buildah-built fixture image, where it lies in its docker-archive."""
    from layerleak.sources.archive import TarArchiveSource

    path = leaky_image.path("leaky", "docker-archive")
    source = TarArchiveSource("fixture", str(path), None, None)
    layers = members = 0
    for image in source.images():
        for ref in image.layers:
            loc = source.locate(ref.key)
            assert loc is not None
            with open(loc.path, "rb") as f:
                f.seek(loc.offset)
                if f.read(2) == b"\x1f\x8b":
                    continue
            rows = both(Path(loc.path), loc.offset)
            assert not any(row[0] in ("error", "open") for row in rows)  # type: ignore[index]
            _scan_both(monkeypatch, Path(loc.path), loc.offset, None, engine)
            layers += 1
            members += len(rows)
    assert layers >= 2 and members >= 100
