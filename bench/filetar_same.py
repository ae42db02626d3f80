"""Read every uncompressed layer of a saved image twice, the way main read a layer part (tarfile's
next() and reader) and from its file (layers/targuard.FileTar), and check that both give the same
members, field for field, the same bytes and the same end; print the CPU seconds each way takes to
read them (without the digest, the mean of two alternating runs).

    python bench/filetar_same.py /work/bench-out/node.docker.tar [...]

The bytes are compared by digest, so nothing of an image's content is printed.
"""

from __future__ import annotations

import hashlib
import sys
import tarfile
import time
from typing import Any

from layerleak.detect.engine import FILE_HEAD
from layerleak.entries.limits import DEFAULT_LAYER_LIMITS
from layerleak.layers import targuard
from layerleak.sources.archive import TarArchiveSource

FIELDS = ("name", "mode", "uid", "gid", "size", "mtime", "chksum", "type", "linkname", "uname", "gname",
          "devmajor", "devminor", "offset", "offset_data", "pax_headers", "sparse")


class _Nothing:
    def update(self, data: bytes) -> None:
        pass

    def hexdigest(self) -> str:
        return ""


def read(path: str, offset: int, fast: bool, check: bool = True) -> tuple[list[Any], str, float]:
    """The members and the digest of their bytes (``check``), and the CPU seconds it took."""
    digest: Any = hashlib.sha256() if check else _Nothing()
    rows: list[Any] = []
    t0 = time.process_time()
    with open(path, "rb", buffering=1 << 20) as f:
        f.seek(offset)
        fd = f.fileno() if fast else None
        try:
            tar = targuard.open_seekable(f, DEFAULT_LAYER_LIMITS, fd, FILE_HEAD)
            for member in targuard.members(tar):
                rows.append(tuple(getattr(member, a) for a in FIELDS))
                if member.isreg() and member.size:
                    reader = tar.extractfile(member)
                    assert reader is not None
                    digest.update(reader.read(min(member.size, FILE_HEAD)))
                    while piece := reader.read(1 << 20):
                        digest.update(piece)
        except (tarfile.TarError, OSError) as exc:
            rows.append(("error", type(exc).__name__, str(exc)))
    return rows, digest.hexdigest(), time.process_time() - t0


def main(images: list[str]) -> int:
    bad = 0
    for image in images:
        source = TarArchiveSource("x", image, None, None)
        keys = {ref.key for im in source.images() for ref in im.layers}
        cpu = {False: 0.0, True: 0.0}
        members = 0
        for key in sorted(keys):
            loc = source.locate(key)
            if loc is None:
                continue
            with open(loc.path, "rb") as f:
                f.seek(loc.offset)
                if f.read(2) == b"\x1f\x8b":
                    continue
            slow = read(loc.path, loc.offset, False)
            fast = read(loc.path, loc.offset, True)
            for way in (False, True, False, True):  # timed without the digest, alternating
                cpu[way] += read(loc.path, loc.offset, way, check=False)[2] / 2
            members += len(slow[0])
            if slow[:2] != fast[:2]:
                bad += 1
                print(f"DIFFERENT: {image} layer {key}", file=sys.stderr)
        print(f"{image}: {len(keys)} layers, {members} members, same: {not bad}; "
              f"cpu tarfile {cpu[False]:.2f} s, from the file {cpu[True]:.2f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
