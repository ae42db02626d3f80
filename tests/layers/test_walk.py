"""The streaming layer walk: whiteouts, hardlinks, compression by magic, corruption."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest
import zstandard

from conftest import TOKEN, TOKEN_RULE
from layerleak.detect.engine import Engine
from layerleak.detect.rules import parse_rules_text
from layerleak.layers.walk import KIND_DIR, KIND_OTHER, LayerScan, normalize, scan_layer

RULES = TOKEN_RULE
SECRET = TOKEN


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(parse_rules_text(RULES, "test"))


def make_layer(members: list[tuple[str, bytes | None, str | None]]) -> bytes:
    """(name, data or None for a directory, hardlink/symlink target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type = tarfile.LNKTYPE if data == b"hard" else tarfile.SYMTYPE
                info.linkname = link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_normalize() -> None:
    assert normalize("./etc/passwd") == "/etc/passwd"
    assert normalize("etc/dir/") == "/etc/dir"
    assert normalize("/a/../b") == "/b"
    assert normalize("./") == "/"


def test_entries_whiteouts_and_hits(engine: Engine) -> None:
    blob = make_layer(
        [
            ("./etc/", None, None),
            ("./etc/app.conf", f"a=1\ntoken={SECRET}\n".encode(), None),
            ("etc/.wh.old.conf", b"", None),
            ("var/lib/.wh..wh..opq", b"", None),
            ("etc/.wh..wh.plnk", b"", None),
        ]
    )
    scan = scan_layer("k", io.BytesIO(blob), engine)
    assert scan.error is None
    assert scan.entries == {"/etc": KIND_DIR, "/etc/app.conf": KIND_OTHER}
    assert scan.whiteouts == {"/etc/old.conf"}
    assert scan.opaque == {"/var/lib"}
    assert [(h.path, h.match.secret, h.match.line) for h in scan.hits] == [
        ("/etc/app.conf", SECRET, 2)
    ]
    assert scan.bytes_read == len(blob)


def test_hardlinks_and_symlinks_are_not_scanned_twice(engine: Engine) -> None:
    blob = make_layer(
        [
            ("a/key", SECRET.encode(), None),
            ("b/key", b"hard", "a/key"),
            ("c/key", b"sym", "/a/key"),
        ]
    )
    scan = scan_layer("k", io.BytesIO(blob), engine)
    assert [h.path for h in scan.hits] == ["/a/key"]
    assert set(scan.entries) == {"/a/key", "/b/key", "/c/key"}


@pytest.mark.parametrize("compress", [gzip.compress, zstandard.ZstdCompressor().compress, bytes])
def test_compression_decided_by_magic(engine: Engine, compress: object) -> None:
    blob = make_layer([("f", SECRET.encode(), None)])
    data = compress(blob)  # type: ignore[operator]
    scan = scan_layer("k", io.BytesIO(data), engine)
    assert scan.error is None
    assert [h.match.secret for h in scan.hits] == [SECRET]


def test_truncated_layer_keeps_what_was_read(engine: Engine) -> None:
    blob = make_layer([("a", SECRET.encode(), None), ("b", b"x" * 200_000, None)])
    data = gzip.compress(blob)
    scan = scan_layer("k", io.BytesIO(data[: len(data) // 2]), engine)
    assert scan.error is not None and "truncated" in scan.error
    assert [h.path for h in scan.hits] == ["/a"]


def test_garbage_layer_is_an_error_not_an_exception(engine: Engine) -> None:
    scan = scan_layer("k", io.BytesIO(b"\x1f\x8b" + b"garbage" * 100), engine)
    assert scan.error is not None
    assert scan.hits == []


def test_compressed_media_is_skipped_by_magic(engine: Engine) -> None:
    png = b"\x89PNG\r\n\x1a\n" + SECRET.encode()
    blob = make_layer([("logo.png", png, None), ("plain.bin", b"\x00\x01" + SECRET.encode(), None)])
    scan = scan_layer("k", io.BytesIO(blob), engine)
    assert scan.skipped == {"png": 1}
    assert [h.path for h in scan.hits] == ["/plain.bin"]


def test_a_layer_is_read_to_its_end(engine: Engine) -> None:
    """bytes_read is the whole uncompressed layer (padding after the end-of-archive marker
    included), and damage after the tar's end (a cut gzip trailer) is still reported."""
    blob = make_layer([("etc/app.conf", f"token={SECRET}\n".encode(), None)]) + bytes(8192)
    plain = scan_layer("k", io.BytesIO(blob), engine)
    assert plain.error is None and plain.bytes_read == len(blob) and len(plain.hits) == 1
    packed = gzip.compress(blob)
    whole = scan_layer("k", io.BytesIO(packed), engine)
    assert whole.error is None and whole.bytes_read == len(blob)
    cut = scan_layer("k", io.BytesIO(packed[:-4]), engine)  # the trailer's size field is gone
    assert cut.error is not None and "truncated" in cut.error
    assert [h.match.secret for h in cut.hits] == [SECRET]  # what was read is still reported


def test_a_large_file_read_from_a_file_is_digested_again_only_when_it_has_a_match(
    engine: Engine, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A layer part read from a file digests its large files (over FILE_HEAD) from the file,
    and only those with a match; the digests are those the streamed walk computes on the way."""
    from pathlib import Path

    from layerleak.detect.engine import FILE_HEAD
    from layerleak.entries import provenance
    from layerleak.layers.walk import scan_layer_part

    big = b"x" * (FILE_HEAD + 12345) + f"\ntoken={SECRET}\n".encode() + b"y" * 1000
    clean = b"z" * (FILE_HEAD + 777)
    blob = make_layer([("usr/share/big.txt", big, None), ("usr/share/clean.txt", clean, None),
                       ("usr/lib/python3/site-packages/p/big.txt", big, None)])
    path = Path(str(tmp_path)) / "layer.tar"
    path.write_bytes(b"\0" * 1536 + blob)  # the layer starts inside the file, as in an archive
    streamed = scan_layer("k", io.BytesIO(blob), engine)
    calls: list[int] = []
    real = provenance.region_digests

    def counted(fd: int, offset: int, size: int, name: str) -> frozenset[str]:
        calls.append(size)
        return real(fd, offset, size, name)

    monkeypatch.setattr(provenance, "region_digests", counted)
    with path.open("rb") as f:
        f.seek(1536)
        part = scan_layer_part("k", f, engine, None)
    assert part.error is None and streamed.error is None
    assert part.digests == streamed.digests
    assert set(part.digests) == {"/usr/share/big.txt", "/usr/lib/python3/site-packages/p/big.txt"}
    assert part.digests["/usr/share/big.txt"] == {"md5:" + hashlib.md5(big).hexdigest()}
    assert part.digests["/usr/lib/python3/site-packages/p/big.txt"] == {
        "sha256:" + hashlib.sha256(big).hexdigest()}
    assert calls == [len(big), len(big)]  # the clean large file was never digested


def test_a_large_file_cut_short_in_its_file_is_damage(tmp_path: object) -> None:
    from pathlib import Path

    from layerleak.entries import provenance

    path = Path(str(tmp_path)) / "short"
    path.write_bytes(b"a" * 100)
    with path.open("rb") as f, pytest.raises(OSError):
        provenance.region_digests(f.fileno(), 50, 100, "/x")


def test_a_part_read_from_a_file_is_the_part_read_as_a_stream(engine: Engine, tmp_path: object) -> None:
    """A part read seekable from its file (headers and members straight from the file) gives
    the result the tar stream reader gives for the same bytes, for a part that starts inside the
    layer and stops before its end, with PAX long names, links and whiteouts in it."""
    from pathlib import Path

    from layerleak.layers import tarindex
    from layerleak.layers.walk import scan_layer_part

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(60):
            name = f"srv/{'d' * (90 + i)}/f{i}.conf" if i % 3 else f"etc/app{i}.conf"
            data = f"n={i}\ntoken={SECRET}\n".encode() if i % 7 == 0 else f"plain {i}\n".encode() * i
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            if i % 11 == 0:
                link = tarfile.TarInfo(f"srv/link{i}")
                link.type, link.linkname = tarfile.SYMTYPE, name
                tar.addfile(link)
                tar.addfile(tarfile.TarInfo(f"etc/.wh.gone{i}"))
    blob = buf.getvalue()
    path = Path(str(tmp_path)) / "archive"
    path.write_bytes(b"\0" * 512 + blob)
    with path.open("rb") as f:
        f.seek(512)
        starts = tarindex.member_starts(f, len(blob))
    assert starts is not None and len(starts) > 20
    start, stop = starts[7], starts[40]
    with path.open("rb") as f:
        f.seek(512 + start)
        seekable = scan_layer_part("k", f, engine, stop - start)
    streamed = scan_layer_part("k", io.BytesIO(blob[start:]), engine, stop - start)
    assert seekable.error is None and seekable.hits
    assert seekable.entries == streamed.entries and seekable.whiteouts == streamed.whiteouts
    def found(scan: LayerScan) -> list[tuple[str, str, str, int, int]]:
        return [(h.path, h.match.rule_id, h.match.secret, h.match.line, h.match.offset) for h in scan.hits]

    assert found(seekable) == found(streamed)
    assert (seekable.files_scanned, seekable.digests, seekable.notes) == (
        streamed.files_scanned, streamed.digests, streamed.notes)
