"""Correlation: a leaked private key is related to its certificates, ``authorized_keys`` lines and
public keys in the same image. Keys and certificates are made at test time by ``openssl`` and
``ssh-keygen``; the image is a hand-made docker-archive scanned through the CLI."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import handmade
import pytest

from layerleak.entries import pubkeys

if TYPE_CHECKING:
    from conftest import Layerleak

MISSING = [tool for tool in ("openssl", "ssh-keygen", "keytool") if shutil.which(tool) is None]
if MISSING:  # pragma: no cover - both are documented test tools
    if os.environ.get("CI"):
        raise RuntimeError(f"{MISSING} required under CI")
    pytest.skip(f"=== {MISSING} not installed: correlation tests cannot run ===", allow_module_level=True)


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=120)


def spki_of(pem_path: Path) -> str:
    done = subprocess.run(["openssl", "pkey", "-in", str(pem_path), "-pubout", "-outform", "DER"],
                          check=True, capture_output=True, timeout=60)
    return "SHA256:" + base64.b64encode(hashlib.sha256(done.stdout).digest()).decode().rstrip("=")


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("corr")
    server, other = d / "server.key", d / "other.key"
    for key in (server, other):
        run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key))
    for key, cn in ((server, "api.internal.test"), (other, "other.internal.test")):
        run("openssl", "req", "-x509", "-key", str(key), "-subj", f"/CN={cn}", "-days", "2",
            "-out", str(key.with_suffix(".crt")))
    cert = str(server.with_suffix(".crt"))
    run("openssl", "x509", "-in", cert, "-outform", "DER", "-out", str(d / "server.der"))
    run("openssl", "pkcs12", "-export", "-inkey", str(server), "-in", str(server.with_suffix(".crt")),
        "-passout", "pass:", "-out", str(d / "server.p12"))
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploy@ci", "-f", str(d / "id_ed25519"))
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "someone@else", "-f", str(d / "unrelated"))
    return {
        "files": {name: (d / name).read_bytes() for name in (
            "server.key", "server.crt", "other.crt", "server.der", "server.p12", "id_ed25519",
            "id_ed25519.pub", "unrelated.pub")},
        "server_spki": spki_of(server),
    }


def test_fingerprints_agree_with_openssl(material: dict[str, Any]) -> None:
    files = material["files"]
    key_id = pubkeys.private_key_id(files["server.key"].decode())
    assert key_id == material["server_spki"]
    [(fp, kind, subject)] = pubkeys.public_keys("/etc/ssl/certs/server.crt", files["server.crt"])
    assert (fp, kind, subject) == (key_id, "certificate", "CN=api.internal.test")
    [(fp_der, _, _)] = pubkeys.public_keys("/srv/cert.bin", files["server.der"])
    assert fp_der == key_id
    ssh_id = pubkeys.private_key_id(files["id_ed25519"].decode())
    [(fp_ssh, kind_ssh, comment)] = pubkeys.public_keys("/root/.ssh/authorized_keys",
                                                        b"# keys\n" + files["id_ed25519.pub"])
    assert (fp_ssh, kind_ssh, comment) == (ssh_id, "ssh-public-key", "deploy@ci")
    assert pubkeys.public_keys("/srv/notes.txt", files["id_ed25519.pub"]) == []  # not an authorized_keys


def test_cli_reports_related(tmp_path: Path, layerleak: Layerleak, material: dict[str, Any]) -> None:
    files = material["files"]
    authorized = b"command=\"/bin/true\" " + files["unrelated.pub"] + files["id_ed25519.pub"]
    layer0 = handmade.layer_tar([
        handmade.directory("etc"), handmade.directory("etc/ssl"), handmade.directory("etc/ssl/certs"),
        handmade.file("etc/ssl/certs/server.crt", files["server.crt"]),
        handmade.file("etc/ssl/certs/other.crt", files["other.crt"]),
        handmade.directory("root"), handmade.directory("root/.ssh"),
        handmade.file("root/.ssh/authorized_keys", authorized),
    ])
    layer1 = handmade.layer_tar([
        handmade.directory("srv"),
        handmade.file("srv/tls.key", files["server.key"]),
        handmade.file("srv/cert.bin", files["server.der"]),
        handmade.file("srv/bundle.p12", files["server.p12"]),
        handmade.file("srv/deploy_key", files["id_ed25519"]),
    ])
    history = [{"created_by": "COPY certs /"}, {"created_by": "COPY srv /srv"}]
    layers = [layer0, layer1]
    image = handmade.LegacyImage(["corr:1"], layers, handmade.image_config(layers, history))
    archive = tmp_path / "corr.tar"
    handmade.write_docker_archive(archive, [image])
    run_ = layerleak("scan", f"docker-archive:{archive}", "--format", "json", "--no-progress", "--no-cache")
    assert run_.returncode == 1, run_.describe()
    findings = run_.report["findings"]
    by_path = {(f["path"], f["inner_path"]): f for f in findings if f["rule_id"] == "private-key"}
    server_places = {("certificate", 0, "/etc/ssl/certs/server.crt", "CN=api.internal.test"),
                     ("certificate", 1, "/srv/cert.bin", "CN=api.internal.test"),
                     ("keystore-certificate", 1, "/srv/bundle.p12", "CN=api.internal.test")}
    for where in (("/srv/tls.key", None), ("/srv/bundle.p12", '[pkcs12 password=""]')):
        related = by_path[where]["related"]
        assert {(r["kind"], r["layer_index"], r["path"], r["detail"]) for r in related} == server_places
        assert {r["fingerprint"] for r in related} == {material["server_spki"]}
        # one fingerprint everywhere: the key's own validity names it the same way
        assert by_path[where]["validity"]["detail"]["fingerprint"] == material["server_spki"]
        digest = base64.b64decode(material["server_spki"][7:] + "=")
        assert {r["spki_sha256"] for r in related} == {digest.hex()}  # the same digest, in hex
    ssh = by_path[("/srv/deploy_key", None)]["related"]
    assert [(r["kind"], r["path"], r["detail"]) for r in ssh] == [
        ("ssh-public-key", "/root/.ssh/authorized_keys", "deploy@ci")
    ]
    assert all(f["related"] == [] for f in run_.report["findings"] if f["rule_id"] != "private-key")
    # the layer cache keeps both halves: a cold and a warm run relate the same places
    cold = layerleak("scan", f"docker-archive:{archive}", "--format", "json", "--no-progress")
    warm = layerleak("scan", "--no-progress", f"docker-archive:{archive}", "--format", "json")
    assert cold.report["findings"] == warm.report["findings"] == findings


def _der(tag: int, body: bytes) -> bytes:
    assert len(body) < 128
    return bytes([tag, len(body)]) + body


def test_a_private_key_of_an_algorithm_cryptography_does_not_know_has_no_id() -> None:
    """A GOST R 34.10-2012 key (as GnuTLS' test data ships inside Debian images) raised
    UnsupportedAlgorithm out of the layer walk: it is a key we cannot fingerprint, nothing more."""
    import base64
    import os

    from layerleak.detect.examples import armor
    from layerleak.entries.pubkeys import private_key_id

    gost_oid = _der(0x06, bytes([0x2A, 0x85, 0x03, 0x07, 0x01, 0x01, 0x01, 0x02]))  # 1.2.643.7.1.1.1.2
    info = _der(0x30, _der(0x02, b"\x00") + _der(0x30, gost_oid) + _der(0x04, _der(0x04, os.urandom(32))))
    body = base64.encodebytes(info).decode()
    pem = f"{armor('BEGIN', 'PRIVATE KEY')}\n{body}{armor('END', 'PRIVATE KEY')}\n"
    assert private_key_id(pem) is None

    # The layer walk reports it (PEM and DER) and goes on to the next file.
    import io
    import tarfile

    from layerleak.detect.engine import Engine
    from layerleak.detect.rules import load_rules
    from layerleak.layers.walk import scan_layer

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("etc/gost.pem", pem.encode()), ("etc/gost.der", info), ("z.txt", b"after")):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    scan = scan_layer("layer", io.BytesIO(buf.getvalue()), Engine(load_rules()))
    assert scan.error is None
    assert "/etc/gost.pem" in {h.path for h in scan.hits}
    assert scan.files_scanned == 3


def test_certificates_with_a_negative_serial_number_print_no_warning(
    tmp_path: Path, layerleak: Layerleak
) -> None:
    """Debian's Java trust store holds a CA certificate with a negative serial number, which
    cryptography loads with a deprecation warning: a scan's stderr must not carry Python warnings
    (a file and line of our source, the library's text), in any container the certificate is in."""
    d = tmp_path / "neg"
    d.mkdir()
    key, pem = str(d / "k.pem"), str(d / "c.pem")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-subj", "/CN=negative",
        "-days", "2", "-set_serial", "-5", "-out", pem)
    run("openssl", "x509", "-in", pem, "-outform", "DER", "-out", str(d / "c.der"))
    run("openssl", "pkcs12", "-export", "-inkey", key, "-in", pem, "-passout", "pass:changeit",
        "-out", str(d / "c.p12"))
    run("keytool", "-importcert", "-noprompt", "-alias", "neg", "-file", pem, "-keystore", str(d / "c.jks"),
        "-storetype", "jks", "-storepass", "changeit")
    names = {"ca.pem": "c.pem", "ca.der": "c.der", "ca.p12": "c.p12", "cacerts": "c.jks"}
    files = [handmade.file(f"certs/{n}", (d / f).read_bytes()) for n, f in names.items()]
    layer = handmade.layer_tar([handmade.directory("certs"), *files])
    image = handmade.LegacyImage(["neg:1"], [layer], handmade.image_config([layer], [{"created_by": "COPY"}]))
    archive = tmp_path / "neg.tar"
    handmade.write_docker_archive(archive, [image])
    for jobs in ("1", "2"):
        done = layerleak("scan", f"docker-archive:{archive}", "--format", "json", "--no-progress",
                         "--no-cache", "-j", jobs, "--min-confidence", "low")
        assert done.returncode == 1, done.describe()  # the PKCS#12 file's private key
        assert "Warning" not in done.stderr and "keystores.py" not in done.stderr, done.stderr
        assert any(f["path"] == "/certs/ca.p12" for f in done.report["findings"])
