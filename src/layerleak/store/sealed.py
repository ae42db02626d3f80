"""A match with its plaintext taken out: what a cached layer keeps of each secret it found.

A :class:`SealedMatch` carries the fingerprint and the redacted form, computed from the plaintext
when the layer was scanned, so a finding built from it is the same as one built from the live
:class:`~layerleak.models.Match` (except ``secret``, which ``--show-secrets`` gets by rescanning).

A secret that also appears in a build step (``RUN echo KEY > file``) must be scrubbed out of that
step's text. A sealed match finds it again there: among the substrings of the step with the
secret's length and redacted prefix, the one whose fingerprint matches *is* the secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from layerleak.findings.redact import fingerprint, redact, shown_count
from layerleak.models import Confidence, Match, Validity


@dataclass(frozen=True, slots=True)
class SealedMatch:
    rule_id: str
    fingerprint: str
    redacted: str
    length: int  # characters in the secret
    offset: int
    line: int
    confidence: Confidence = Confidence.HIGH
    reason: str | None = None
    validity: Validity | None = None  # holds no secret: kept as it is


AnyMatch = Match | SealedMatch


def seal(match: Match) -> SealedMatch:
    return SealedMatch(
        rule_id=match.rule_id,
        fingerprint=fingerprint(match.rule_id, match.secret),
        redacted=redact(match.secret),
        length=len(match.secret),
        offset=match.offset,
        line=match.line,
        confidence=match.confidence,
        reason=match.reason,
        validity=match.validity,
    )


def fingerprint_of(match: AnyMatch) -> str:
    if isinstance(match, SealedMatch):
        return match.fingerprint
    return fingerprint(match.rule_id, match.secret)


def redacted_of(match: AnyMatch) -> str:
    return match.redacted if isinstance(match, SealedMatch) else redact(match.secret)


def secret_of(match: AnyMatch) -> str:
    """The plaintext. Callers that show secrets rescan sealed layers first, so a sealed match
    here is a bug, not a user error."""
    if isinstance(match, SealedMatch):
        raise RuntimeError("a cached (sealed) match has no plaintext: rescan its layer")
    return match.secret


def plaintexts(matches: Iterable[AnyMatch], texts: Iterable[str | None]) -> list[str]:
    """The secrets to scrub from ``texts``: every live match's plaintext, and every sealed
    match's plaintext that occurs in one of ``texts`` (found again by its fingerprint)."""
    out: list[str] = []
    sealed: list[SealedMatch] = []
    for m in matches:
        if isinstance(m, SealedMatch):
            sealed.append(m)
        else:
            out.append(m.secret)
    if sealed:
        candidates = [t for t in set(texts) if t]
        for m in {(s.rule_id, s.fingerprint, s.redacted, s.length): s for s in sealed}.values():
            found = _find(m, candidates)
            if found is not None:
                out.append(found)
    return out


def _find(m: SealedMatch, texts: list[str]) -> str | None:
    prefix = _shown_prefix(m)
    for text in texts:
        pos = text.find(prefix)
        while 0 <= pos <= len(text) - m.length:
            candidate = text[pos : pos + m.length]
            if fingerprint(m.rule_id, candidate) == m.fingerprint:
                return candidate
            pos = text.find(prefix, pos + 1)
    return None


def _shown_prefix(m: SealedMatch) -> str:
    """The plaintext's first characters, as many as the redacted form shows (see
    :func:`~layerleak.findings.redact.shown_count`); "" for a PEM block, whose form shows its
    label, not its first characters (every position is tried)."""
    if m.redacted.startswith("["):
        return ""
    return m.redacted[: shown_count(m.length)].split("*", 1)[0]
