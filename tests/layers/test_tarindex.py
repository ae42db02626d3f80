"""The header walk finds exactly the members tarfile finds, and refuses what it cannot read the
same way; a layer scanned in parts, merged, is the layer scanned whole."""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
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


# --- archives written by GNU tar, read from a file (pread) and as a stream ----------------------

GNU_TAR = shutil.which("tar")


def _starts_both_ways(path: Path, offset: int, size: int) -> list[int] | None:
    """member_starts of the tar at ``offset`` in ``path``, read from the open file (pread) and
    as an in-memory stream (seek and read): the two readers must agree."""
    with path.open("rb") as f:
        f.seek(offset)
        from_file = tarindex.member_starts(f, size)
    data = path.read_bytes()[offset : offset + size]
    assert tarindex.member_starts(io.BytesIO(data), size) == from_file
    return from_file


def _tree(root: Path, with_git: bool = False) -> Path:
    """Files of many sizes, names past 100 characters, symlinks with long targets, hardlinks,
    empty files and directories: what a real layer holds."""
    deep = root / "usr" / "lib" / ("python3-site-packages-" * 6) / "pkg"
    deep.mkdir(parents=True)
    for i in range(40):
        (deep / f"module_{i}{'_long' * (i % 9)}.py").write_bytes(b"x = %d\n" % i * (i * 61 % 700))
    (root / "etc").mkdir()
    (root / "etc" / "empty.conf").write_bytes(b"")
    (root / "etc" / "big.bin").write_bytes(bytes(range(256)) * 4099)
    (root / "etc" / "hard.bin").hardlink_to(root / "etc" / "big.bin")
    (root / "bin").mkdir()
    (root / "bin" / "short").symlink_to("../etc/empty.conf")
    (root / "bin" / "far").symlink_to("../" + str((deep / "module_8_long_long_long.py").relative_to(root)))
    (root / "var" / "cache" / "empty-dir").mkdir(parents=True)
    if with_git:
        repo = root / "srv" / "app"
        repo.mkdir(parents=True)
        (repo / "app.py").write_text("print('hi')\n")
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
               "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}
        for argv in (["init", "-q"], ["add", "."], ["commit", "-qm", "first"]):
            subprocess.run(["git", "-C", str(repo), *argv], env=env, check=True, capture_output=True,
                           timeout=60)
    return root


def _gnu_tar(tree: Path, out: Path, fmt: str) -> Path:
    if GNU_TAR is None:  # pragma: no cover - tar is part of every test machine
        pytest.fail("GNU tar is needed to write the real archives of this test")
    subprocess.run([GNU_TAR, f"--format={fmt}", "-cf", str(out), "-C", str(tree), "."], check=True,
                   capture_output=True, timeout=60)
    return out


@pytest.mark.parametrize("fmt", ["gnu", "oldgnu", "posix"])
def test_member_starts_of_gnu_tar_archives_are_tarfiles_offsets(tmp_path: Path, fmt: str) -> None:
    """An archive GNU tar wrote (long names as GNU ``L``/``K`` records or pax headers, links,
    hardlinks, empty files), embedded in a file at an offset as in a docker-archive: every
    member start is where tarfile begins that member, read from the file and as a stream."""
    blob = _gnu_tar(_tree(tmp_path / "t"), tmp_path / "layer.tar", fmt).read_bytes()
    truth = [m.offset for m in tarfile.open(fileobj=io.BytesIO(blob)).getmembers()]
    assert len(truth) > 45
    names = tarfile.open(fileobj=io.BytesIO(blob)).getnames()
    assert any(len(n) > 100 for n in names)  # extension headers were written
    archive = tmp_path / "archive"
    archive.write_bytes(b"\x01" * 1536 + blob + b"trailing bytes of the archive")
    assert _starts_both_ways(archive, 1536, len(blob)) == truth


def test_a_gnu_tar_archive_with_a_git_repository_is_not_split(tmp_path: Path) -> None:
    blob = _gnu_tar(_tree(tmp_path / "t", with_git=True), tmp_path / "layer.tar", "gnu")
    assert _starts_both_ways(blob, 0, blob.stat().st_size) is None


def test_every_damaged_header_and_every_truncation_is_refused(tmp_path: Path) -> None:
    """A header whose checksum no longer agrees, wherever it is in the layer, and a layer cut
    at any member: the walk gives up (the layer is then scanned whole, which reports it)."""
    blob = _gnu_tar(_tree(tmp_path / "t"), tmp_path / "layer.tar", "posix").read_bytes()
    truth = [m.offset for m in tarfile.open(fileobj=io.BytesIO(blob)).getmembers()]
    path = tmp_path / "damaged"
    for i, start in enumerate(truth):
        bad = bytearray(blob)
        bad[start + 3 + i % 90] ^= 0x20  # a byte of the name: the checksum disagrees
        path.write_bytes(bad)
        assert _starts_both_ways(path, 0, len(bad)) is None, start
        assert tarindex.member_starts(io.BytesIO(blob[:start]), start) is None


def test_both_readers_agree_on_mutated_archives(tmp_path: Path) -> None:
    """Random damage anywhere (data, headers, padding): the file reader and the stream reader
    give the same answer, and whatever is found is tarfile's member offsets."""
    blob = _gnu_tar(_tree(tmp_path / "t"), tmp_path / "layer.tar", "gnu").read_bytes()
    rng = random.Random(15)
    path = tmp_path / "mutated"
    found = 0
    for _ in range(150):
        bad = bytearray(blob)
        for _ in range(rng.randint(1, 3)):
            bad[rng.randrange(len(bad))] = rng.randrange(256)
        path.write_bytes(bad)
        starts = _starts_both_ways(path, 0, len(bad))
        if starts is not None:
            found += 1
            assert starts == [m.offset for m in tarfile.open(fileobj=io.BytesIO(bytes(bad))).getmembers()]
    assert found > 0  # most mutations hit file data, which the walk never reads


def test_split_points_of_a_real_archive_are_tarfiles_member_offsets(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The tasks a layer is cut into start exactly at members tarfile reads there, cut where
    split_points cuts tarfile's own member list."""
    blob = _gnu_tar(_tree(tmp_path / "t"), tmp_path / "layer.tar", "posix").read_bytes()
    truth = [m.offset for m in tarfile.open(fileobj=io.BytesIO(blob)).getmembers()]
    archive = tmp_path / "archive"
    archive.write_bytes(b"\x02" * 512 + blob)
    loc = BlobLocation(str(archive), 512, len(blob))
    monkeypatch.setattr("layerleak.scan.layers.SHARD_MIN", 4096)
    tasks = sorted(_tasks({"k": loc}, LayerPlan(jobs=2)), key=lambda t: t.start)
    expected = tarindex.split_points(truth, len(blob), -(-len(blob) // max(4096, len(blob) // 32)))
    assert len(expected) >= 4
    assert [t.start for t in tasks] == [0, *expected]
    assert [t.stop for t in tasks] == [*expected, None]


def test_split_stream_gives_split_points_point_by_point() -> None:
    """Streamed split points are split_points of the finished list, on member lists with big
    gaps, clusters and several marks falling on one member; each point is yielded before any
    member start past it is read."""
    rng = random.Random(1515)
    for _ in range(400):
        size = rng.randint(512, 1 << 22)
        count = rng.randint(0, 60)
        starts = sorted({0, *(rng.randrange(0, size, 512) for _ in range(count))}) if count else []
        parts = rng.randint(1, 40)
        seen: list[int] = []

        def reading(values: list[int], seen: list[int] = seen) -> Iterator[int]:
            for value in values:
                seen.append(value)
                yield value

        streamed = []
        for point in tarindex.split_stream(reading(starts), size, parts):
            assert seen[-1] == point  # known as soon as the walk reached it
            streamed.append(point)
        assert streamed == tarindex.split_points(starts, size, parts)
