"""Write the seed corpus of tests/fuzz/corpus/ (small, well-formed inputs for each target).

    python tests/fuzz/make_corpus.py        # rewrites tests/fuzz/corpus/*/seed-*

The seeds are committed so that a fuzzing run starts from valid shapes; libFuzzer adds what it
finds to a copy (test_atheris.py runs on a temporary copy, the repository's corpus stays small).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import sys
import tarfile
import zipfile
from pathlib import Path

import zstandard

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "fixtures"))
import hostile  # noqa: E402


def _tar(fmt: int, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def seeds() -> dict[str, dict[str, bytes]]:
    small = {"etc/app.conf": b"token = tkn_Q7wE9rT2yU4iO6pA8sD1\n", "a/.wh.b": b""}
    ustar = _tar(tarfile.USTAR_FORMAT, small)
    paxtar = _tar(tarfile.PAX_FORMAT, {"d/" + "n" * 120: b"x", "e": b"y" * 600})
    gnutar = _tar(tarfile.GNU_FORMAT, {"d/" + "l" * 120: b"x"})
    sparse = hostile.tar(
        hostile.pax([("GNU.sparse.map", "0,5"), ("GNU.sparse.realsize", "100")]),
        hostile.member("s", b"hello"),
    )
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("app.properties", "password=hunter2hunter2\n")
    config = json.dumps(hostile.config_for(["sha256:" + "0" * 64])).encode()
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["a:b"], "Layers": ["l/layer.tar"]}]).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [{"mediaType": hostile.OCI_MANIFEST, "digest": "sha256:" + "1" * 64}],
        }
    ).encode()
    oci_manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": {"digest": "sha256:" + "2" * 64},
            "layers": [{"digest": "sha256:" + "3" * 64}],
        }
    ).encode()
    pyc = b"\xa7\x0d\x0d\x0a" + bytes(12) + b"\xe3" + bytes(16) + b"\xda\x10tkn_Q7wE9rT2yU4iO6"
    return {
        "layout": {
            "docker": b"\0\0".join([manifest, b"", b"", config]),
            "oci": b"\0\0".join([b"", index, oci_manifest, config]),
        },
        "layer_walk": {
            "ustar": ustar,
            "pax": paxtar,
            "gnu": gnutar,
            "sparse": sparse,
            "gzip": gzip.compress(ustar, mtime=0),
            "zstd": zstandard.ZstdCompressor().compress(ustar),
        },
        "tar_index": {"ustar": ustar, "pax": paxtar, "gnu": gnutar},
        "nested": {
            "zip": zbuf.getvalue(),
            "tgz": gzip.compress(ustar, mtime=0),
            "bz2": bz2.compress(b"k=v\n" * 9),
            "xz": lzma.compress(b"k=v\n"),
            "tar": ustar,
        },
        "decoders": {
            "b64": b"data:\n  token: dGtuX1E3d0U5clQyeVU0aU82cEE4c0Qx\n",
            "utf16": b"\xff\xfe" + "token = tkn_Q7wE9rT2yU4iO6pA8sD1".encode("utf-16-le"),
            "pyc": pyc,
        },
    }


def main() -> None:
    for target, files in seeds().items():
        folder = HERE / "corpus" / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / f"seed-{name}").write_bytes(data)


if __name__ == "__main__":
    main()
