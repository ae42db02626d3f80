"""False-positive filters as a table: (candidate, the line it sits on, generic rule?, is a secret?)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import uuid

import pytest

from layerleak.detect import filters
from layerleak.detect.engine import Engine
from layerleak.detect.examples import armor
from layerleak.detect.rules import parse_rules_text


def _token(n: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        text = "".join(secrets.choice(alphabet) for _ in range(n))
        if filters.rejection(text) is None:
            return text


RSA = "RSA PRIVATE KEY"
HEX64 = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
MD5 = hashlib.md5(secrets.token_bytes(16)).hexdigest()
SRI = "sha512-" + base64.b64encode(hashlib.sha512(secrets.token_bytes(8)).digest()).decode()
RECORD_HASH = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(b"x").digest()).decode().rstrip("=")
UUID = str(uuid.uuid4())
SSH_BLOB = "AAAAB3NzaC1yc2EAAAADAQABAAABAQ" + _token(60)
ED_BLOB = "AAAAC3NzaC1lZDI1NTE5AAAAI" + _token(43)
TOKEN = _token()
PASSWORD = _token(20)

CASES = [
    # (candidate, context line, generic rule, is a secret)
    (TOKEN, f"api_token = {TOKEN}", False, True),
    (PASSWORD, f"DB_PASSWORD={PASSWORD}", True, True),
    (HEX64, f"API_KEY={HEX64}", False, True),  # hex is a fine shape for a key
    (HEX64, f"{HEX64}  usr/lib/python3/dist-packages/foo.py", True, False),  # sha256sum line
    (MD5, f"{MD5}  usr/share/doc/libc6/copyright", True, False),  # dpkg md5sums line
    (HEX64, f"{HEX64} *release.tar.gz", True, False),  # binary-mode sums line
    (HEX64, f"SHA256 (release.tar.gz) = {HEX64}", True, False),  # BSD-style sums line
    (SRI, f'      "integrity": "{SRI}",', True, False),  # package-lock.json
    (SRI, f"  integrity {SRI}", True, False),  # yarn.lock
    (RECORD_HASH, f"foo/__init__.py,{RECORD_HASH},120", True, False),  # wheel RECORD
    (f"sha256:{HEX64}", f'"digest": "sha256:{HEX64}"', False, False),
    (HEX64, f"    --hash=sha256:{HEX64}", True, False),  # requirements.txt with hashes
    (HEX64, f'checksum = "{HEX64}"', True, False),  # Cargo.lock
    (UUID, f"client_id = {UUID}", True, False),  # a UUID names a thing...
    (UUID, f"HEROKU_API_KEY={UUID}", False, True),  # ...unless a vendor rule asks for one
    ("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----", "", False,
     False),
    ("-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkq\n-----END CERTIFICATE-----", "", False,
     False),
    (f"{armor('BEGIN', RSA)}\nMIIEpAIBAAKCAQEA\n{armor('END', RSA)}", "", False, True),
    (SSH_BLOB, f"ssh-rsa {SSH_BLOB} deploy@build", True, False),  # authorized_keys
    (ED_BLOB, f"ssh_key: ssh-ed25519 {ED_BLOB}", True, False),
    (f"ssh-ed25519 {ED_BLOB}", "", False, False),
    ("changeme", "password=changeme", True, False),
    ("${DB_PASSWORD}", "password=${DB_PASSWORD}", True, False),
]


@pytest.mark.parametrize(("candidate", "context", "generic", "is_secret"), CASES)
def test_filters(candidate: str, context: str, generic: bool, is_secret: bool) -> None:
    reason = filters.rejection(candidate, context, generic=generic)
    assert (reason is None) == is_secret, reason


GENERIC_RULE = '''
[[rule]]
id = "test-generic-key"
title = "Generic key"
severity = "medium"
generic = true
keywords = ["key"]
regex = \'\'\'(?i)key\\s*[=:]\\s*"?(?P<secret>[A-Za-z0-9+/=_-]{32,})\'\'\'
'''


@pytest.mark.parametrize(
    ("line", "found"),
    [
        (f"API_KEY={TOKEN}", True),
        (f"deploy_key: ssh-ed25519 {ED_BLOB}", False),
        (f'key = "{SRI}"', False),
        (f"client_key = {UUID}", False),
    ],
)
def test_engine_gives_filters_the_line(line: str, found: bool) -> None:
    engine = Engine(parse_rules_text(GENERIC_RULE, "test"))
    assert bool(engine.scan(f"# config\n{line}\nother = 1\n".encode())) == found


SHADOW_RULES = GENERIC_RULE + '''
[[rule]]
id = "test-vendor-token"
title = "Vendor token"
severity = "high"
keywords = ["vnd_"]
regex = \'\'\'(?P<secret>vnd_[A-Za-z0-9]{30})\'\'\'
'''


def test_a_generic_match_gives_way_to_a_specific_one_on_the_same_value() -> None:
    engine = Engine(parse_rules_text(SHADOW_RULES, "test"))
    vendor = "vnd_" + _token(30)
    both = engine.scan(f"API_KEY={vendor}\nOTHER_KEY={TOKEN}\n".encode())
    assert [(m.rule_id, m.line) for m in both] == [("test-vendor-token", 1), ("test-generic-key", 2)]
