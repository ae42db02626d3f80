"""Turn matches into findings: fingerprints, redaction, and scrubbing secrets out of other text."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

FINGERPRINT_VERSION = "v1"


def fingerprint(rule_id: str, secret: str) -> str:
    """Stable across images, machines and runs: the same secret under the same rule."""
    digest = hashlib.sha256(f"layerleak:{FINGERPRINT_VERSION}:{rule_id}:{secret}".encode())
    return digest.hexdigest()[:32]


def redact(secret: str) -> str:
    """Enough to recognise a secret you already know, never enough to use it."""
    first_line = secret.strip().splitlines()[0] if secret.strip() else ""
    if first_line.startswith("-----BEGIN"):
        return first_line + " …(redacted)"
    n = len(secret)
    if n >= 24:
        shown = 6
    elif n >= 12:
        shown = 4
    elif n >= 8:
        shown = 2
    else:
        shown = 0
    return secret[:shown] + "*" * 8 + f" ({n} chars)"


def scrub(text: str | None, secrets: Iterable[str]) -> str | None:
    """Replace every known secret inside ``text`` (a history step, an env line) by its redaction."""
    if text is None:
        return None
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, redact(secret))
    return text


_BUILD_ARGS = re.compile(r"^\|(\d+) ")
_ARG_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)")
_SENSITIVE_NAME = re.compile(r"(?i)pass|secret|token|key|auth|cred|pwd|private")


def scrub_build_args(text: str | None) -> str | None:
    """Mask the values of sensitive-looking build ARGs in a history step (``|2 A=.. B=.. cmd``),
    even when no rule flagged them: a history line is shown in every report."""
    if text is None:
        return None
    m = _BUILD_ARGS.match(text)
    if not m:
        return text
    count, pos, out = int(m.group(1)), m.end(), [text[: m.end()]]
    for _ in range(count):
        pair = _ARG_PAIR.match(text, pos)
        if not pair:
            break
        name, value = pair.group(1), pair.group(2)
        shown = redact(value) if value and _SENSITIVE_NAME.search(name) and "*" * 8 not in value else value
        out.append(f"{name}={shown}")
        pos = pair.end()
        if text[pos : pos + 1] == " ":
            out.append(" ")
            pos += 1
    out.append(text[pos:])
    return "".join(out)
