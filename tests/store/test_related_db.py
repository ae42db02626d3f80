"""Fleet-wide correlation: a private key recorded in one image's layer, and its certificate in
another image's layer, are related by ``ResultsDB.related`` and ``layerleak db related``. Keys
and certificates are made at test time by ``openssl``."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.detect.validity import spki_hex
from layerleak.findings.build import assemble
from layerleak.layers.walk import LayerScan, scan_layer
from layerleak.sources.interface import ImageDesc, LayerRef
from layerleak.store.results.db import ImageRecord, ResultsDB
from layerleak.store.sealed import seal

if shutil.which("openssl") is None:  # pragma: no cover - a documented test tool
    if os.environ.get("CI"):
        raise RuntimeError("openssl is required under CI")
    pytest.skip("=== openssl not installed: correlation tests cannot run ===", allow_module_level=True)

ENGINE = Engine(load_rules())
SCANNER = "test-scanner"


def run(*argv: str) -> bytes:
    return subprocess.run(argv, check=True, capture_output=True, timeout=120).stdout


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sealed(key: str, blob: bytes) -> LayerScan:
    scan = scan_layer(key, io.BytesIO(blob), ENGINE)
    scan.hits = [dataclasses.replace(h, match=seal(h.match)) for h in scan.hits]  # type: ignore[arg-type]
    return scan


def _image(name: str, hexes: list[str]) -> ImageDesc:
    layers = tuple(
        LayerRef(i, f"blobs/sha256/{k}", f"sha256:{k}", None, None, None) for i, k in enumerate(hexes)
    )
    history = [{"created_by": f"step {i}"} for i in range(len(hexes))]
    return ImageDesc(name, f"sha256:{hashlib.sha256(name.encode()).hexdigest()}", "linux/amd64",
                     {"history": history}, layers)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("pair")
    key, cert, other = d / "k.pem", d / "c.pem", d / "o.pem"
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    run("openssl", "req", "-x509", "-key", str(key), "-subj", "/CN=api.internal.test", "-days", "2",
        "-out", str(cert))
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(d / "ok.pem"), "-subj", "/CN=other.internal.test", "-days", "2", "-out", str(other))
    spki = hashlib.sha256(run("openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER")).hexdigest()
    return {"key": key.read_bytes(), "cert": cert.read_bytes(), "other": other.read_bytes(),
            "spki": spki.encode()}


def _as_older_record(scan: LayerScan) -> LayerScan:
    """The scan as a results database of an earlier version holds it: key ids in 64 hex."""
    scan.hits = [dataclasses.replace(h, key_id=spki_hex(h.key_id) if h.key_id else None) for h in scan.hits]
    scan.public_keys = {spki_hex(k): v for k, v in scan.public_keys.items()}
    return scan


@pytest.mark.parametrize("older", [False, True], ids=["this-version", "older-records"])
def test_a_key_in_one_image_and_its_certificate_in_another(
    tmp_path: Path, pair: dict[str, bytes], older: bool
) -> None:
    url = str(tmp_path / "results.sqlite3")
    scans = {
        "aa": _sealed("blobs/sha256/aa", _layer({"srv/tls.key": pair["key"]})),
        "bb": _sealed("blobs/sha256/bb", _layer({"etc/ssl/certs/api.crt": pair["cert"],
                                                 "etc/ssl/certs/other.crt": pair["other"]})),
    }
    if older:
        scans = {k: _as_older_record(v) for k, v in scans.items()}
        assert scans["aa"].hits[0].key_id == pair["spki"].decode()
    with ResultsDB(url) as db:
        assert db.related() == []  # nothing recorded yet
        for hexpart, scan in scans.items():
            db.record_layer(f"blob:sha256:{hexpart}", ENGINE.ruleset, SCANNER, 10, scan)
        for name, hexes in (("reg/app:1", ["aa"]), ("reg/proxy:1", ["bb"])):
            image = _image(name, hexes)
            found = {f"blobs/sha256/{h}": scans[h] for h in hexes}
            result = assemble(name, image, found, ENGINE, show_secrets=False)
            keys = [f"blob:sha256:{h}" for h in hexes]
            db.record_image(ImageRecord(name), result, ENGINE.ruleset, SCANNER, keys)
        [relation] = db.related()
    assert relation["spki_sha256"] == pair["spki"].decode()
    digest = bytes.fromhex(pair["spki"].decode())
    assert relation["fingerprint"] == "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    [key] = relation["private_keys"]
    assert key["path"] == "/srv/tls.key" and [i["image"] for i in key["in"]] == ["reg/app:1"]
    [cert] = relation["public_halves"]
    assert (cert["path"], cert["kind"], cert["detail"]) == ("/etc/ssl/certs/api.crt", "certificate",
                                                            "CN=api.internal.test")
    assert [(i["image"], i["layer_index"]) for i in cert["in"]] == [("reg/proxy:1", 0)]

    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    cli = [sys.executable, "-m", "layerleak", "db", "related", "--db", url]
    done = subprocess.run([*cli, "--format", "json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["related"] == [relation]
    table = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=120)
    assert "reg/proxy:1" in table.stdout and "certificate" in table.stdout and "private key" in table.stdout
    assert pair["key"].decode().splitlines()[1] not in table.stdout + done.stdout  # never key material
