"""The content pipeline's shortcuts give exactly what its general path gives.

Each shortcut (a zip member read straight from the zip's buffer, a small whole file scanned
without the nested-archive machinery, a head classified once) is switched off and on over the
same input: generated files of every kind the pipeline tells apart, hostile zips from
fixtures/hostile.py, and randomly damaged zips. Every match, note and budget count must agree.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import posixpath
import random
import struct
import tarfile
import zipfile
import zlib
from typing import Any

import plant
import pytest

import hostile
from layerleak.detect.classify import HEAD, is_binary, text_encoding
from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.entries import nested
from layerleak.entries.limits import DEFAULT_LIMITS, MIB, Budget, Limits
from layerleak.entries.nested import scan_file

ENGINE = Engine(load_rules(()))

Outcome = tuple[list[tuple[Any, ...]], list[str], tuple[int, int, int, bool]]


def _run(path: str, data: bytes, limits: Limits) -> Outcome:
    budget = Budget(limits=limits)
    stream = io.BytesIO(data)
    first = stream.read(8 * MIB)
    rest = nested.ENDED if len(first) == len(data) else stream  # as the layer walk hands it on
    hits = [
        (inner, m.rule_id, m.secret, m.offset, m.line, m.confidence)
        for inner, m in scan_file(ENGINE, path, first, rest, budget)
    ]
    return hits, budget.notes, (budget.expanded, budget.entries, budget.decoded, budget.spent)


def _same_both_ways(
    monkeypatch: pytest.MonkeyPatch, path: str, data: bytes, limits: Limits = DEFAULT_LIMITS
) -> Outcome:
    monkeypatch.setattr(nested, "LEAN_ZIP_MEMBERS", False)
    monkeypatch.setattr(nested, "LEAN_GZIP", False)
    general = _run(path, data, limits)
    monkeypatch.setattr(nested, "LEAN_ZIP_MEMBERS", True)
    monkeypatch.setattr(nested, "LEAN_GZIP", True)
    taken = _count(monkeypatch)
    lean = _run(path, data, limits)
    assert lean == general
    LEAN_TAKEN.append(taken[0])
    return lean


LEAN_TAKEN: list[int] = []  # how many members each comparison read through the shortcut


def _count(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    taken = [0]
    real = nested._member_bytes

    def counting(*args: Any) -> bytes | None:
        got = real(*args)
        taken[0] += got is not None
        return got

    monkeypatch.setattr(nested, "_member_bytes", counting)
    return taken


def _zip(entries: list[tuple[str, bytes, int]], **kw: Any) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", **kw) as archive:
        for name, data, method in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            archive.writestr(info, data)
    return buffer.getvalue()


def _tar(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _line() -> bytes:
    return f"token={plant.github_pat_classic()}\n".encode()


_PEMS: list[tuple[bytes, bytes]] = []


def _pem() -> tuple[bytes, bytes]:
    """A private key and a self-signed certificate for it, made now (never committed)."""
    if not _PEMS:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lean-path test")])
        now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        _PEMS.append((pem, cert.public_bytes(serialization.Encoding.PEM)))
    return _PEMS[0]


def _with_crc(data: bytes, plain: bytes) -> bytes:
    """A zip from fixtures/hostile.py (CRC fields 0) with every header's CRC-32 that of ``plain``."""
    out = bytearray(data)
    crc = struct.pack("<I", zlib.crc32(plain))
    for magic, at in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        i = out.find(magic)
        while i >= 0:
            out[i + at : i + at + 4] = crc
            i = out.find(magic, i + 1)
    return bytes(out)


def _kinds() -> dict[str, bytes]:
    """One file of every kind the pipeline tells apart, each holding a secret where it can."""
    key, cert = _pem()
    return {
        "conf/app.properties": b"# app\n" + _line(),
        "big.txt": b"filler line\n" * 40_000 + _line(),
        "lib/Thing.class": b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(300) + _line() + bytes(100),
        "utf16.txt": "\ufeffpassword = x\r\n".encode("utf-16-le") + _line().decode().encode("utf-16-le"),
        "utf16-nobom.txt": (_line().decode() * 3).encode("utf-16-le"),
        "mod.cpython-311.pyc": b"\xa7\r\r\n" + bytes(12) + b"\xe3" + bytes(20) + b"\xfa\x28" + _line()[:40],
        "logo.png": b"\x89PNG\r\n\x1a\n" + _line(),
        "key.pem": key,
        "cert.pem": cert,
        "b64.txt": b"data: " + __import__("base64").b64encode(_line() * 2) + b"\n",
        "home/.netrc": f"machine example.com login me password {plant.generic_password()}\n".encode(),
        "app/.env": f"API_TOKEN={plant.github_pat_classic()}\n".encode(),
        "notes.txt.gz": gzip.compress(_line(), mtime=0),
        "notes.bz2": bz2.compress(_line()),
        "notes.xz": lzma.compress(_line()),
        "bundle.tar": _tar({"etc/a.conf": _line(), "etc/b.bin": bytes(100) + _line()}),
        "inner.jar": _zip([("x/y.txt", _line(), zipfile.ZIP_DEFLATED), ("x/z.txt", _line(), 0)]),
        "empty.zip": b"PK\x05\x06" + bytes(18),
        "nul": bytes(5000),
        "repo/.git/config": b"[core]\n" + _line(),
    }


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_members_of_every_kind(monkeypatch: pytest.MonkeyPatch, method: int) -> None:
    extra = [("dir/", b"", method), ("zero", b"", method)]
    data = _zip([(n, d, method) for n, d in _kinds().items()] + extra)
    hits, notes, _ = _same_both_ways(monkeypatch, "/opt/app.jar", data)
    assert len(hits) >= 10, hits  # the comparison compared something
    assert LEAN_TAKEN[-1] >= 15
    assert any(inner and inner.startswith("inner.jar!/") for inner, *_ in hits)


def test_names_utf8_cp437_and_lying_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    line = _line()
    names = ("café/ü.txt", "plain.txt", "renamed.txt", "magic.txt")
    data = bytearray(_zip([(name, line, 8 if name != "magic.txt" else 0) for name in names]))
    # a cp437 name (no UTF-8 flag) with a high byte, in both headers
    data[:] = data.replace(b"plain.txt", b"pl\x82in.txt")
    # the local header names another file than the directory does
    local = data.find(b"renamed.txt")
    data[local : local + 3] = b"REN"
    # a bad local header magic
    at = data.find(b"magic.txt") - 30
    data[at : at + 4] = b"PK\x07\x08"
    hits, notes, _ = _same_both_ways(monkeypatch, "/n.zip", bytes(data))
    assert any("differ" in n for n in notes) and any("magic" in n for n in notes), notes
    assert len(hits) == 2, hits


def test_bad_crc_encrypted_and_other_methods(monkeypatch: pytest.MonkeyPatch) -> None:
    line = _line()
    entries = [
        ("crc.txt", line, zipfile.ZIP_DEFLATED),
        ("enc.txt", line, zipfile.ZIP_STORED),
        ("b.txt", line, zipfile.ZIP_BZIP2),
        ("l.txt", line, zipfile.ZIP_LZMA),
        ("ok.txt", line, zipfile.ZIP_DEFLATED),
    ]
    data = bytearray(_zip(entries))
    for name, field, value in ((b"crc.txt", 16, b"\x00\x00\x00\x00"), (b"enc.txt", 8, b"\x01\x00")):
        cd = data.find(b"PK\x01\x02" + bytes(0))
        while data[cd + 46 : cd + 46 + len(name)] != name:
            cd = data.find(b"PK\x01\x02", cd + 1)
        data[cd + field : cd + field + len(value)] = value
    hits, notes, _ = _same_both_ways(monkeypatch, "/c.zip", bytes(data))
    assert any("CRC" in n for n in notes) and any("encrypted" in n for n in notes), notes
    assert {h[0] for h in hits} >= {"b.txt", "l.txt", "ok.txt"}


def test_sizes_that_lie(monkeypatch: pytest.MonkeyPatch) -> None:
    line = _line()
    body = zlib.compress(line * 50, 9)[2:-4]
    for claimed in (len(line) * 50 - 7, len(line) * 50 + 7, 1, 3 * MIB):
        data = hostile._zip_raw([("lies.txt", body, claimed)])
        _same_both_ways(monkeypatch, "/s.zip", data)
    stored = bytearray(_zip([("s.txt", line * 3, zipfile.ZIP_STORED)]))
    cd = stored.find(b"PK\x01\x02")
    stored[cd + 24 : cd + 28] = struct.pack("<I", len(line) * 3 - 5)  # uncompressed size < stored size
    _same_both_ways(monkeypatch, "/s2.zip", bytes(stored))


def test_hostile_zips(monkeypatch: pytest.MonkeyPatch) -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = comp.compress(bytes(512 * 1024)) + comp.flush()
    overlap = _with_crc(hostile._zip_overlap(body, 512 * 1024, 400), bytes(512 * 1024))
    limits = Limits(max_expanded_bytes=20 * MIB)
    _, notes, (expanded, *_) = _same_both_ways(monkeypatch, "/o.zip", overlap, limits)
    assert LEAN_TAKEN[-1] >= 39  # read whole until the budget was nearly spent
    assert expanded >= 20 * MIB and any("expansion limit" in n for n in notes), notes
    # at the ratio floor the bomb check cannot fire yet; one byte past it, it does
    for size in (MIB, MIB + 1, MIB - 1):
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        zeros = comp.compress(bytes(size)) + comp.flush()
        bomb = _with_crc(hostile._zip_raw([("z.bin", zeros, size)]), bytes(size))
        _, notes, _ = _same_both_ways(monkeypatch, "/r.zip", bomb)
        assert any("compression bomb" in n for n in notes) == (size > MIB), notes
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", b"hello " * 1000)
    raw = bytearray(good.getvalue())
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 42 : cd + 46] = struct.pack("<I", 0x7FFFFFF0)  # the local header far away
    _same_both_ways(monkeypatch, "/bad.zip", bytes(raw))
    data = _line()
    for depth in range(8):
        data = _zip([(f"level{depth}.zip" if depth else "leaf.txt", data, zipfile.ZIP_DEFLATED)])
    _, notes, _ = _same_both_ways(monkeypatch, "/deep.zip", data)
    assert any("nested more than" in n for n in notes)
    many = _zip([(f"{i:x}.txt", b"x=1\n", zipfile.ZIP_STORED) for i in range(300)] + [("z.txt", _line(), 8)])
    _, notes, _ = _same_both_ways(monkeypatch, "/many.zip", many, Limits(max_entries=120))
    assert any("entry limit" in n for n in notes)


def test_budget_spent_inside_a_member_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tar member read whole whose own gzip spends the expansion budget, then breaks off: the
    rest handed on after the whole read must say it was cut, as zipfile's reader did."""
    gz = gzip.compress(bytes(400_000) + _line(), mtime=0)
    tar = _tar({"a.gz": gz, "b.txt": _line()})
    after_gz = 512 + -(-len(gz) // 512) * 512
    for inner in (tar, tar[: after_gz + 100], tar[: after_gz + 700], tar[:after_gz]):
        data = _zip([("t.tar", inner, zipfile.ZIP_DEFLATED), ("after.txt", _line(), zipfile.ZIP_DEFLATED)])
        for limit in (200_000, 300_000, 500_000, 2 * MIB):
            _same_both_ways(monkeypatch, "/b.zip", data, Limits(max_expanded_bytes=limit))


def test_spooled_to_disk_and_randomly_damaged_zips(monkeypatch: pytest.MonkeyPatch) -> None:
    kinds = list(_kinds().items())
    rng = random.Random(15)
    compared = 0
    for round_ in range(60):
        chosen = rng.sample(kinds, 5)
        data = bytearray(_zip([(n, d, rng.choice((0, 8))) for n, d in chosen]))
        for _ in range(rng.randrange(0, 4)):
            at = rng.randrange(len(data))
            data[at] = rng.randrange(256)
        limits = Limits(zip_memory=1024) if round_ % 10 == 0 else Limits()
        _same_both_ways(monkeypatch, f"/r{round_}.zip", bytes(data), limits)
        compared += 1
    assert compared == 60 and sum(LEAN_TAKEN[-60:]) > 100


def test_member_names_are_normalised_as_before() -> None:
    names = [
        "a/b.txt",
        "./a",
        "a/./b",
        "a//b",
        "/abs/x",
        "a/../b",
        "..",
        ".",
        "",
        "a/",
        "x/.hidden",
        ".git/x",
        "a\\b",
        "caf\udce9",
        "ü/x",
        "a/b/..",
        "a/.",
        "...",
        "a/...b",
        "//",
        "a/b/",
    ]
    for name in names:
        expected = posixpath.normpath("/" + name).lstrip("/") or name
        if not name.isascii():
            expected = nested._member_name(name)  # the undecodable-bytes rewrite comes first
        assert nested._member_name(name) == expected, name


def test_text_encoding_and_binary_tests_unchanged() -> None:
    rng = random.Random(7)
    samples = [
        b"",
        b"abc",
        bytes(600),
        b"\xff\xfe" + b"a\x00" * 100,
        b"\xfe\xff" + b"\x00a" * 100,
        b"a\x00" * 300,
        b"\x00a" * 300,
        b"a\x00" * 20 + b"bb" * 200,
    ]
    alphabet = (0, 0, 65, 97, 10, 200)
    samples += [bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 700))) for _ in range(300)]
    for s in samples:
        head = s[:HEAD]
        assert text_encoding(head) == _text_encoding_before(head), s[:40]
        assert is_binary(head) == (b"\x00" in head[:8192])


def _text_encoding_before(head: bytes) -> str | None:
    """classify.text_encoding as it was before its cheap pre-test."""
    if head.startswith(b"\xff\xfe") and not head.startswith(b"\xff\xfe\x00\x00"):
        return "utf-16-le"
    if head.startswith(b"\xfe\xff"):
        return "utf-16-be"
    sample = head[: HEAD & ~1]
    if len(sample) < 32:
        return None
    even, odd = sample[0::2], sample[1::2]
    half = len(sample) // 2

    def printable(data: bytes) -> float:
        return sum(1 for b in data if 32 <= b < 127 or b in (9, 10, 13)) / len(data) if data else 0.0

    if odd.count(0) >= 0.9 * half and even.count(0) <= 0.05 * half and printable(even) >= 0.9:
        return "utf-16-le"
    if even.count(0) >= 0.9 * half and odd.count(0) <= 0.05 * half and printable(odd) >= 0.9:
        return "utf-16-be"
    return None


# --- the layer file itself: the plain-file path against the general one -------------------------


def _general(path: str, first: bytes, rest: Any, budget: Budget) -> list[tuple[Any, ...]]:
    """scan_file as it was: every file through _FileScan.content, its rest behind a _Guard."""
    scan = nested._FileScan(ENGINE, path, budget)
    out = []
    try:
        for inner, m in scan.content(None, None, posixpath.basename(path), first, nested._Guard(rest), 0):
            out.append((inner, m.rule_id, m.secret, m.offset, m.line, m.confidence))
    except nested.OuterFailure as failure:
        raise failure.error from None
    except nested.Cut as cut:
        budget.note(cut.message)
    return out


def _lean(path: str, first: bytes, rest: Any, budget: Budget, whole: bool) -> list[tuple[Any, ...]]:
    base = posixpath.basename(path)
    return [
        (inner, m.rule_id, m.secret, m.offset, m.line, m.confidence)
        for inner, m in scan_file(ENGINE, path, first, rest, budget, base if whole else None, first[:HEAD])
    ]


def _both(path: str, data: bytes, chunk: int, limits: Limits = DEFAULT_LIMITS) -> list[tuple[Any, ...]]:
    first = data[:chunk]
    whole = len(first) == len(data)
    results = []
    for run in (_general, _lean):
        budget = Budget(limits=limits)
        rest = nested.ENDED if whole else io.BytesIO(data[chunk:])
        found = run(path, first, rest, budget) if run is _general else run(path, first, rest, budget, whole)
        results.append((found, budget.notes, (budget.expanded, budget.entries, budget.decoded, budget.spent)))
    assert results[0] == results[1], path
    return results[1][0]


def test_layer_files_of_every_kind_whole_and_streamed() -> None:
    kinds = _kinds() | {
        "big.jar": _zip([(n, d, 8) for n, d in _kinds().items()]),
        "layer.tgz": gzip.compress(_tar({"etc/x.conf": _line()}), mtime=0),
        "store.jks": b"\xfe\xed\xfe\xed" + bytes(64),
        "der.bin": b"\x30\x82\x01\x00\x02\x01\x00\x30" + bytes(300),
        "media.mp4": b"\x00\x00\x00\x18ftypmp42" + _line(),
    }
    total = 0
    for name, data in kinds.items():
        for chunk in (len(data), 1024, 4096):
            total += len(_both(f"/srv/{name}", data, chunk))
    assert total > 30


def test_a_failing_layer_stream_fails_the_same_way() -> None:
    class Broken(io.RawIOBase):
        def read(self, n: int = -1, /) -> bytes:
            raise OSError("the layer broke off")

    for data in (_line() * 200, gzip.compress(_line() * 2000, mtime=0), _zip([("a.txt", _line() * 9000, 8)])):
        errors = []
        for run in (_general, lambda p, f, r, b: _lean(p, f, r, b, False)):
            with pytest.raises(OSError) as caught:
                run("/x", data[:512], Broken(), Budget())
            errors.append((type(caught.value), str(caught.value)))
        assert errors[0] == errors[1] == [(OSError, "the layer broke off")][0]


def test_public_keys_credential_kinds_and_package_databases_with_a_known_name() -> None:
    from layerleak.entries import credfiles, provenance, pubkeys

    key, cert = _pem()
    paths = [
        "/root/.ssh/authorized_keys",
        "/etc/ssl/cert.pem",
        "/a/key.pub",
        "/root/.netrc",
        "/app/.env",
        "/x/application-prod.yml",
        "/var/lib/dpkg/status",
        "/var/lib/dpkg/info/bash.md5sums",
        "/usr/lib/python3/dist-packages/x-1.dist-info/RECORD",
        "/srv/node_modules/a/package.json",
        "/srv/node_modules/.package-lock.json",
        "/lib/apk/db/installed",
        "/go/pkg/mod/cache/download/x/@v/v1.ziphash",
        "/g/specifications/r-1.gemspec",
        "/m/repository/a/b.jar.sha1",
        "/plain.txt",
        "/status",
        "/RECORD",
    ]
    payloads = [
        cert,
        cert + b"\x00",
        b"\x30\x03\x02\x01\x00",
        b"\xfe\xed\xfe\xed" + bytes(40),
        b"text\n",
        bytes(10),
    ]
    for path in paths:
        base = posixpath.basename(path)
        assert credfiles.kind_for(path, base) == credfiles.kind_for(path)
        expected_db = bool(
            provenance._RECORD.search(path)
            and path.endswith("/RECORD")
            or provenance._DPKG_MD5SUMS.match(path)
            or path == provenance._DPKG_STATUS
            or path in provenance._APK_INSTALLED
            or path.endswith("/package.json")
            and provenance._NPM_PACKAGE_JSON.search(path)
            or path.endswith(provenance._NPM_LOCK)
            or provenance._GO_ZIPHASH.match(path)
            or provenance._GEMSPEC.match(path)
            or provenance._MAVEN_SHA1.search(path)
        )
        assert provenance.is_package_db(path) == expected_db, path
        for data in payloads:
            assert pubkeys.public_keys(path, data, base) == pubkeys.public_keys(path, data)
    assert pubkeys.public_keys("/c.pem", cert, "c.pem")  # a certificate is still found


def test_classifiers_match_their_one_test_at_a_time_forms() -> None:
    from layerleak.detect.classify import SKIP_MAGIC, container_kind, skip_reason

    def skip_before(head: bytes) -> str | None:
        for magic, name in SKIP_MAGIC:
            if head.startswith(magic):
                return name
        if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
            return "riff"
        return "mp4" if head[4:8] == b"ftyp" else None

    def kind_before(head: bytes) -> str | None:
        for magic, kind in (
            (b"\x1f\x8b\x08", "gzip"),
            (b"\xfd7zXZ\x00", "xz"),
            (b"\x28\xb5\x2f\xfd", "zstd"),
            (b"PK\x03\x04", "zip"),
        ):
            if head.startswith(magic):
                return kind
        if head.startswith(b"BZh") and head[3:4].isdigit() and head[3:4] != b"0":
            return "bzip2"
        return "tar" if head[257:262] == b"ustar" else None

    rng = random.Random(3)
    starts = [m for m, _ in SKIP_MAGIC] + [
        b"RIFF\x00\x00\x00\x00WEBP",
        b"RIFFxxxxWAVX",
        b"\x00\x00\x00\x18ftyp",
        b"\x1f\x8b\x08",
        b"\x1f\x8b\x07",
        b"BZh9",
        b"BZh0",
        b"BZhx",
        b"\xfd7zXZ\x00",
        b"\x28\xb5\x2f\xfd",
        b"PK\x03\x04",
        b"PK\x05\x06",
        b"",
        b"G",
        b"ftyp",
    ]
    heads = [
        s + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))) for s in starts for _ in range(5)
    ]
    heads += [_tar({"a": b"x"})[:HEAD], (b"x" * 257 + b"ustar")[:HEAD], b"x" * 259 + b"ustar"]
    for head in heads:
        assert skip_reason(head) == skip_before(head), head
        assert container_kind(head) == kind_before(head), head


# --- a whole gzip file: one inflate against GzipFile --------------------------------------------


def _gzip_header(
    flags: int, extra: bytes = b"", fname: bytes = b"", comment: bytes = b"", hcrc: bool = False
) -> bytes:
    head = b"\x1f\x8b\x08" + bytes([flags]) + bytes(4) + b"\x00\xff"
    if flags & 4:
        head += struct.pack("<H", len(extra)) + extra
    if flags & 8:
        head += fname + b"\x00"
    if flags & 16:
        head += comment + b"\x00"
    if flags & 2:
        crc = zlib.crc32(head) & 0xFFFF
        head += struct.pack("<H", crc if hcrc else crc ^ 0x5A5A)
    return head


def _gzip_raw(header: bytes, plain: bytes, crc: int | None = None, size: int | None = None) -> bytes:
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = comp.compress(plain) + comp.flush()
    crc = zlib.crc32(plain) if crc is None else crc
    return header + body + struct.pack("<II", crc, (len(plain) if size is None else size) & 0xFFFFFFFF)


def _gzips() -> dict[str, bytes]:
    line = _line()
    one = gzip.compress(line, mtime=0)
    return {
        "plain.gz": one,
        "empty.gz": gzip.compress(b"", mtime=0),
        "named.gz": _gzip_raw(_gzip_header(8 | 4 | 16, b"ab\x01\x00zz", b"orig.txt", b"a comment"), line),
        "hcrc-good.gz": _gzip_raw(_gzip_header(2 | 8, fname=b"x", hcrc=True), line),
        "hcrc-bad.gz": _gzip_raw(_gzip_header(2 | 8, fname=b"x", hcrc=False), line),
        "reserved-flag.gz": _gzip_raw(_gzip_header(0x20), line),
        "bad-crc.gz": _gzip_raw(_gzip_header(0), line, crc=1),
        "bad-size.gz": _gzip_raw(_gzip_header(0), line, size=len(line) + 1),
        "two-members.gz": one + gzip.compress(_line(), mtime=0),
        "zero-padded.gz": one + bytes(7),
        "garbage-after.gz": one + b"garbage",
        "truncated.gz": one[:-6],
        "cut-in-deflate.gz": gzip.compress(line * 300, mtime=0)[:60],
        "tar.gz": gzip.compress(_tar({"etc/a.conf": line}), mtime=0),
        "zip-in.gz": gzip.compress(_zip([("a.txt", line, 8)]), mtime=0),
        "gz-in.gz": gzip.compress(one, mtime=0),
        "floor.gz": gzip.compress(bytes(MIB - len(line)) + line, mtime=0),
        "floor+1.gz": gzip.compress(bytes(MIB + 1 - len(line)) + line, mtime=0),
        "big.gz": gzip.compress(bytes(3 * MIB) + line, mtime=0),
        "random.gz": gzip.compress(random.Random(1).randbytes(50_000) + line, mtime=0),
    }


def test_whole_gzip_files_as_layer_files_and_as_members(monkeypatch: pytest.MonkeyPatch) -> None:
    gzips = _gzips()
    for name, data in gzips.items():
        for limits in (
            DEFAULT_LIMITS,
            Limits(max_expanded_bytes=MIB // 2),
            Limits(max_expanded_bytes=len(_line())),
        ):
            _same_both_ways(monkeypatch, f"/var/log/{name}", data, limits)
    taken = _count_gzip(monkeypatch)
    _run("/var/log/plain.gz", gzips["plain.gz"], DEFAULT_LIMITS)
    assert taken == [1]
    for method in (0, 8):
        archive = _zip([(n, d, method) for n, d in gzips.items()])
        hits, notes, _ = _same_both_ways(monkeypatch, "/a.zip", archive)
        assert any(h[0] == "named.gz!/named" for h in hits) and any("CRC check failed" in n for n in notes), (
            hits,
            notes,
        )
        _same_both_ways(monkeypatch, "/a.zip", archive, Limits(max_expanded_bytes=2 * MIB))
    tar = _tar(gzips)
    _same_both_ways(monkeypatch, "/a.tar", tar)
    streamed = gzips["plain.gz"] * 1
    budget = Budget()
    found = list(scan_file(ENGINE, "/s.gz", streamed[:10], io.BytesIO(streamed[10:]), budget))
    assert found and not budget.notes  # a gzip read in parts is GzipFile's, as before


def _count_gzip(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    taken = [0]
    real = nested._whole_gzip

    def counting(*args: Any) -> bytes | None:
        got = real(*args)
        taken[0] += got is not None
        return got

    monkeypatch.setattr(nested, "_whole_gzip", counting)
    return taken
