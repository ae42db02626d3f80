"""A gzip layer inflated to a private temporary file (scan/spool.py): the same bytes and digests the
usual path reads, nothing left behind, and every reason to give up leaves the layer to that path."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from layerleak.entries.limits import DEFAULT_LAYER_LIMITS
from layerleak.scan.spool import Spool
from layerleak.sources.interface import BlobLocation


def _layer(files: int = 30, size: int = 50_000) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(files):
            data = os.urandom(size // 2) + bytes(size // 2)
            info = tarfile.TarInfo(f"d/f{i}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _placed(tmp_path: Path, blob: bytes) -> BlobLocation:
    """``blob`` inside a bigger file, as a layer sits inside an archive."""
    path = tmp_path / "archive"
    path.write_bytes(b"x" * 1000 + blob + b"y" * 700)
    return BlobLocation(str(path), 1000, len(blob))


def test_a_spooled_layer_is_the_plain_layer_with_both_digests(tmp_path: Path) -> None:
    plain = _layer()
    blob = gzip.compress(plain, mtime=0)
    spool = Spool(_placed(tmp_path, blob), directory=str(tmp_path)).start()
    loc = spool.wait()
    assert loc is not None, spool.reason
    assert Path(loc.path).read_bytes()[loc.offset : loc.offset + loc.size] == plain
    assert spool.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert spool.blob_sha256 == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert stat.S_IMODE(os.stat(loc.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(loc.path)).st_mode) == 0o700
    spool.close()
    assert not os.path.exists(os.path.dirname(loc.path))
    assert [p.name for p in tmp_path.iterdir()] == ["archive"]


def test_a_multi_member_gzip_is_read_as_the_usual_path_reads_it(tmp_path: Path) -> None:
    plain = _layer()
    half = len(plain) // 2
    blob = gzip.compress(plain[:half], mtime=0) + gzip.compress(plain[half:], mtime=0)
    with Spool(_placed(tmp_path, blob), directory=str(tmp_path)).start() as spool:
        loc = spool.wait()
        assert loc is not None, spool.reason
        assert Path(loc.path).read_bytes() == plain


@pytest.mark.parametrize(
    "damage",
    ["truncated", "garbage after the stream", "corrupt", "not gzip", "too big", "bomb"],
)
def test_every_reason_to_give_up_leaves_nothing_and_gives_none(tmp_path: Path, damage: str) -> None:
    plain = _layer()
    blob = gzip.compress(plain, mtime=0)
    limits = DEFAULT_LAYER_LIMITS
    max_bytes = 1 << 40
    if damage == "truncated":
        blob = blob[: len(blob) * 2 // 3]
    elif damage == "garbage after the stream":
        blob += b"not a gzip member at all"
    elif damage == "corrupt":
        middle = len(blob) // 2
        blob = blob[:middle] + bytes(b ^ 0x55 for b in blob[middle : middle + 64]) + blob[middle + 64 :]
    elif damage == "not gzip":
        blob = plain
    elif damage == "too big":
        max_bytes = len(plain) // 2
    else:  # zeros expand far beyond any ratio a layer may have
        blob = gzip.compress(bytes(20 << 20), mtime=0)
        limits = dataclasses.replace(DEFAULT_LAYER_LIMITS, layer_ratio_floor=1 << 20, max_layer_ratio=50)
    loc = _placed(tmp_path, blob)
    spool = Spool(loc, max_bytes=max_bytes, limits=limits, directory=str(tmp_path)).start()
    assert spool.wait() is None
    assert spool.reason
    assert [p.name for p in tmp_path.iterdir()] == ["archive"]  # the temporary directory is gone
    spool.close()


def test_close_stops_inflating_and_removes_the_file(tmp_path: Path) -> None:
    blob = gzip.compress(_layer(files=200, size=200_000), compresslevel=1, mtime=0)
    spool = Spool(_placed(tmp_path, blob), directory=str(tmp_path)).start()
    spool.close()
    assert [p.name for p in tmp_path.iterdir()] == ["archive"]
    assert spool.wait() is None  # finished or not, it names no file once closed
