"""Offline validity: each validator on values made here (with real keys from cryptography and
ssh-keygen), the confidence each verdict gives, and the engine and cache keeping it."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import string
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from layerleak.detect import validity
from layerleak.detect.engine import Engine
from layerleak.detect.examples import armor
from layerleak.detect.rules import load_rules
from layerleak.layers.walk import FileHit
from layerleak.models import Confidence, Match, Validity
from layerleak.store.codec import file_hit, hit_row

ENGINE = Engine(load_rules(()))
ALNUM = string.ascii_letters + string.digits
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _in_base(number: int, digits: str, width: int) -> str:
    out = ""
    while number:
        number, rest = divmod(number, len(digits))
        out = digits[rest] + out
    return out.rjust(width, "0")


def github_token(prefix: str = "ghp_") -> str:
    body = _rand(30)
    return prefix + body + _in_base(zlib.crc32(body.encode()), B62, 6)


def _tampered(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


def grafana_token() -> str:
    head = "glsa_" + _rand(32)
    return head + "_" + zlib.crc32(head.encode()).to_bytes(4, "little").hex()


B64URL = ALNUM + "-_"


def atlassian_token(length: int = 180) -> str:
    """``ATATT3`` + base64url + ``=`` + the CRC32 of all that, 8 upper-case hex digits."""
    head = "ATATT3" + _rand(length, B64URL) + "="
    return head + f"{zlib.crc32(head.encode()):08X}"


def gitlab_routable(prefix: str = "glpat-", versioned: bool = True) -> str:
    routing = b"c:1\no:2s\nu:1bq"
    raw = routing + secrets.token_bytes(16) + bytes([16])
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    head = f"{prefix}{payload}." + ("01." if versioned else "") + _in_base(len(payload), B36, 2)
    return head + _in_base(zlib.crc32(head.encode()), B36, 7)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(claims: dict[str, object], header: dict[str, object] | None = None) -> str:
    head = _b64url(json.dumps(header or {"alg": "RS256", "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64url(secrets.token_bytes(32))}"


def aws_key_id(account: int, prefix: str = "AKIA") -> str:
    first = (account << 7 | secrets.randbelow(128)).to_bytes(6, "big")
    return prefix + base64.b32encode(first + secrets.token_bytes(4)).decode()


def _field(kind: int, data: bytes) -> bytes:
    assert len(data) < 128
    return bytes([kind, len(data)]) + data


def pypi_token(caveats: list[str]) -> str:
    ident = json.dumps({"version": 1, "id": "made-in-a-test"}).encode()
    raw = b"\x02" + _field(1, b"pypi.org") + _field(2, ident) + b"\x00"
    for caveat in caveats:
        raw += _field(2, caveat.encode()) + b"\x00"
    raw += b"\x00" + _field(6, secrets.token_bytes(32))
    return "pypi-" + _b64url(raw)


# --- checksums --------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "npm_"])
def test_github_and_npm_checksums(prefix: str) -> None:
    token = github_token(prefix)
    assert validity.github_crc32(token) == Validity("checksum-ok", (("scheme", "crc32-base62"),))
    bad = validity.github_crc32(_tampered(token))
    assert bad is not None and bad.format == "checksum-bad"


def test_github_checksum_does_not_apply_to_other_shapes() -> None:
    assert validity.github_crc32("ghr_" + _rand(76)) is None  # a long refresh token
    assert validity.github_crc32("ghp_" + _rand(20)) is None


def test_grafana_checksum() -> None:
    token = grafana_token()
    ok = validity.grafana_crc32(token)
    assert ok is not None and ok.format == "checksum-ok"
    head, _, check = token.rpartition("_")
    wrong = head + "_" + ("0" * 8 if check != "0" * 8 else "1" * 8)
    bad = validity.grafana_crc32(wrong)
    assert bad is not None and bad.format == "checksum-bad"


@pytest.mark.parametrize("length", [150, 180, 220])  # Atlassian: "a varied API token length"
def test_atlassian_checksum(length: int) -> None:
    token = atlassian_token(length)
    assert validity.atlassian_crc32(token) == Validity("checksum-ok", (("scheme", "crc32-hex"),))
    head, check = token[:-8], token[-8:]
    for wrong in (head + ("0" * 8 if check != "0" * 8 else "1" * 8), "ATATT3" + _rand(3) + token[9:]):
        bad = validity.atlassian_crc32(wrong)
        assert bad is not None and bad.format == "checksum-bad", wrong[-12:]
    lowered = head + "abcdef01"  # lower-case hex is not the format's ending: not judged
    assert validity.atlassian_crc32(lowered) is None
    assert validity.atlassian_crc32("ATCTT3" + token[6:]) is None  # Bitbucket access tokens: not judged


@pytest.mark.parametrize("versioned", [True, False])
def test_gitlab_routable_checksum_and_routing(versioned: bool) -> None:
    token = gitlab_routable(versioned=versioned)
    ok = validity.gitlab_routable(token)
    assert ok is not None and ok.format == "checksum-ok"
    detail = dict(ok.detail)
    assert detail["organization"] == str(int("2s", 36)) and detail["user"] == str(int("1bq", 36))
    assert detail.get("version") == (1 if versioned else None)
    bad = validity.gitlab_routable(token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert bad is not None and bad.format == "checksum-bad"
    assert validity.gitlab_routable("glpat-" + _rand(20)) is None  # legacy: nothing to check


# --- structures -------------------------------------------------------------------------------


def test_jwt_claims_and_expiry() -> None:
    future = jwt({"iss": "https://issuer.example", "aud": "api", "exp": int(time.time()) + 3600})
    v = validity.jwt_claims(future)
    assert v is not None and v.format == "parsed"
    detail = dict(v.detail)
    assert detail["alg"] == "RS256" and detail["iss"] == "https://issuer.example"
    assert detail["aud"] == "api" and detail["expired"] is False
    past = validity.jwt_claims(jwt({"exp": 1_000_000_000}))
    assert past is not None and past.format == "expired"
    assert dict(past.detail)["exp"] == "2001-09-09T01:46:40Z"
    no_exp = validity.jwt_claims(jwt({"sub": "x"}))
    assert no_exp is not None and no_exp.format == "parsed" and "exp" not in dict(no_exp.detail)


def test_jwt_detail_keeps_no_other_claim() -> None:
    token = jwt({"password": "hunter2-made-up", "iss": "me"})
    v = validity.jwt_claims(token)
    assert v is not None and "hunter2" not in json.dumps(v.as_dict())


def test_jwt_that_is_not_json_is_unparsed() -> None:
    v = validity.jwt_claims("eyJ" + _rand(20) + ".eyJ" + _rand(20) + "." + _rand(30))
    assert v is not None and v.format == "unparsed"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
         fmt: serialization.PrivateFormat) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")  # RFC 8410: the SPKI before the raw key


def _spki_fingerprint(pem: str, tmp_path: Path) -> str:
    """``SHA256:`` + base64 of the SHA-256 of the key's DER SubjectPublicKeyInfo, the DER made by
    openssl (or, for OpenSSH files, which openssl does not read, by ssh-keygen)."""
    path = tmp_path / "key"
    path.write_text(pem)
    path.chmod(0o600)

    def run(*args: str, data: bytes | None = None) -> bytes:
        return subprocess.run(args, check=True, capture_output=True, input=data).stdout

    if "OPENSSH" not in pem:
        der = run("openssl", "pkey", "-in", str(path), "-pubout", "-outform", "DER")
    elif run("ssh-keygen", "-y", "-f", str(path)).startswith(b"ssh-ed25519 "):
        blob = base64.b64decode(run("ssh-keygen", "-y", "-f", str(path)).split()[1])
        der = ED25519_SPKI_PREFIX + blob[-32:]  # ssh-keygen exports no Ed25519 SPKI
    else:
        spki = run("ssh-keygen", "-e", "-m", "PKCS8", "-f", str(path))
        der = run("openssl", "pkey", "-pubin", "-outform", "DER", data=spki)
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("make", "fmt", "kind", "bits"),
    [
        (lambda: rsa.generate_private_key(65537, 2048), serialization.PrivateFormat.TraditionalOpenSSL,
         "rsa", 2048),
        (lambda: rsa.generate_private_key(65537, 2048), serialization.PrivateFormat.PKCS8, "rsa", 2048),
        (lambda: ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.TraditionalOpenSSL,
         "ec-secp256r1", 256),
        (lambda: ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH, "ed25519", 256),
        (lambda: rsa.generate_private_key(65537, 2048), serialization.PrivateFormat.OpenSSH, "rsa", 2048),
    ],
)
def test_private_keys_parse_with_the_spki_fingerprint_openssl_gives(
    make: object, fmt: serialization.PrivateFormat, kind: str, bits: int, tmp_path: Path
) -> None:
    pem = _pem(make(), fmt)  # type: ignore[operator]
    v = validity.private_key(pem)
    assert v is not None and v.format == "parsed"
    detail = dict(v.detail)
    assert detail["type"] == kind and detail["bits"] == bits
    assert detail["fingerprint"] == _spki_fingerprint(pem, tmp_path)
    assert "badkeys" not in detail  # a fresh key is not a known public one


def test_private_key_escaped_and_indented_still_parses() -> None:
    pem = _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
    as_json = json.dumps(pem)[1:-1]  # "\n" escapes, as in a JSON file
    indented = "\n".join("    " + line for line in pem.splitlines())
    for text in (as_json, indented):
        v = validity.private_key(text)
        assert v is not None and v.format == "parsed", text[:40]


def test_encrypted_key_is_parsed_without_a_password() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"made-up-passphrase"),
    ).decode()
    v = validity.private_key(pem)
    assert v == Validity("parsed", (("encrypted", True),))


def test_random_body_is_unparsed() -> None:
    body = "\n".join(_rand(64, ALNUM + "+/") for _ in range(20))
    fake = f"{armor('BEGIN', 'RSA PRIVATE KEY')}\n{body}\n{armor('END', 'RSA PRIVATE KEY')}\n"
    v = validity.private_key(fake)
    assert v is not None and v.format == "unparsed"


def test_aws_account_id() -> None:
    v = validity.aws_account(aws_key_id(123456789012))
    assert v == Validity("parsed", (("account", "123456789012"), ("key_type", "long-term")))
    t = validity.aws_account(aws_key_id(42, "ASIA"))
    assert t is not None and dict(t.detail) == {"account": "000000000042", "key_type": "temporary"}


def test_pypi_macaroon_caveats() -> None:
    caveats = ['{"version": 1, "permissions": {"projects": ["layerleak-test"]}}', '{"nbf": 1}']
    token = pypi_token(caveats)
    assert token.startswith("pypi-AgEIcHlwaS5vcmc")  # the prefix the rule keys on
    v = validity.pypi_macaroon(token)
    assert v is not None and v.format == "parsed"
    detail = dict(v.detail)
    assert detail["location"] == "pypi.org" and detail["caveats"] == 2
    assert detail["caveat1"] == caveats[0]
    broken = validity.pypi_macaroon("pypi-AgEIcHlwaS5vcmc" + _rand(60))
    assert broken is not None and broken.format == "unparsed"


# --- confidence, engine, cache --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "start", "end"),
    [
        ("checksum-ok", Confidence.MEDIUM, Confidence.HIGH),
        ("checksum-bad", Confidence.HIGH, Confidence.LOW),
        ("parsed", Confidence.MEDIUM, Confidence.MEDIUM),
        ("unparsed", Confidence.HIGH, Confidence.MEDIUM),
        ("expired", Confidence.HIGH, Confidence.MEDIUM),
        ("expired", Confidence.LOW, Confidence.LOW),
    ],
)
def test_confidence_moves_but_nothing_is_dropped(fmt: str, start: Confidence, end: Confidence) -> None:
    assert validity.adjusted(start, Validity(fmt)) is end


def test_every_rule_in_the_table_names_a_validator() -> None:
    assert set(validity.BY_RULE.values()) <= set(validity.VALIDATORS)
    ours = {r.id for r in ENGINE.rules}
    assert {"github-pat-classic", "npm-token", "jwt", "private-key", "aws-access-key-id",
            "pypi-token", "gitlab-pat", "grafana-service-account-token", "atlassian-api-token"} <= ours


def test_engine_attaches_validity() -> None:
    good, bad = github_token(), _tampered(github_token())
    jira, fake_jira = atlassian_token(), atlassian_token()[:-8] + "00000000"
    text = f"A={good}\nB={bad}\nC={grafana_token()}\nJIRA_API_TOKEN={jira}\nJIRA_TOKEN={fake_jira}\n".encode()
    found = {m.secret: m for m in ENGINE.scan(text)}
    assert found[good].validity is not None and found[good].validity.format == "checksum-ok"
    assert found[good].confidence is Confidence.HIGH and found[good].reason is None
    assert found[bad].confidence is Confidence.LOW and found[bad].reason == "checksum-bad"
    assert any(m.rule_id == "grafana-service-account-token" and m.validity is not None
               and m.validity.format == "checksum-ok" for m in found.values())
    assert found[jira].rule_id == "atlassian-api-token" and found[jira].confidence is Confidence.HIGH
    assert found[jira].validity == Validity("checksum-ok", (("scheme", "crc32-hex"),))
    assert (found[fake_jira].confidence, found[fake_jira].reason) == (Confidence.LOW, "checksum-bad")


def test_validity_survives_the_stream_and_the_cache() -> None:
    import io

    token = github_token()
    stream = io.BytesIO(b"x\n" * 10 + f"TOKEN={token}\n".encode())
    (m,) = [m for m in ENGINE.scan_stream(stream) if m.secret == token]
    assert m.validity is not None and m.line == 11
    back = file_hit(hit_row(FileHit(path="/etc/t", match=m))).match
    assert back.validity == m.validity and back.confidence is m.confidence
    assert token not in json.dumps(back.validity.as_dict() if back.validity else {})


def test_judged_leaves_unknown_rules_alone() -> None:
    m = Match(rule_id="slack-bot-token", secret="x" * 30, offset=0, line=1)
    assert validity.judged(m) is m
