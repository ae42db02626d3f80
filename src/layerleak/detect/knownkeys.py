"""Private keys that are not secret: published, or derivable from their own public half.

The `badkeys` package (Hanno Böck, MIT) recognises them from the public key:

- **offline checks**, shipped with the package: Fermat factorisation (primes close together),
  ROCA (Infineon's weak generator), small prime factors, invalid values, the 0-byte pattern that
  allows polynomial factoring, primes shared with known weak keys, a small private exponent
  (Wiener) and sparse DSA keys. A key any of them flags can be recovered by anyone who has its
  public key. It is still somebody's real key, leaked *and* weak: its finding keeps its
  confidence and names the check (``validity.detail.badkeys``), so the owner replaces it.
- **the blocklist** of published private keys (vendor test keys, the Debian weak keys of 2008,
  keys in documentation and public repositories). It is not in the package: ``badkeys
  --update-bl`` (badkeys installs that command with layerleak) downloads it into its cache directory
  (``$XDG_CACHE_HOME/badkeys/``, else ``~/.cache/badkeys/``). Without it only the offline checks
  run, and :func:`blocklist_missing` says so.

:func:`recognised` gives the name of the check that flagged a key (``blocklist`` with the name of
the list, ``fermat``, ``roca`` ...), or None. A key on the blocklist has its finding demoted,
never dropped (:mod:`layerleak.detect.validity`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

BLOCKLIST_FILES = ("badkeysdata.json", "blocklist.dat")
MISSING = (
    "badkeys' blocklist of published private keys is not installed (`badkeys --update-bl` downloads "
    "it): private keys were checked with its offline checks only"
)


def cache_dir() -> Path:
    """Where ``badkeys --update-bl`` puts the blocklist (badkeys' own rule)."""
    base = os.environ.get("XDG_CACHE_HOME")
    return Path(base, "badkeys") if base else Path.home() / ".cache" / "badkeys"


def blocklist_missing() -> bool:
    folder = cache_dir()
    return not all((folder / name).is_file() for name in BLOCKLIST_FILES)


def state() -> str:
    """Which blocklist a scan's results depend on (part of the layer cache's engine key): a
    layer scanned before the blocklist was installed is scanned again after."""
    if blocklist_missing():
        return "offline"
    meta = (cache_dir() / BLOCKLIST_FILES[0]).read_bytes()
    return "blocklist-" + hashlib.sha256(meta).hexdigest()[:12]


def _checks() -> list[str]:
    import badkeys

    names = [name for name in badkeys.defaultchecks if name != "blocklist"]
    if not blocklist_missing():
        names.append("blocklist")
    return names


def recognised(public_key: Any) -> str | None:
    """The badkeys check that recognises ``public_key`` (a ``cryptography`` public key), as
    ``check`` or ``check:subtest`` (``blocklist:debianssl``), or None."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    try:
        import badkeys

        pem = public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
        found = badkeys.checkpubkey(pem, checks=_checks())
    except (Exception, SystemExit):  # noqa: BLE001 - badkeys exits the process on a damaged blocklist
        return None
    results = found.get("results") or {}
    for check in sorted(results, key=lambda name: name != "blocklist"):  # the blocklist names the key best
        subtest = results[check].get("subtest") if isinstance(results[check], dict) else None
        return f"{check}:{subtest}" if subtest else str(check)
    return None
