"""The tar guard (layers/targuard.py) on hand-made headers: each bound is hit before tarfile reads
what the header claims, and a bad header mid-archive is an error instead of a quiet end."""

from __future__ import annotations

import io
import tarfile

import pytest

import hostile
from layerleak.entries.limits import DEFAULT_LAYER_LIMITS, LayerLimits
from layerleak.layers import targuard


def _names(data: bytes, limits: LayerLimits = DEFAULT_LAYER_LIMITS) -> list[str]:
    tar = targuard.open_stream(io.BytesIO(data), limits)
    return [m.name for m in targuard.members(tar, limits)]


def test_a_good_tar_reads_as_tarfile_reads_it() -> None:
    data = hostile.tar(
        hostile.member("a", b"1"), hostile.pax([("path", "b" * 300)]), hostile.member("x", b"2")
    )
    assert _names(data) == [m.name for m in tarfile.open(fileobj=io.BytesIO(data))]


@pytest.mark.parametrize(
    ("kind", "limit"),
    [
        (b"x", "max_header_bytes"),
        (b"g", "max_header_bytes"),
        (b"L", "max_name_bytes"),
        (b"K", "max_name_bytes"),
    ],
)
def test_an_extension_header_over_its_limit_is_refused_before_it_is_read(kind: bytes, limit: str) -> None:
    claimed = 1 << 40  # a terabyte: reading it would take forever; nothing is read
    data = hostile.tar(hostile.member("a", b"1"), hostile.header("././@X", claimed, kind))
    with pytest.raises(targuard.TarDamage) as caught:
        _names(data)
    assert caught.value.limit == limit and limit in caught.value.message


def test_header_chains_and_member_counts_are_bounded() -> None:
    chain = hostile.tar(*(hostile.pax([("comment", "c")]) for _ in range(20)), hostile.member("x", b""))
    with pytest.raises(targuard.TarDamage, match="max_extension_chain"):
        _names(chain)
    many = hostile.tar(*(hostile.member(f"f{i}", b"") for i in range(11)))
    with pytest.raises(targuard.TarDamage, match="max_members"):
        _names(many, LayerLimits(max_members=10))
    assert len(_names(many, LayerLimits(max_members=11))) == 11


def test_a_bad_checksum_mid_archive_is_an_error_not_the_end() -> None:
    data = hostile.tar(hostile.member("a", b"1"), hostile.header("b", 1, checksum=False) + hostile.pad(b"2"))
    assert [m.name for m in tarfile.open(fileobj=io.BytesIO(data))] == ["a"]  # tarfile: a quiet end
    with pytest.raises(targuard.TarDamage, match="bad tar header at byte 1024"):
        _names(data)


def test_negative_sizes_and_malformed_pax_records_are_errors() -> None:
    for data in (
        hostile.tar(hostile.member("a", b"1"), hostile.header("n", -512)),
        hostile.tar(hostile.pax([("size", "-5")]), hostile.member("x", b"1")),
        hostile.tar(hostile.pax([("GNU.sparse.map", "a,b")]), hostile.member("x", b"1")),
        hostile.tar(hostile.member(b"././@PaxHeader", b"0 path=x\n", b"x"), hostile.member("x", b"1")),
    ):
        with pytest.raises(targuard.TarDamage):
            _names(data)


def test_a_sparse_member_reads_its_data_not_its_holes() -> None:
    extra = {386: hostile.number(1 << 20, 12) + hostile.number(5, 12), 483: hostile.number(1 << 40, 12)}
    data = hostile.tar(hostile.header("s", 512, b"S", extra=extra) + hostile.pad(b"hello"))
    tar = targuard.open_stream(io.BytesIO(data))
    for member in targuard.members(tar):
        assert member.size == 1 << 40
        assert targuard.SparseData(tar.extractfile(member), member).read() == b"hello"


_HEADER_ATTRS = ("name", "mode", "uid", "gid", "size", "mtime", "chksum", "type", "linkname", "uname",
                 "gname", "devmajor", "devminor")


def _headers() -> list[bytes]:
    """Header blocks tarfile writes in every format, with the fields' corners."""
    out: list[bytes] = []
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        for name, kind, extra in [
            ("etc/app.conf", tarfile.REGTYPE, {}),
            ("a/" * 60 + "file.txt", tarfile.REGTYPE, {}),  # over 100 bytes: ustar prefix
            ("srv/dir/", tarfile.DIRTYPE, {}),
            ("dev/null", tarfile.CHRTYPE, {"devmajor": 1, "devminor": 3}),
            ("bin/sh", tarfile.SYMTYPE, {"linkname": "dash"}),
            ("x/caf\xe9.txt", tarfile.REGTYPE, {"uname": "r\xf6ot"}),  # high bytes: signed sums differ
            ("big", tarfile.REGTYPE, {"uid": 8**7 + 5, "size": 0o7777777}),  # base-256 uid in GNU
        ]:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mtime = 1_700_000_000
            for key, value in extra.items():
                setattr(info, key, value)
            try:
                out.append(info.tobuf(fmt, "utf-8", "surrogateescape")[-512:])
            except ValueError:
                continue  # a field this format cannot hold
    return out


def _read(read: object, buf: bytes) -> object:
    try:
        return read(buf, "utf-8", "surrogateescape")  # type: ignore[operator]
    except tarfile.HeaderError as exc:
        return type(exc)


def test_ordinary_headers_are_read_as_tarfile_reads_them() -> None:
    """The fast header reader gives tarfile's TarInfo field for field, or leaves the block to
    tarfile: on headers of every format and on thousands of damaged variants of them."""
    import random

    from layerleak.layers.targuard import _usual_header

    rng = random.Random(15)
    fast = 0
    blocks = _headers()
    variants = list(blocks)
    for _ in range(6000):
        block = bytearray(rng.choice(blocks))
        for _ in range(rng.randint(1, 3)):
            at = rng.choice([rng.randrange(512), rng.randrange(100, 160), rng.randrange(329, 345)])
            block[at] = rng.choice(b"\x00 0127x\x80\xff/") if rng.random() < 0.8 else rng.randrange(256)
        if rng.random() < 0.7:  # keep the checksum right, so the mutation reaches the fields
            block[148:156] = b" " * 8
            block[148:156] = b"%06o\x00 " % (sum(block) & 0o777777)
        variants.append(bytes(block))
    variants += [b"", bytes(512), b"\x00" * 511]
    for buf in variants:
        expected = _read(tarfile.TarInfo.frombuf, buf)
        got = _usual_header(tarfile.TarInfo, buf, "utf-8", "surrogateescape")
        if got is None:
            continue
        fast += 1
        assert isinstance(expected, tarfile.TarInfo), buf
        assert [getattr(got, a) for a in _HEADER_ATTRS] == [getattr(expected, a) for a in _HEADER_ATTRS]
    assert fast > 1000  # the ordinary headers and their undamaged-looking variants took the fast path
