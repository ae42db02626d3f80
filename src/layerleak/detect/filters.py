"""False-positive filters: small pure predicates on a candidate secret.

Each returns a short reason when the candidate is *not* a secret, else None. The engine applies all
of them to every match; rules refine with their own allowlists.

A filter sees the candidate and, when the caller has it, ``context``: the text of the line the
candidate was found on. Context lets a filter recognise what surrounds a value (a checksum list, a
lockfile's ``integrity`` field, a public key line) without guessing from the value alone.
Filters that judge a value by its shape alone and would also reject real credentials of that shape
(a bare UUID is a Heroku API key, a bare hex string is many vendors' key) apply to ``generic`` rules
only: a vendor rule that asks for that shape by name gets it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Documented example credentials (AWS docs) that appear in countless READMEs and SDK tests.
DOCUMENTED_EXAMPLES = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        "AKIAI44QH8DHBEXAMPLE",
    }
)

_PLACEHOLDER_WORDS = (
    "changeme", "change_me", "change-me", "example", "placeholder", "your_", "your-", "yourkey",
    "yourtoken", "yourpass", "dummy", "sample", "redacted", "replace", "xxxx", "****", "todo",
    "fixme", "foobar", "notasecret", "not_a_secret", "insert", "<", ">", "put your unique phrase",
    "_here", "xxxxxxxx",
)
# Values that are a word and nothing else: "secret", "password", "none", ...
_PLACEHOLDER_EXACT = frozenset(
    {
        "secret", "password", "passwd", "null", "none", "undefined", "true", "false", "token",
        "string", "value", "empty", "default", "test", "testing", "admin", "root", "pass",
        "apikey", "api_key", "secretkey", "secret_key", "mysecret", "mypassword", "s3cr3t",
        "p@ssw0rd", "password123", "hunter2", "letmein",
        # well-known defaults of database and broker images and tutorials
        "postgres", "mysql", "mariadb", "guest", "rabbitmq", "redis", "user", "username",
        "changeit", "secret123", "example",
    }
)
_TEMPLATE = re.compile(
    r"\$\{|\{\{|\}\}|%\(|\$\(|^\$[A-Za-z_]|%[A-Za-z_]+%|<[A-Za-z_ -]+>|@[A-Za-z_]+@|^\*+$"
)
_ASCENDING = ("0123456789", "abcdefghijklmnopqrstuvwxyz")

# A digest written with its algorithm: "sha256:<hex>", "sha512-<base64>" (Subresource Integrity, as
# in package-lock.json and yarn.lock), "sha256=<base64>" (wheel RECORD), "h1:<base64>=" (go.sum).
_LABELLED_DIGEST = re.compile(
    r"^(?:sha1|sha224|sha256|sha384|sha512|sha3-256|sha3-512|md5|blake2b|h1)[-:=]"
    r"[A-Za-z0-9+/_=-]{16,}$",
    re.IGNORECASE,
)
# One line of a checksum list: "<hex>  <path>" (md5sum, sha256sum, dpkg md5sums), "<hex> *<path>"
# (binary mode), or the BSD form "SHA256 (<path>) = <hex>".
_SUMS_LINE = re.compile(
    r"^\s*(?:[0-9a-fA-F]{32,128}[ \t]+\*?\S.*|[A-Z0-9-]{3,10} \(.+\) = [0-9a-fA-F]{32,128})\s*$"
)
# Keys under which lockfiles and manifests store digests.
_DIGEST_KEY = re.compile(
    r"""(?i)(?:\bintegrity\b|\bshasum\b|\bchecksums?\b|\bdigest\b|\bsha(?:1|256|384|512)(?:sum)?\b|"""
    r"""\bmd5(?:sum)?\b|--hash=|\bhashes\b|\bhash\s*=)"""
)
_DIGEST_SHAPE = re.compile(r"^[A-Za-z0-9+/_=:-]+$")
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
# What public material looks like: PEM blocks that hold no private key, and OpenSSH public keys
# (their base64 blob starts with the length-prefixed algorithm name: "AAAAB3NzaC1yc2E" is ssh-rsa).
_PUBLIC_PEM = re.compile(
    r"-----BEGIN (?:PUBLIC KEY|RSA PUBLIC KEY|CERTIFICATE|TRUSTED CERTIFICATE|CERTIFICATE REQUEST|"
    r"NEW CERTIFICATE REQUEST|X509 CRL|PGP PUBLIC KEY BLOCK|PGP SIGNATURE|SSH2 PUBLIC KEY|"
    r"DH PARAMETERS|EC PARAMETERS|PKCS7|CMS)-----"
)
_SSH_PUBLIC = re.compile(
    r"(?:^|[\s\"'=,])(?:ssh-(?:rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp(?:256|384|521)|"
    r"sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)(?:-cert-v01@openssh\.com)?"
    r"[ \t]+AAAA[A-Za-z0-9+/]{20,}={0,3}"
)
_SSH_BLOB = re.compile(r"^AAAA(?:B3NzaC1|C3NzaC1lZDI1NTE5|E2VjZHNhLXNoYTIt|CXNrLXNzaC1l|InNrLWVjZHNh)")


def documented_example(secret: str, context: str = "") -> str | None:
    return "documented example" if secret in DOCUMENTED_EXAMPLES else None


def template(secret: str, context: str = "") -> str | None:
    return "template" if _TEMPLATE.search(secret) else None


# Short alphanumeric words turn up by chance inside long random secrets ("todo" in about 0.25% of
# 2048-bit RSA keys' base64): in a secret longer than this, only the longer words count.
_CHANCE_LENGTH = 40
_LONG_WORDS = tuple(w for w in _PLACEHOLDER_WORDS if len(w) >= 6 or not w.isalnum())


def placeholder(secret: str, context: str = "") -> str | None:
    low = secret.lower()
    if low.strip("'\"") in _PLACEHOLDER_EXACT:
        return "placeholder"
    words = _PLACEHOLDER_WORDS if len(secret) <= _CHANCE_LENGTH else _LONG_WORDS
    return "placeholder" if any(w in low for w in words) else None


def low_diversity(secret: str, context: str = "") -> str | None:
    return "low diversity" if len(set(secret)) < 4 else None


def sequential(secret: str, context: str = "") -> str | None:
    low = secret.lower()
    for run in _ASCENDING:
        for i in range(len(run) - 7):
            if run[i : i + 8] in low:
                return "sequential"
    return None


def digest(secret: str, context: str = "") -> str | None:
    """A checksum, not a credential: labelled digests, checksum-list lines, lockfile integrity."""
    if _LABELLED_DIGEST.match(secret):
        return "digest"
    if not context or not _DIGEST_SHAPE.match(secret):
        return None
    if _SUMS_LINE.match(context) or _DIGEST_KEY.search(context):
        return "digest"
    return None


def public_key(secret: str, context: str = "") -> str | None:
    """Certificates and public keys are meant to be shared."""
    if _PUBLIC_PEM.search(secret[:64]) or _SSH_PUBLIC.search(secret) or _SSH_BLOB.match(secret):
        return "public key"
    if context and _SSH_PUBLIC.search(context) and secret in context:
        return "public key"
    return None


def uuid(secret: str, context: str = "") -> str | None:
    """A bare UUID names a thing; a generic rule must not call it a secret."""
    return "uuid" if _UUID.match(secret.strip("'\"")) else None


FILTERS: tuple[Callable[[str, str], str | None], ...] = (
    documented_example,
    template,
    placeholder,
    low_diversity,
    sequential,
    digest,
    public_key,
)
# Only for rules marked ``generic``: shapes that vendor rules legitimately ask for.
GENERIC_FILTERS: tuple[Callable[[str, str], str | None], ...] = (uuid,)


def rejection(secret: str, context: str = "", *, generic: bool = False) -> str | None:
    """The first reason this candidate is not a secret, or None if it may be one.

    ``context`` is the line the candidate was found on (empty when unknown)."""
    for check in FILTERS:
        reason = check(secret, context)
        if reason:
            return reason
    if generic:
        for check in GENERIC_FILTERS:
            reason = check(secret, context)
            if reason:
                return reason
    return None
