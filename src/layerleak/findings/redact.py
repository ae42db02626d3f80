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


MAX_SHOWN = 6  # leading characters a redacted form shows, at most
_PEM_LABEL = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,40})-----")
_MAX_LABEL = 21  # "ENCRYPTED PRIVATE KEY", "PGP PRIVATE KEY BLOCK"


def shown_count(length: int) -> int:
    """How many leading characters of a secret of ``length`` characters its redacted form shows:
    none below 8, then a quarter of it, never more than MAX_SHOWN."""
    return 0 if length < 8 else min(MAX_SHOWN, length // 4)


def redact(secret: str) -> str:
    """Enough to recognise a secret you already know, never enough to use it.

    The form is short and bounded whatever the secret's shape (at most 48 characters): a few
    leading characters, eight stars and the length, ``ghp_Ab******** (40 chars)``. A PEM block
    shows its label instead of its first characters (which are armor), from the armor only:
    ``[RSA PRIVATE KEY] ******** (1679 chars)``, whether its newlines are real, escaped (``\\n``
    in a JSON string) or missing.
    """
    n = len(secret)
    head = secret.lstrip(" \t\r\n'\"")
    if head.startswith("-----BEGIN"):
        m = _PEM_LABEL.match(head)
        label = " ".join(m.group(1).split())[:_MAX_LABEL] if m else "PEM"
        return f"[{label}] ******** ({n} chars)"
    return secret[: shown_count(n)] + "*" * 8 + f" ({n} chars)"


def scrub(text: str | None, secrets: Iterable[str]) -> str | None:
    """Replace every known secret inside ``text`` (a history step, an env line) by its redaction,
    and every base64 value whose decoded text holds one (``RUN echo LS0tLS1CRUdJTi... | base64
    -d > key``) by the redaction of that value."""
    if text is None:
        return None
    known = sorted({s for s in secrets if s}, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, redact(secret))
    if known:
        text = _B64_RUN.sub(lambda m: _scrub_run(m.group(0), known), text)
    return text


_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


def decoded_views(texts: Iterable[str | None]) -> list[str]:
    """The decoded text of every base64 value in ``texts``: where a cached (sealed) secret is
    found again when a step holds it only encoded."""
    views: list[str] = []
    for text in texts:
        for m in _B64_RUN.finditer(text or ""):
            decoded = _decoded(m.group(0))
            if decoded is not None:
                views.append(decoded)
    return views


def _decoded(run: str) -> str | None:
    from layerleak.entries.decoders import decode_base64  # the scanner's own test of base64 text

    raw = decode_base64(run.encode("ascii"))
    return None if raw is None else raw.decode("utf-8", "replace")


def _scrub_run(run: str, secrets: list[str]) -> str:
    decoded = _decoded(run)
    if decoded is None or not any(s in decoded for s in secrets):
        return run
    return redact(run)


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
