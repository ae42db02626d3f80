"""Private keys in binary containers, made at test time by real ``openssl`` and ``keytool``, put in a
layer under names that say nothing (content decides), next to decoys that hold no private key."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.entries import keystores
from layerleak.layers.walk import LayerScan, scan_layer

MISSING = [tool for tool in ("openssl", "keytool") if shutil.which(tool) is None]
if MISSING:  # pragma: no cover - both are documented test tools
    if os.environ.get("CI"):
        raise RuntimeError(f"{MISSING} required under CI")
    pytest.skip(f"=== {MISSING} not installed: key container tests cannot run ===", allow_module_level=True)


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every container kind, fresh keys: name -> file bytes."""
    d = tmp_path_factory.mktemp("keys")

    def p(name: str) -> str:
        return str(d / name)

    rsa = p("rsa.pem")

    ssl = "openssl"
    run(ssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa)
    run(ssl, "req", "-x509", "-key", rsa, "-subj", "/CN=test", "-days", "2", "-out", p("cert.pem"))
    run(ssl, "rsa", "-in", rsa, "-traditional", "-outform", "DER", "-out", p("pkcs1"))
    run(ssl, "pkcs8", "-topk8", "-nocrypt", "-in", rsa, "-outform", "DER", "-out", p("pkcs8"))
    run(ssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-outform", "DER", "-out", p("sec1"))
    run(ssl, "genpkey", "-algorithm", "ed25519", "-outform", "DER", "-out", p("ed25519"))
    run(ssl, "pkey", "-in", rsa, "-pubout", "-outform", "DER", "-out", p("public"))
    run(ssl, "rsa", "-in", rsa, "-RSAPublicKey_out", "-outform", "DER", "-out", p("rsa-public"))
    run(ssl, "x509", "-in", p("cert.pem"), "-outform", "DER", "-out", p("cert"))
    run(ssl, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:changeit", "-in", rsa,
        "-outform", "DER", "-out", p("pkcs8-encrypted"))
    run(ssl, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:Zq8-strong", "-in", rsa,
        "-outform", "DER", "-out", p("pkcs8-strong"))
    p12s = (("p12-empty", ""), ("p12-changeit", "changeit"), ("p12-strong", "Zq8-not-a-default"))
    for name, password in p12s:
        run(ssl, "pkcs12", "-export", "-inkey", rsa, "-in", p("cert.pem"),
            "-passout", f"pass:{password}", "-out", p(name))
    run(ssl, "pkcs12", "-export", "-nokeys", "-in", p("cert.pem"), "-passout", "pass:changeit",
        "-out", p("p12-certs"))
    keytool = ["keytool", "-noprompt", "-dname", "CN=test", "-validity", "2"]
    run(*keytool, "-genkeypair", "-keystore", p("jks"), "-storetype", "JKS", "-storepass", "changeit",
        "-keypass", "changeit", "-alias", "server", "-keyalg", "RSA", "-keysize", "2048")
    run(*keytool, "-genkeypair", "-keystore", p("jceks"), "-storetype", "JCEKS", "-storepass", "changeme",
        "-keypass", "changeme", "-alias", "app", "-keyalg", "EC")
    run(*keytool, "-genkeypair", "-keystore", p("jks-strong"), "-storetype", "JKS",
        "-storepass", "Zq8-strong", "-keypass", "Zq8-strong", "-alias", "server", "-keyalg", "RSA",
        "-keysize", "2048")
    run("keytool", "-noprompt", "-importcert", "-keystore", p("jks-trust"), "-storetype", "JKS",
        "-storepass", "changeit", "-alias", "ca", "-file", p("cert"))
    return {f.name: f.read_bytes() for f in d.iterdir()}


FOUND = {
    "pkcs1": "[der:pkcs1]",
    "pkcs8": "[der:pkcs8]",
    "sec1": "[der:sec1]",
    "ed25519": "[der:pkcs8]",
    "p12-empty": '[pkcs12 password=""]',
    "p12-changeit": '[pkcs12 password="changeit"]',
    "jks": "[jks alias=server password=changeit]",
    "jceks": "[jceks alias=app password=changeme]",
    "pkcs8-encrypted": "[der:pkcs8-encrypted password=changeit]",
}
DECOYS = ["public", "rsa-public", "cert", "cert.pem", "p12-certs", "jks-trust", "p12-strong", "jks-strong",
          "pkcs8-strong"]


@pytest.fixture(scope="module")
def layer(made: dict[str, bytes]) -> LayerScan:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in made.items():
            if name.endswith(".pem") and name != "cert.pem":
                continue  # the PEM key itself is the usual rule's business
            info = tarfile.TarInfo(f"srv/data/{name}.bin")  # names say nothing
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        jar = io.BytesIO()
        with zipfile.ZipFile(jar, "w") as z:
            z.writestr("META-INF/app.key", made["pkcs8"])
        info = tarfile.TarInfo("app/lib/app.jar")
        info.size = len(jar.getvalue())
        tar.addfile(info, io.BytesIO(jar.getvalue()))
    return scan_layer("layer", io.BytesIO(buf.getvalue()), Engine(load_rules()))


@pytest.mark.parametrize("name", sorted(FOUND))
def test_private_key_found(name: str, layer: LayerScan) -> None:
    hits = [h for h in layer.hits if h.path == f"/srv/data/{name}.bin"]
    assert [(h.inner_path, h.match.rule_id) for h in hits] == [(FOUND[name], "private-key")]
    secret = getattr(hits[0].match, "secret", "")
    assert load_pem_private_key(secret.encode(), None) is not None  # the key itself, as PEM
    judged = hits[0].match.validity
    assert judged is not None and judged.format == "parsed"  # offline validity, as for a PEM key


@pytest.mark.parametrize("name", DECOYS)
def test_decoy_gives_nothing(name: str, layer: LayerScan) -> None:
    assert [h for h in layer.hits if h.path == f"/srv/data/{name}.bin"] == []


def test_der_key_inside_a_jar(layer: LayerScan) -> None:
    [hit] = [h for h in layer.hits if h.path == "/app/lib/app.jar"]
    assert hit.inner_path == "META-INF/app.key!/[der:pkcs8]"


def test_same_key_same_secret_whatever_the_container(layer: LayerScan) -> None:
    """PKCS#1, PKCS#8 and both PKCS#12 files hold one RSA key: one PEM, so one fingerprint."""
    same = ("pkcs1.bin", "pkcs8.bin", "p12-empty.bin", "p12-changeit.bin")
    secrets = {getattr(h.match, "secret", "") for h in layer.hits if h.path.rsplit("/", 1)[-1] in same}
    assert len(secrets) == 1


def test_truncated_and_trailing_der_are_not_keys(made: dict[str, bytes]) -> None:
    assert list(keystores.scan(made["pkcs8"][:-10])) == []
    assert list(keystores.scan(made["pkcs8"] + b"junk")) == []
    assert list(keystores.scan(b"\x30\x03\x02\x01\x00")) == []


def test_iteration_counts_are_read_before_any_derivation(made: dict[str, bytes]) -> None:
    """PKCS#12 MAC and bag parameters, and a JCEKS key's PBE parameters, give their iteration
    counts without a password; a crafted count past the bound is never run."""
    assert keystores.max_iterations(made["p12-changeit"]) == 2048  # openssl's default
    assert keystores.max_iterations(made["pkcs8-encrypted"]) == 2048
    assert 0 < keystores.max_iterations(made["p12-empty"]) <= keystores.MAX_ITERATIONS


def test_pkcs12_with_a_crafted_iteration_count_is_not_opened(tmp_path: Path) -> None:
    key, cert, slow = tmp_path / "k.pem", tmp_path / "c.pem", tmp_path / "slow.p12"
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    run("openssl", "req", "-x509", "-key", str(key), "-subj", "/CN=test", "-days", "2", "-out", str(cert))
    run("openssl", "pkcs12", "-export", "-inkey", str(key), "-in", str(cert), "-passout", "pass:changeit",
        "-iter", str(keystores.MAX_ITERATIONS + 1), "-maciter", "-out", str(slow))
    data = slow.read_bytes()
    assert keystores.max_iterations(data) == keystores.MAX_ITERATIONS + 1
    assert list(keystores.scan(data)) == [] and keystores.certificates(data) == []
