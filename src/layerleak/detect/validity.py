"""Offline validity: what a matched value's own structure says about it, with no network.

Many credentials carry a checksum or a structure that can be checked where they are found: a
GitHub token ends in the CRC32 of its random part, a JWT's claims say when it expires, a PEM
private key either parses or does not. Each such check is a *validator*: one small function from
the plaintext to a :class:`~layerleak.models.Validity` (or None: "this check does not apply"),
in the table :data:`VALIDATORS`, keyed by name. :data:`BY_RULE` says which validator judges which
rule. The engine calls :func:`judged` on every match it makes.

A validity never drops a finding; it moves its confidence:

- ``checksum-ok``: the value carries its issuer's checksum: ``high``.
- ``checksum-bad``: it does not (a real token of that format always does): ``low``, reason
  ``checksum-bad``.
- ``parsed``: the structure was read (``detail`` says what it holds): unchanged.
- ``unparsed``: it looks like the format but does not parse (a truncated or made-up key): one
  step lower, reason ``unparsed``.
- ``expired``: a token whose own expiry time has passed at scan time: one step lower, reason
  ``expired``.

``detail`` never holds secret material: key types and sizes, public-key fingerprints, issuer,
audience and expiry claims, macaroon caveats, an AWS account id.

Formats and where they are published:

- GitHub (``ghp_ gho_ ghu_ ghs_ ghr_``) and npm (``npm_``): 30 base62 characters, then the CRC32
  of those 30 characters in base62, 6 digits, zero-padded ("Behind GitHub's new authentication
  token formats", GitHub blog, 2021-04-05; "Announcing npm's new access token format",
  2021-09-23).
- Grafana service account tokens: ``glsa_<32 alnum>_<8 hex>``, the hex being the CRC32 (IEEE) of
  ``glsa_<32 alnum>`` as 4 little-endian bytes (Grafana's ``pkg/components/satokengen``).
- GitLab routable tokens: ``<prefix><base64url payload>.<2 base36 version>.<2 base36 payload
  length><7 base36 CRC32>``, the CRC over everything before it (also without the version field,
  the 2024 form); the payload holds the routing keys (``o:`` organization, ``u:`` user, ...,
  base36) and 16 random bytes (GitLab's ``Authn::TokenField::Generator::RoutableToken`` and its
  routable-tokens design document). Legacy 20-character tokens have no checksum.
- JWT (RFC 7519): base64url JSON header and claims; ``alg``, ``typ``, ``iss``, ``aud``, ``exp``.
- PEM and OpenSSH private keys: parsed with ``cryptography``; type, bits and the SHA-256
  fingerprint of the public key as ``ssh-keygen -l`` prints it (``SHA256:...``).
- AWS access key ids: the 16 base32 characters after the 4-letter prefix encode the account id
  (its 40 bits after the first, and before the last 7, of the first 6 decoded bytes). Keys issued
  before this encoding (2019 and earlier) decode to a number that is not their account.
- PyPI API tokens: ``pypi-`` + base64url of a version 2 binary macaroon (libmacaroons format: a
  version byte 2, then fields of type, length, data): its location and first-party caveats.

- Atlassian API tokens (``ATATT3...``, since 2023): ``...=<8 hex>``, the hex being the CRC32
  (IEEE) of everything before it, ``=`` included, big-endian and upper case. Atlassian announced
  prefixed, checksummed secrets (its Connect secrets' ``ATCO`` prefix and checksum, developer
  community, 2021) and scans for leaked ``ATATT`` tokens; its documentation still calls token
  contents opaque, so the layout was checked against published sample tokens. Bitbucket
  ``ATCTT`` access tokens look alike but are not judged (no sample to check the scheme on).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import re
import time
import zlib
from collections.abc import Callable, Mapping

from layerleak.detect import knownkeys
from layerleak.models import Confidence, Match, Validity

CHECKSUM_OK = "checksum-ok"
CHECKSUM_BAD = "checksum-bad"
PARSED = "parsed"
UNPARSED = "unparsed"
EXPIRED = "expired"

KNOWN_PUBLIC = "badkeys"  # detail key: the badkeys check that recognised a private key
KNOWN_PUBLIC_REASON = "known-public-key"
MAX_DETAIL = 200  # characters of any one detail value (claims, caveats) kept
MAX_CAVEATS = 8

Validator = Callable[[str], Validity | None]

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _in_base(number: int, digits: str, width: int) -> str:
    out = ""
    while number:
        number, rest = divmod(number, len(digits))
        out = digits[rest] + out
    return out.rjust(width, "0")


def _text(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _b64url(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


# --- checksums --------------------------------------------------------------------------------


def github_crc32(secret: str) -> Validity | None:
    """``<prefix>_`` + 30 base62 characters + their CRC32 in 6 base62 digits (GitHub, npm)."""
    prefix, sep, rest = secret.partition("_")
    if not sep or len(rest) != 36 or not rest.isascii() or not rest.isalnum():
        return None
    body, check = rest[:30], rest[30:]
    ok = _in_base(zlib.crc32(body.encode()), _BASE62, 6) == check
    return Validity(CHECKSUM_OK if ok else CHECKSUM_BAD, (("scheme", "crc32-base62"),))


def grafana_crc32(secret: str) -> Validity | None:
    """``glsa_<secret>_<crc32 of "glsa_<secret>", 4 little-endian bytes in hex>``."""
    head, sep, check = secret.rpartition("_")
    if not sep or len(check) != 8 or not head.startswith("glsa_"):
        return None
    ok = zlib.crc32(head.encode()).to_bytes(4, "little").hex() == check.lower()
    return Validity(CHECKSUM_OK if ok else CHECKSUM_BAD, (("scheme", "crc32-hex"),))


_ATLASSIAN = re.compile(r"^ATATT[A-Za-z0-9_=-]+=(?P<crc>[0-9A-F]{8})$")


def atlassian_crc32(secret: str) -> Validity | None:
    """``ATATT...=<8 hex>``: the hex is the CRC32 (IEEE) of everything before it, ``=`` included,
    big-endian, upper case. A value without that ending is not judged."""
    m = _ATLASSIAN.match(secret)
    if m is None:
        return None
    ok = f"{zlib.crc32(secret[:-8].encode()):08X}" == m.group("crc")
    return Validity(CHECKSUM_OK if ok else CHECKSUM_BAD, (("scheme", "crc32-hex"),))


_ROUTABLE = re.compile(
    r"^(?P<prefix>[A-Za-z0-9_-]*?-)?(?P<payload>[A-Za-z0-9_-]{27,300})\."
    r"(?:(?P<version>[0-9a-z]{2})\.)?(?P<length>[0-9a-z]{2})(?P<crc>[0-9a-z]{7})$"
)
_ROUTING_KEYS = {"c": "cell", "g": "group", "o": "organization", "p": "project", "u": "user"}


def gitlab_routable(secret: str) -> Validity | None:
    """A routable GitLab token: base36 CRC32 of everything before its last 7 characters."""
    m = _ROUTABLE.match(secret)
    if m is None:
        return None  # a legacy token (``glpat-`` + 20 characters): no checksum to check
    ok = _in_base(zlib.crc32(secret[:-7].encode()), _BASE36, 7) == m.group("crc")
    ok = ok and int(m.group("length"), 36) == len(m.group("payload"))
    detail: list[tuple[str, str | int | bool]] = [("scheme", "crc32-base36")]
    if m.group("version"):
        detail.append(("version", int(m.group("version"), 36)))
    decoded = _b64url(m.group("payload")) if ok else None
    if decoded and len(decoded) > 17:
        routing = decoded[: -1 - decoded[-1]] if decoded[-1] < len(decoded) else b""
        for line in routing.decode("ascii", "replace").split("\n"):
            key, _, value = line.partition(":")
            if key in _ROUTING_KEYS and value and value.isalnum():
                detail.append((_ROUTING_KEYS[key], _text(str(int(value, 36)))))
    return Validity(CHECKSUM_OK if ok else CHECKSUM_BAD, tuple(detail))


# --- structures -------------------------------------------------------------------------------


def jwt_claims(secret: str, now: float | None = None) -> Validity | None:
    """A JWT's header and claims, read without verifying the signature (there is no key)."""
    parts = secret.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_b64url(parts[0]) or b"")
        claims = json.loads(_b64url(parts[1]) or b"")
    except (ValueError, UnicodeDecodeError):
        return Validity(UNPARSED, (("reason", "header or claims are not base64url JSON"),))
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return Validity(UNPARSED, (("reason", "header or claims are not JSON objects"),))
    detail: list[tuple[str, str | int | bool]] = []
    for key in ("alg", "typ", "kid"):
        if key in header:
            detail.append((key, _text(header[key])))
    for key in ("iss", "aud"):
        if key in claims:
            detail.append((key, _text(claims[key])))
    exp = claims.get("exp")
    expired = False
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(min(max(exp, 0), 253402300799)))
        expired = exp < (time.time() if now is None else now)
        detail += [("exp", stamp), ("expired", expired)]
    return Validity(EXPIRED if expired else PARSED, tuple(detail))


def private_key(secret: str) -> Validity | None:
    """A PEM (PKCS#1, PKCS#8, SEC1) or OpenSSH private key, parsed: type, bits, fingerprint."""
    from cryptography.hazmat.primitives import serialization

    pem = _normal_pem(secret)
    if pem is None:
        return None
    label = pem.split(b"-----", 2)[1]
    if b"PGP" in label or b"SSH2" in label:
        return None  # OpenPGP and SSH.com formats: not read here
    key: object
    try:
        if b"OPENSSH" in label:
            key = serialization.load_ssh_private_key(pem, password=None)
        else:
            key = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:  # encrypted, and no password given
        return Validity(PARSED, (("encrypted", True),))
    except (ValueError, binascii.Error):
        if b"ENCRYPTED" in pem:  # a cipher cryptography does not know; the armor says encrypted
            return Validity(PARSED, (("encrypted", True),))
        return Validity(UNPARSED, (("reason", "not a valid private key"),))
    except Exception:  # noqa: BLE001 - an unsupported algorithm inside a well-formed block
        return Validity(UNPARSED, (("reason", "unsupported key"),))
    return Validity(PARSED, key_detail(key))


def key_detail(key: object) -> tuple[tuple[str, str | int | bool], ...]:
    """(type, bits, fingerprint) of a ``cryptography`` private key."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

    kind, bits = "unknown", 0
    if isinstance(key, rsa.RSAPrivateKey):
        kind, bits = "rsa", key.key_size
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        kind, bits = f"ec-{key.curve.name}", key.key_size
    elif isinstance(key, dsa.DSAPrivateKey):
        kind, bits = "dsa", key.key_size
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        kind, bits = "ed25519", 256
    elif isinstance(key, ed448.Ed448PrivateKey):
        kind, bits = "ed448", 456
    elif isinstance(key, x25519.X25519PrivateKey):
        kind, bits = "x25519", 256
    elif isinstance(key, x448.X448PrivateKey):
        kind, bits = "x448", 448
    detail: list[tuple[str, str | int | bool]] = [("type", kind), ("bits", bits)]
    public = getattr(key, "public_key", None)
    if public is not None:
        detail.append(("fingerprint", key_fingerprint(public())))
        known = knownkeys.recognised(public())
        if known is not None:
            detail.append((KNOWN_PUBLIC, known))
    return tuple(detail)


def key_fingerprint(public: object) -> str:
    """The one key fingerprint layerleak shows (``validity.detail``, ``related``, ``db related``):
    ``SHA256:`` and the base64 (no padding) of the SHA-256 of the public key's DER
    SubjectPublicKeyInfo. ``openssl pkey -pubout -outform DER | openssl sha256 -binary | base64``
    gives the same digest; it names every key type alike, whatever container the key came in."""
    from cryptography.hazmat.primitives import serialization

    der = public.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return fingerprint_of_digest(hashlib.sha256(der).digest())


def fingerprint_of_digest(digest: bytes) -> str:
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def normal_key_id(key_id: str) -> str | None:
    """A key fingerprint as this version writes it, from this or an earlier form (64 hex
    characters, as results databases of earlier versions hold them); None for anything else."""
    digest = digest_of_fingerprint(key_id)
    return None if digest is None else fingerprint_of_digest(digest)


def spki_hex(fingerprint: str) -> str:
    """The same digest as 64 hex characters (the report's ``spki_sha256``, kept for version 1)."""
    digest = digest_of_fingerprint(fingerprint)
    return fingerprint if digest is None else digest.hex()


def digest_of_fingerprint(fingerprint: str) -> bytes | None:
    """The 32-byte digest a ``SHA256:`` fingerprint (or 64 hex characters, the form of earlier
    results databases) names; None for anything else."""
    if re.fullmatch(r"[0-9a-f]{64}", fingerprint):
        return bytes.fromhex(fingerprint)
    if fingerprint.startswith("SHA256:") and len(fingerprint) == 50:
        try:
            digest = base64.b64decode(fingerprint[7:] + "=", validate=True)
        except (binascii.Error, ValueError):
            return None
        return digest if len(digest) == 32 else None
    return None


_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)
_HEADER = re.compile(r"^[A-Za-z][A-Za-z-]*: .*$")


def _normal_pem(secret: str) -> bytes | None:
    """The PEM block re-wrapped as a parser expects it: escaped newlines (``\\n`` in JSON or a
    string literal) undone, indentation and trailing blanks removed, the body at 64 columns."""
    m = _PEM.search(secret.replace("\\r", "").replace("\\n", "\n"))
    if m is None:
        return None
    label, inner = m.group(1), m.group(2)
    headers: list[str] = []
    body: list[str] = []
    for raw in inner.splitlines():
        line = raw.strip()
        if not line:
            continue
        if _HEADER.match(line):
            headers.append(line)
        else:
            body.append(re.sub(r"[^A-Za-z0-9+/=]", "", line))
    joined = "".join(body)
    lines = [joined[i : i + 64] for i in range(0, len(joined), 64)]
    head = [*headers, ""] if headers else []
    text = "\n".join([f"-----BEGIN {label}-----", *head, *lines, f"-----END {label}-----", ""])
    return text.encode("ascii", "replace")


_AWS_ACCOUNT_PREFIXES = {"AKIA": "long-term", "ASIA": "temporary"}


def aws_account(secret: str) -> Validity | None:
    """The account id an AWS access key id encodes."""
    kind = _AWS_ACCOUNT_PREFIXES.get(secret[:4])
    if kind is None or len(secret) != 20:
        return None
    try:
        decoded = base64.b32decode(secret[4:])
    except (binascii.Error, ValueError):
        return Validity(UNPARSED, (("reason", "not base32"),))
    account = (int.from_bytes(decoded[:6], "big") & 0x7FFFFFFFFF80) >> 7
    return Validity(PARSED, (("account", f"{account:012d}"), ("key_type", kind)))


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 28:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def macaroon_v2(data: bytes) -> tuple[str | None, list[str]]:
    """(location, first-party caveat ids) of a version 2 binary macaroon; ValueError if not one."""
    if not data or data[0] != 2:
        raise ValueError("not a version 2 macaroon")
    pos, location, caveats = 1, None, []
    sections: list[list[tuple[int, bytes]]] = []
    fields: list[tuple[int, bytes]] = []
    while pos < len(data):
        kind, pos = _varint(data, pos)
        if kind == 0:  # end of section
            sections.append(fields)
            fields = []
            if len(sections) > 1 and not sections[-1]:
                break  # the empty section after the caveats: the signature follows
            continue
        length, pos = _varint(data, pos)
        if pos + length > len(data):
            raise ValueError("field past the end")
        fields.append((kind, data[pos : pos + length]))
        pos += length
    if not sections or not any(k == 2 for k, _ in sections[0]):
        raise ValueError("no identifier")
    for kind, value in sections[0]:
        if kind == 1:
            location = value.decode("utf-8", "replace")
    for section in sections[1:]:
        ids = [v for k, v in section if k == 2]
        if ids and not any(k == 4 for k, _ in section):  # third-party caveats carry a vid
            caveats.append(ids[0].decode("utf-8", "replace"))
    return location, caveats


def pypi_macaroon(secret: str) -> Validity | None:
    if not secret.startswith("pypi-"):
        return None
    raw = _b64url(secret[len("pypi-") :])
    try:
        if raw is None:
            raise ValueError("not base64url")
        location, caveats = macaroon_v2(raw)
    except ValueError:
        return Validity(UNPARSED, (("reason", "not a macaroon"),))
    detail: list[tuple[str, str | int | bool]] = []
    if location:
        detail.append(("location", _text(location)))
    detail.append(("caveats", len(caveats)))
    detail += [(f"caveat{i}", _text(c)) for i, c in enumerate(caveats[:MAX_CAVEATS], 1)]
    return Validity(PARSED, tuple(detail))


# --- the table ----------------------------------------------------------------------------------

VALIDATORS: Mapping[str, Validator] = {
    "github-crc32": github_crc32,
    "grafana-crc32": grafana_crc32,
    "atlassian-crc32": atlassian_crc32,
    "gitlab-routable": gitlab_routable,
    "jwt": jwt_claims,
    "private-key": private_key,
    "aws-account": aws_account,
    "pypi-macaroon": pypi_macaroon,
}

# Which validator judges which rule (our rule ids, and the ids of gitleaks' default rules).
BY_RULE: Mapping[str, str] = {
    "github-pat-classic": "github-crc32",
    "github-oauth": "github-crc32",
    "github-app-token": "github-crc32",
    "github-refresh-token": "github-crc32",
    "npm-token": "github-crc32",
    "github-pat": "github-crc32",
    "github-app-token-gitleaks": "github-crc32",
    "npm-access-token": "github-crc32",
    "grafana-service-account-token": "grafana-crc32",
    "atlassian-api-token": "atlassian-crc32",
    "gitlab-pat": "gitlab-routable",
    "gitlab-runner-token": "gitlab-routable",
    "gitlab-deploy-token": "gitlab-routable",
    "gitlab-pipeline-trigger-token": "gitlab-routable",
    "gitlab-token": "gitlab-routable",
    "jwt": "jwt",
    "kubernetes-service-account-token": "jwt",
    "private-key": "private-key",
    "kubeconfig-client-key": "private-key",
    "aws-access-key-id": "aws-account",
    "aws-access-token": "aws-account",
    "pypi-token": "pypi-macaroon",
    "pypi-upload-token": "pypi-macaroon",
}

REASONS = {CHECKSUM_BAD: "checksum-bad", UNPARSED: "unparsed", EXPIRED: "expired"}


def validate(rule_id: str, secret: str) -> Validity | None:
    name = BY_RULE.get(rule_id)
    if name is None:
        return None
    try:
        return VALIDATORS[name](secret)
    except (ValueError, TypeError, UnicodeError, OverflowError):
        return Validity(UNPARSED, (("reason", "malformed"),))


def known_public(validity: Validity) -> str | None:
    """The badkeys check that recognised this validity's private key as public, if any."""
    for key, value in validity.detail:
        if key == KNOWN_PUBLIC:
            return str(value)
    return None


def published(validity: Validity) -> bool:
    """Is this validity's private key on badkeys' blocklist of published keys? Only those are
    demoted: a key flagged by an offline weak-key check (Fermat, ROCA ...) is somebody's real key,
    which is both leaked and weak; its finding keeps its confidence and names the check."""
    check = known_public(validity)
    return check is not None and check.startswith("blocklist")


def adjusted(confidence: Confidence, validity: Validity) -> Confidence:
    """The confidence a match of ``confidence`` has once its validity is known."""
    if published(validity):
        return Confidence.LOW
    if validity.format == CHECKSUM_OK:
        return Confidence.HIGH
    if validity.format == CHECKSUM_BAD:
        return Confidence.LOW
    if validity.format in (UNPARSED, EXPIRED):
        return Confidence(max(Confidence.LOW, confidence - 1))
    return confidence


def judged(match: Match) -> Match:
    """``match`` with its validity, and its confidence (and reason) moved by it."""
    if match.validity is not None or match.rule_id not in BY_RULE:
        return match
    validity = validate(match.rule_id, match.secret)
    if validity is None:
        return match
    confidence = adjusted(match.confidence, validity)
    reason = match.reason
    if published(validity):
        reason = KNOWN_PUBLIC_REASON  # says more than the vendor or path reason a key may have
    elif confidence < match.confidence and reason is None:
        reason = REASONS.get(validity.format)
    return dataclasses.replace(match, validity=validity, confidence=confidence, reason=reason)
