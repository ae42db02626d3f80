"""Public halves of keys, for correlation: which certificates, ``authorized_keys`` lines and public
keys in an image belong to a private key that leaked in it.

Every key is named by the SHA-256 of its public key's DER SubjectPublicKeyInfo, shown as
``SHA256:`` and its base64 without padding (the one key fingerprint layerleak shows, also in a
private key's ``validity.detail``; ``openssl pkey -pubin -outform DER | openssl sha256 -binary |
base64`` gives the same digest): a private key found
by a rule (PEM, OpenSSH) or in a binary container has the fingerprint of its public key, and a
certificate, a PEM or DER public key or an OpenSSH public key line has the fingerprint of the key
it carries. Equal fingerprints relate a finding to those places (``related`` in the report).

What is looked at, per layer file (its first 8 MiB, as read for scanning): PEM blocks
``CERTIFICATE``, ``TRUSTED CERTIFICATE``, ``PUBLIC KEY``, ``RSA PUBLIC KEY``; DER certificates and
public keys that are the whole file; OpenSSH public key lines in ``authorized_keys``,
``authorized_keys2`` and ``*.pub`` files; certificates inside PKCS#12 and Java keystores that open
with a default password (:mod:`layerleak.entries.keystores`).
"""

from __future__ import annotations

import posixpath
import re
import warnings
from collections.abc import Iterator

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.serialization import (
    load_der_public_key,
    load_pem_private_key,
    load_pem_public_key,
    load_ssh_private_key,
    load_ssh_public_key,
)

from layerleak.detect import validity
from layerleak.detect.classify import HEAD
from layerleak.entries import keystores

MAX_BLOCKS = 2_000  # PEM blocks read per file (a CA bundle holds about 150)
MAX_DETAIL = 200
_PEM = re.compile(
    rb"-----BEGIN (CERTIFICATE|TRUSTED CERTIFICATE|PUBLIC KEY|RSA PUBLIC KEY)-----\r?\n"
    rb"[A-Za-z0-9+/=\r\n]{16,65536}?-----END \1-----"
)
_SSH = re.compile(
    rb"(?:^|\s)((?:ssh-rsa|ssh-dss|ssh-ed25519|ssh-ed448|ecdsa-sha2-nistp(?:256|384|521)"
    rb"|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) AAAA[A-Za-z0-9+/]+=*)([^\r\n]*)"
)
_SSH_FILES = ("authorized_keys", "authorized_keys2")
_ERRORS = (ValueError, TypeError, NotImplementedError, UnsupportedAlgorithm)  # e.g. a GOST key

PublicKey = tuple[str, str, str]  # (SPKI fingerprint, kind, detail)


def spki_fingerprint(key: PublicKeyTypes) -> str:
    """``SHA256:<base64>`` of the key's DER SubjectPublicKeyInfo (:func:`validity.key_fingerprint`)."""
    return validity.key_fingerprint(key)


def private_key_id(secret: str) -> str | None:
    """The SPKI fingerprint of a private key given as PEM or OpenSSH text; None when it does not
    load (encrypted, damaged, a PuTTY or PGP key)."""
    if not secret.startswith("-----BEGIN ") or "PRIVATE KEY" not in secret[:64]:
        return None
    data = secret.encode("ascii", "replace")
    key: PrivateKeyTypes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if b"OPENSSH PRIVATE KEY" in data[:40]:
                key = load_ssh_private_key(data, None)
            else:
                key = load_pem_private_key(data, None, unsafe_skip_rsa_key_validation=True)
    except _ERRORS:
        return None
    return spki_fingerprint(key.public_key())


def public_keys(path: str, data: bytes, base: str | None = None) -> list[PublicKey]:
    """Every public key ``data`` (a file's first bytes) carries. ``base``: the path's file name,
    when the caller has it."""
    found: list[PublicKey] = []
    # text (no NUL in its first HEAD bytes: is_binary, without copying them), then one pass of
    # a fast search
    if data.find(b"\x00", 0, HEAD) < 0 and b"-----BEGIN " in data:
        found.extend(_pem(data))
    if base is None:
        base = posixpath.basename(path)
    if (base in _SSH_FILES or base.endswith(".pub")) and len(data) < 1024 * 1024:
        found.extend(_ssh(data))
    if data.startswith(_BINARY_STARTS):
        found.extend(_binary(data))
    return found


_BINARY_STARTS = (b"\x30", keystores.JKS_MAGIC, keystores.JCEKS_MAGIC)  # DER, a Java key store


def _pem(data: bytes) -> Iterator[PublicKey]:
    for n, m in enumerate(_PEM.finditer(data)):
        if n >= MAX_BLOCKS:
            return
        kind = m.group(1)
        block = m.group(0)
        try:
            with warnings.catch_warnings():  # cryptography's deprecation notes on odd certificates
                warnings.simplefilter("ignore")
                if kind in (b"CERTIFICATE", b"TRUSTED CERTIFICATE"):
                    block = block.replace(b"TRUSTED CERTIFICATE", b"CERTIFICATE")
                    found = _certificate(x509.load_pem_x509_certificate(block))
                else:
                    found = spki_fingerprint(load_pem_public_key(block)), "public-key", kind.decode()
        except _ERRORS:
            continue
        yield found


def _certificate(cert: x509.Certificate, kind: str = "certificate") -> PublicKey:
    try:
        subject = cert.subject.rfc4514_string()
    except _ERRORS:
        subject = ""
    return spki_fingerprint(cert.public_key()), kind, subject[:MAX_DETAIL]


def _ssh(data: bytes) -> Iterator[PublicKey]:
    for m in _SSH.finditer(data):
        try:
            key = load_ssh_public_key(m.group(1))
        except _ERRORS:
            continue
        comment = m.group(2).strip().decode("utf-8", "replace")[:MAX_DETAIL]
        yield spki_fingerprint(key), "ssh-public-key", comment


def _binary(data: bytes) -> Iterator[PublicKey]:
    """A whole-file DER certificate or public key, or the certificates of a key container."""
    if len(data) > keystores.MAX_CONTAINER:
        return
    if data[:1] == b"\x30" and keystores.der_shape(data) is None:
        if keystores.der_length(data) != len(data):
            return  # text that starts with "0", or not one whole DER value
        found = _der_public(data)
        if found is not None:
            yield found
        return
    for cert in keystores.certificates(data):
        yield _certificate(cert, "keystore-certificate")


def _der_public(data: bytes) -> PublicKey | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _certificate(x509.load_der_x509_certificate(data))
        except _ERRORS:
            pass
        try:
            return spki_fingerprint(load_der_public_key(data)), "public-key", "DER"
        except _ERRORS:
            return None
