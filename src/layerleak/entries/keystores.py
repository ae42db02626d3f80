"""Private keys in binary containers, found by content (magic bytes and ASN.1 shape), never by name.

- **DER private keys** without PEM armor: PKCS#1 ``RSAPrivateKey``, PKCS#8 ``PrivateKeyInfo``
  (RSA, EC, Ed25519, Ed448, DSA ...) and SEC1 ``ECPrivateKey``: a DER SEQUENCE spanning the whole
  file, whose first element is the version ``INTEGER`` these structures start with (0 for PKCS#1
  and PKCS#8, 1 for SEC1), confirmed by ``cryptography`` loading it. Certificates and public keys
  start with a SEQUENCE or a large INTEGER instead, and do not load as private keys.
- **PKCS#12** (``.p12``/``.pfx``): a DER SEQUENCE starting with version ``INTEGER 3``, opened by
  ``cryptography`` with an empty password or a common default (:data:`DEFAULT_PASSWORDS`); one
  holding a private key is a finding, one with certificates only is not.
- **Java keystores** (JKS ``FEEDFEED``, JCEKS ``CECECECE``), opened by ``pyjks`` with the same
  passwords; each private key entry is a finding, trusted certificates are not.

Each key is reported under the ``private-key`` rule with the key as unencrypted PKCS#8 PEM as its
secret (so its fingerprint is the same wherever the same key is found, whatever its container),
and a marker naming the container in ``inner_path``: ``[der:pkcs1]``, ``[der:pkcs8]``,
``[der:sec1]``, ``[pkcs12 password=""]``, ``[jks alias=server password=changeit]``. A container
whose password is not a default is not opened and gives no finding.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
    pkcs12,
)

from layerleak.detect import validity
from layerleak.models import Match

RULE_ID = "private-key"
MAX_CONTAINER = 1024 * 1024  # a key container larger than this is not looked at
# A password-based key derivation asking for more rounds than this is not run (a crafted file
# could ask for billions); real ones use 2,048 to 600,000.
MAX_ITERATIONS = 1_000_000
MAX_DER_DEPTH = 12
DEFAULT_PASSWORDS = ("", "changeit", "changeme", "password", "secret", "123456")
JKS_MAGIC = b"\xfe\xed\xfe\xed"
JCEKS_MAGIC = b"\xce\xce\xce\xce"
_SEQUENCE, _INTEGER, _OCTET_STRING = 0x30, 0x02, 0x04


def is_candidate(head: bytes) -> bool:
    """Cheap test on a file's first bytes: could it be a key container?"""
    if head[:4] in (JKS_MAGIC, JCEKS_MAGIC):
        return True
    shape = der_shape(head)
    return shape is not None


def scan(data: bytes) -> Iterator[tuple[str, Match]]:
    """(inner_path marker, match) for each private key in ``data``, a whole file."""
    if len(data) > MAX_CONTAINER:
        return
    if data[:4] in (JKS_MAGIC, JCEKS_MAGIC):
        yield from _java(data)
        return
    shape = der_shape(data)
    if shape is None or der_length(data) != len(data):
        return
    if shape == "pkcs12":
        yield from _pkcs12(data)
        return
    if shape == "pkcs8-encrypted":
        yield from _encrypted_pkcs8(data)
        return
    key = _load_der(data)
    if key is not None:
        yield f"[der:{shape}]", _match(key)


def der_shape(data: bytes) -> str | None:
    """Which structure a DER SEQUENCE looks like from its first element and the one after it."""
    header = _header(data, 0)
    if header is None or data[0] != _SEQUENCE:
        return None
    first = header[0]
    if data[first : first + 3] == b"\x02\x01\x03" and data[first + 3 : first + 4] == b"\x30":
        return "pkcs12"
    if data[first : first + 3] == b"\x02\x01\x00":
        after = data[first + 3 : first + 4]
        if after == b"\x30":
            return "pkcs8"
        if after == b"\x02":
            return "pkcs1"
    if data[first : first + 3] == b"\x02\x01\x01" and data[first + 3 : first + 4] == b"\x04":
        return "sec1"
    if data[first : first + 1] == b"\x30":  # EncryptedPrivateKeyInfo: {algorithm, OCTET STRING}
        algorithm = _header(data, first)
        if algorithm is not None and data[algorithm[0] : algorithm[0] + 1] == b"\x06":  # its OID
            end = algorithm[0] + algorithm[1]
            if data[end : end + 1] == b"\x04":
                return "pkcs8-encrypted"
    return None


def _header(data: bytes, at: int) -> tuple[int, int] | None:
    """(where the content starts, its length) of the DER element at ``at``."""
    if len(data) < at + 2:
        return None
    n = data[at + 1]
    if n < 0x80:
        return at + 2, n
    count = n & 0x7F
    if count == 0 or count > 4 or len(data) < at + 2 + count:
        return None
    return at + 2 + count, int.from_bytes(data[at + 2 : at + 2 + count], "big")


def der_length(data: bytes) -> int | None:
    header = _header(data, 0)
    return None if header is None else header[0] + header[1]


def _load_der(data: bytes) -> PrivateKeyTypes | None:
    try:
        return load_der_private_key(data, password=None)
    except (ValueError, TypeError, NotImplementedError, UnsupportedAlgorithm):  # not a key, encrypted, GOST
        return None


def _encrypted_pkcs8(data: bytes) -> Iterator[tuple[str, Match]]:
    """An EncryptedPrivateKeyInfo that a default (non-empty) password decrypts."""
    if max_iterations(data) > MAX_ITERATIONS:
        return
    for password in DEFAULT_PASSWORDS[1:]:
        try:
            key = load_der_private_key(data, password=password.encode())
        except (ValueError, TypeError, NotImplementedError):
            continue
        yield f"[der:pkcs8-encrypted password={password}]", _match(key)
        return


def _pkcs12(data: bytes) -> Iterator[tuple[str, Match]]:
    opened = _open_pkcs12(data)
    if opened is not None and opened[1] is not None:
        yield f'[pkcs12 password="{opened[0]}"]', _match(opened[1])


# A container is opened twice in one walk: for its private keys (entries/nested.py) and for its
# certificates (entries/pubkeys.py, correlation). Opening tries several passwords, each a key
# derivation, so the last few containers' answers are kept.
@functools.lru_cache(maxsize=4)
def _open_pkcs12(data: bytes) -> tuple[str, PrivateKeyTypes | None, list[x509.Certificate]] | None:
    """(the default password that opens it, its key, its certificates), or None."""
    if max_iterations(data) > MAX_ITERATIONS:
        return None
    for password in DEFAULT_PASSWORDS:
        tries: tuple[bytes | None, ...] = (None, b"") if password == "" else (password.encode(),)
        for attempt in tries:
            try:
                with warnings.catch_warnings():  # cryptography's deprecation notes on odd certificates
                    warnings.simplefilter("ignore")
                    key, cert, extra = pkcs12.load_key_and_certificates(data, attempt)
            except (ValueError, TypeError, NotImplementedError):
                continue
            return password, key, [c for c in (cert, *extra) if c is not None]
    return None


def _java(data: bytes) -> Iterator[tuple[str, Match]]:
    opened = _open_java(data)
    if opened is None:
        return
    password, store = opened
    shown = password or '""'
    for alias, entry in sorted(store.private_keys.items()):
        if not entry.is_decrypted():
            sealed = getattr(entry, "_encrypted", None)  # JCEKS: PBE parameters in the clear
            if isinstance(sealed, bytes) and max_iterations(sealed) > MAX_ITERATIONS:
                continue
            try:
                entry.decrypt(password)
            except Exception:  # noqa: BLE001 - the key has a password of its own
                continue
        key = _load_der(bytes(entry.pkey_pkcs8))
        if key is not None:
            yield f"[{store.store_type} alias={alias} password={shown}]", _match(key)


@functools.lru_cache(maxsize=4)
def _open_java(data: bytes) -> tuple[str, Any] | None:
    import jks  # pyjks: imported only when a Java keystore is met

    for password in DEFAULT_PASSWORDS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # keys are decrypted one by one, after their iteration counts are checked
                return password, jks.KeyStore.loads(data, password, try_decrypt_keys=False)
        except Exception:  # noqa: BLE001 - wrong password or a damaged store: pyjks raises many kinds
            continue
    return None


def certificates(data: bytes) -> list[x509.Certificate]:
    """The certificates of a PKCS#12 file or Java keystore that opens with a default password."""
    if len(data) > MAX_CONTAINER:
        return []
    if data[:4] in (JKS_MAGIC, JCEKS_MAGIC):
        opened = _open_java(data)
        if opened is None:
            return []
        store = opened[1]
        ders = [der for entry in store.private_keys.values() for _, der in entry.cert_chain]
        ders += [entry.cert for entry in store.certs.values()]
        out = []
        for der in ders:
            try:
                with warnings.catch_warnings():  # a non-positive serial number: a deprecation note
                    warnings.simplefilter("ignore")
                    out.append(x509.load_der_x509_certificate(bytes(der)))
            except (ValueError, TypeError):
                continue
        return out
    if der_shape(data) == "pkcs12" and der_length(data) == len(data):
        found = _open_pkcs12(data)
        return found[2] if found else []
    return []


def _match(key: PrivateKeyTypes) -> Match:
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")
    return validity.judged(Match(rule_id=RULE_ID, secret=pem.strip(), offset=0, line=1))


def max_iterations(data: bytes) -> int:
    """The largest iteration count of the password-based parameters in a DER structure: an
    INTEGER right after an OCTET STRING in a SEQUENCE (PBKDF2-params, PKCS#12 PBE params and
    MacData all have that shape), looking inside OCTET STRINGs that hold DER themselves."""
    return _iterations(data, 0)


def _iterations(data: bytes, depth: int) -> int:
    if depth > MAX_DER_DEPTH:
        return 0
    found = 0
    children = _children(data)
    if children is None:
        return 0
    for i, (tag, body) in enumerate(children):
        if tag == _INTEGER and i and children[i - 1][0] == _OCTET_STRING:
            found = max(found, int.from_bytes(body, "big") if len(body) <= 8 else MAX_ITERATIONS + 1)
        elif tag & 0x20 or tag == _OCTET_STRING:  # constructed, or DER wrapped in an octet string
            found = max(found, _iterations(body, depth + 1))
        if found > MAX_ITERATIONS:
            break
    return found


def _children(data: bytes) -> list[tuple[int, bytes]] | None:
    """The (tag, content) elements that exactly fill ``data``; None when it is not DER."""
    out = []
    pos = 0
    while pos < len(data):
        header = _header(data, pos)
        if header is None:
            return None
        start, length = header
        if start + length > len(data):
            return None
        out.append((data[pos], data[start : start + length]))
        pos = start + length
    return out
