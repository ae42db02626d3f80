"""Known-public private keys (badkeys): real keys made here that badkeys' offline checks flag (an RSA
key whose primes are close together, Fermat) or that a blocklist names (one written at test time in
badkeys' own format), in PEM, OpenSSH, DER and PKCS#12; a fresh key is not flagged; a layer scan
says when the blocklist is not installed."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import handmade
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from layerleak.detect import knownkeys, validity
from layerleak.entries import keystores
from layerleak.models import Confidence, Match

_SMALL_PRIMES = [p for p in range(3, 400) if all(p % q for q in range(2, int(p**0.5) + 1))]


def _is_prime(n: int) -> bool:
    """Miller-Rabin with 40 random bases."""
    if n < 2 or any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(40):
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _next_prime(n: int) -> int:
    n |= 1
    while not _is_prime(n):
        n += 2
    return n


def _rsa_from_primes(p: int, q: int, e: int = 65537) -> rsa.RSAPrivateKey:
    d = pow(e, -1, (p - 1) * (q - 1))
    public = rsa.RSAPublicNumbers(e, p * q)
    return rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                 rsa.rsa_crt_iqmp(p, q), public).private_key()


def fermat_key() -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key whose two primes are neighbours: Fermat factors its modulus at once."""
    while True:
        p = _next_prime(secrets.randbits(1024) | (1 << 1023) | (1 << 1022))
        q = _next_prime(p + 2)
        if (p - 1) % 65537 and (q - 1) % 65537:
            return _rsa_from_primes(p, q)


def _pem(key: rsa.RSAPrivateKey, fmt: serialization.PrivateFormat) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def test_close_primes_are_recognised_by_fermat_and_kept() -> None:
    key = fermat_key()
    for fmt in (serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8,
                serialization.PrivateFormat.OpenSSH):
        v = validity.private_key(_pem(key, fmt))
        assert v is not None and v.format == "parsed"
        detail = dict(v.detail)
        assert detail["badkeys"] == "fermat" and detail["type"] == "rsa" and detail["bits"] == 2048
        assert detail["fingerprint"] == validity.key_fingerprint(key.public_key())
        judged = validity.judged(Match("private-key", _pem(key, fmt), 0, 1, Confidence.HIGH))
        # leaked and weak: a real key to replace, not a published one, so it is not demoted
        assert (judged.confidence, judged.reason) == (Confidence.HIGH, None)


def test_a_fresh_key_is_not_recognised() -> None:
    key = rsa.generate_private_key(65537, 2048)
    assert knownkeys.recognised(key.public_key()) is None
    judged = validity.judged(Match("private-key", _pem(key, serialization.PrivateFormat.PKCS8), 0, 1))
    assert judged.confidence is Confidence.HIGH and judged.reason is None
    assert judged.validity is not None and "badkeys" not in dict(judged.validity.detail)


def test_binary_containers_are_checked_too() -> None:
    key = fermat_key()
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    p12 = pkcs12.serialize_key_and_certificates(b"app", key, None, None, serialization.NoEncryption())
    for data, marker in ((der, "[der:pkcs8]"), (p12, '[pkcs12 password=""]')):
        [(inner, match)] = list(keystores.scan(data))
        assert inner == marker
        assert match.confidence is not Confidence.LOW and match.reason != "known-public-key"
        assert match.validity is not None and dict(match.validity.detail)["badkeys"] == "fermat"


@pytest.mark.skipif(shutil.which("keytool") is None and not os.environ.get("CI"), reason="=== no keytool ===")
def test_a_java_keystore_made_by_keytool_is_checked_too(tmp_path: Path) -> None:
    key = fermat_key()
    p12 = pkcs12.serialize_key_and_certificates(
        b"server", key, _self_signed(key), None, serialization.BestAvailableEncryption(b"changeit"))
    (tmp_path / "in.p12").write_bytes(p12)
    subprocess.run(["keytool", "-importkeystore", "-noprompt", "-srckeystore", str(tmp_path / "in.p12"),
                    "-srcstoretype", "PKCS12", "-srcstorepass", "changeit", "-destkeystore",
                    str(tmp_path / "out.jks"), "-deststoretype", "JKS", "-deststorepass", "changeit"],
                   check=True, capture_output=True, timeout=120)
    [(inner, match)] = list(keystores.scan((tmp_path / "out.jks").read_bytes()))
    assert inner == "[jks alias=server password=changeit]"
    assert match.validity is not None and dict(match.validity.detail)["badkeys"] == "fermat"
    assert match.confidence is not Confidence.LOW


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak.test")])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=2)).sign(key, hashes.SHA256()))


def write_blocklist(folder: Path, key: rsa.RSAPrivateKey, name: str) -> None:
    """badkeys' cache files as ``badkeys --update-bl`` leaves them: list names in badkeysdata.json;
    blocklist.dat of sorted 16-byte records, the first 15 bytes of the SHA-256 of the key's value
    (an RSA modulus, big-endian) and the list's id."""
    folder.mkdir(parents=True)
    meta = {"bkformat": 0, "blocklists": [{"id": 7, "name": name}]}
    (folder / "badkeysdata.json").write_text(json.dumps(meta))
    n = key.public_key().public_numbers().n
    record = hashlib.sha256(n.to_bytes((n.bit_length() + 7) // 8, "big")).digest()[:15] + bytes([7])
    (folder / "blocklist.dat").write_bytes(record)


def _key_image(path: Path, pem: str) -> Path:
    layer = handmade.layer_tar([handmade.directory("srv"), handmade.file("srv/tls.key", pem)])
    config = handmade.image_config([layer], [{"created_by": "COPY tls.key /srv/tls.key"}])
    handmade.write_docker_archive(path, [handmade.LegacyImage(["keys:1"], [layer], config)])
    return path


def _scan(image: Path, cache_home: Path, tmp_path: Path) -> tuple[dict[str, object], str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), "LAYERLEAK_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "layerleak", "scan", f"docker-archive:{image}", "--format", "json",
         "--no-progress", "--min-confidence", "low"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    doc: dict[str, object] = json.loads(done.stdout)
    return doc, done.stderr


def _issues(doc: dict[str, object]) -> list[tuple[str, str]]:
    return [(e["level"], e["message"]) for t in doc["targets"] for e in t["errors"]]  # type: ignore[attr-defined, index]


def test_a_key_on_the_blocklist_is_named_by_its_list(tmp_path: Path) -> None:
    published, fresh = rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 2048)
    write_blocklist(tmp_path / "home" / "badkeys", published, "vendor-test-keys")
    image = _key_image(tmp_path / "keys.tar", _pem(published, serialization.PrivateFormat.PKCS8)
                       + "\n" + _pem(fresh, serialization.PrivateFormat.TraditionalOpenSSL))
    doc, _ = _scan(image, tmp_path / "home", tmp_path)
    by_type = {f["validity"]["detail"]["fingerprint"]: f for f in doc["findings"]}  # type: ignore[attr-defined, index]
    known = by_type[validity.key_fingerprint(published.public_key())]
    assert known["validity"]["detail"]["badkeys"] == "blocklist:vendor-test-keys"
    assert (known["confidence"], known["reason"]) == ("low", "known-public-key")
    other = by_type[validity.key_fingerprint(fresh.public_key())]
    assert other["confidence"] != "low" and "badkeys" not in other["validity"]["detail"]
    assert ("warning", knownkeys.MISSING) not in _issues(doc)


def test_without_the_blocklist_the_scan_says_so_once(tmp_path: Path) -> None:
    keys = [rsa.generate_private_key(65537, 2048) for _ in range(2)]
    text = "\n".join(_pem(k, serialization.PrivateFormat.PKCS8) for k in keys)
    image = _key_image(tmp_path / "keys.tar", text)
    doc, stderr = _scan(image, tmp_path / "empty-home", tmp_path)
    assert len(doc["findings"]) == 2  # type: ignore[arg-type]
    assert _issues(doc).count(("warning", knownkeys.MISSING)) == 1  # a warning, not an error
    assert "blocklist" not in stderr  # a notice of the report: stderr stays for the image's problems
    assert all(f["confidence"] != "low" for f in doc["findings"])  # type: ignore[attr-defined]
