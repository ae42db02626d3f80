"""The header walk finds exactly the members tarfile finds, and refuses what it cannot read the
same way; a layer scanned in parts, merged, is the layer scanned whole."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from plant import github_pat_classic

from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.layers import tarindex
from layerleak.layers.walk import merge, scan_layer
from layerleak.scan.layers import LayerPlan, _Task, _tasks, hash_region, scan_part
from layerleak.sources.interface import BlobLocation

ENGINE = Engine(load_rules(()))


def _token() -> str:
    return github_pat_classic()  # made here, random, with the checksum GitHub's tokens carry


def _tar(fmt: int, files: int = 60, secret: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for i in range(files):
            name = f"d{i % 7}/" + ("long-" * 30 if i % 5 == 0 else "") + f"f{i}-é.conf"
            data = f"line {i}\n".encode() * (i * 37 % 500)
            if secret and i % 9 == 4:
                data += f"token = {secret}\n".encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            if i % 11 == 0:
                link = tarfile.TarInfo(f"links/l{i}")
                link.type = tarfile.SYMTYPE
                link.linkname = name
                tar.addfile(link)
            if i % 13 == 0:
                d = tarfile.TarInfo(f"dirs/{i}")
                d.type = tarfile.DIRTYPE
                tar.addfile(d)
            if i % 17 == 0:
                wh = tarfile.TarInfo(f"d{i % 7}/.wh.gone{i}")
                tar.addfile(wh, io.BytesIO())
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_member_starts_are_tarfiles_member_offsets(fmt: int) -> None:
    if fmt == tarfile.USTAR_FORMAT:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
            for i in range(30):
                info = tarfile.TarInfo(f"a/b{i}")
                info.size = i * 100
                tar.addfile(info, io.BytesIO(b"x" * info.size))
        blob = buf.getvalue()
    else:
        blob = _tar(fmt)
    truth = [m.offset for m in tarfile.open(fileobj=io.BytesIO(blob)).getmembers()]
    got = tarindex.member_starts(io.BytesIO(blob), len(blob))
    assert got == truth and len(truth) >= 30


def test_member_starts_refuses_what_it_cannot_read_exactly() -> None:
    blob = _tar(tarfile.GNU_FORMAT)
    assert tarindex.member_starts(io.BytesIO(blob[: len(blob) // 2]), len(blob) // 2) is None
    bad = bytearray(blob)
    bad[600] ^= 0xFF  # inside the second header: its checksum no longer agrees
    second = [m.offset for m in tarfile.open(fileobj=io.BytesIO(blob)).getmembers()][1]
    bad[second + 10] ^= 0x01
    assert tarindex.member_starts(io.BytesIO(bytes(bad)), len(bad)) is None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "global"}) as tar:
        tar.addfile(tarfile.TarInfo("a"), io.BytesIO())
    assert tarindex.member_starts(io.BytesIO(buf.getvalue()), len(buf.getvalue())) is None


def test_old_style_directory_has_no_data() -> None:
    """An AREGTYPE member named with a trailing slash is a directory: tarfile skips no data."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        d = tarfile.TarInfo("olddir/")
        d.type = tarfile.AREGTYPE
        d.size = 0
        tar.addfile(d)
        f = tarfile.TarInfo("olddir/f")
        f.size = 3
        tar.addfile(f, io.BytesIO(b"abc"))
    blob = bytearray(buf.getvalue())
    # A size in the directory's header that tarfile ignores (checksum recomputed).
    blob[124:136] = b"%011o\x00" % 1000
    blob[148:156] = b" " * 8
    blob[148:156] = b"%06o\x00 " % (sum(blob[:512]))
    truth = [m.offset for m in tarfile.open(fileobj=io.BytesIO(bytes(blob))).getmembers()]
    assert tarindex.member_starts(io.BytesIO(bytes(blob)), len(blob)) == truth == [0, 512]


def test_split_points_are_member_starts_near_equal_parts() -> None:
    starts = [0, 100, 200, 900, 950, 1000]
    assert tarindex.split_points(starts, 1200, 3) == [900]
    assert tarindex.split_points(starts, 1200, 2) == [900]
    assert tarindex.split_points(list(range(0, 1000, 10)), 1000, 4) == [250, 500, 750]


def test_a_layer_scanned_in_parts_is_the_layer_scanned_whole(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    blob = _tar(tarfile.PAX_FORMAT, files=300, secret=_token())
    path = tmp_path / "layer.tar"
    path.write_bytes(b"junk-before" + blob + b"junk-after")
    loc = BlobLocation(str(path), len(b"junk-before"), len(blob))
    whole = scan_layer("k", io.BytesIO(blob), ENGINE)
    assert whole.error is None and len(whole.hits) >= 30 and whole.whiteouts
    monkeypatch.setattr("layerleak.scan.layers.SHARD_MIN", 1)
    tasks = [t for t in _tasks({"k": loc}, LayerPlan(jobs=2)) if t.key == "k"]
    assert len(tasks) >= 4 and not any(t.whole for t in tasks)
    parts = [scan_part(t, ENGINE) for t in sorted(tasks, key=lambda t: t.start)]
    merged = merge("k", parts, loc.size, hash_region(loc))
    assert merged == whole
    assert merged.bytes_read == len(blob)
    # A compressed layer is never split.
    gz = tmp_path / "layer.tar.gz"
    import gzip

    gz.write_bytes(gzip.compress(blob))
    gloc = BlobLocation(str(gz), 0, gz.stat().st_size)
    assert [t.whole for t in _tasks({"g": gloc}, LayerPlan(jobs=2))] == [True]
    assert scan_part(_Task("g", gloc), ENGINE) == scan_layer("g", io.BytesIO(gz.read_bytes()), ENGINE)
