"""A scanned layer as JSON for the cache, with every plaintext secret sealed first.

Every field of :class:`~layerleak.layers.walk.LayerScan` but ``key`` and ``hits`` goes into one
JSON body (entries, whiteouts and opaque directories are what status needs; the counters and
notes are what the report shows). Values are encoded by shape, so a field added to LayerScan is
cached without a change here: sets, frozensets and tuples are tagged, dictionaries keep string
keys. A :class:`~layerleak.models.Match` anywhere in it is refused: plaintext never gets this far.
Hits become rows of their own (see :mod:`layerleak.store.cache`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from layerleak.layers.scanned import FileHit, LayerScan
from layerleak.models import Confidence, Match, Validity
from layerleak.store.sealed import SealedMatch, seal

_TAGS = ("$set", "$frozenset", "$tuple")


class NotCacheable(ValueError):
    """This layer's scan holds something the codec will not store; it is simply not cached."""


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Match | SealedMatch):
        raise NotCacheable("a match outside the hits")
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, frozenset):
        return {"$frozenset": sorted((_encode(v) for v in value), key=_sort_key)}
    if isinstance(value, set):
        return {"$set": sorted((_encode(v) for v in value), key=_sort_key)}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or k in _TAGS:
                raise NotCacheable(f"a dictionary key {type(k).__name__}")
            out[k] = _encode(v)
        return out
    raise NotCacheable(f"a value of type {type(value).__name__}")


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            tag, items = next(iter(value.items()))
            if tag == "$tuple":
                return tuple(_decode(v) for v in items)
            if tag == "$set":
                return {_decode(v) for v in items}
            if tag == "$frozenset":
                return frozenset(_decode(v) for v in items)
        return {k: _decode(v) for k, v in value.items()}
    return value


_BODY_SKIP = ("key", "hits")


def encode_body(scan: LayerScan) -> bytes:
    fields = {
        f.name: _encode(getattr(scan, f.name))
        for f in dataclasses.fields(scan)
        if f.name not in _BODY_SKIP
    }
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_body(key: str, body: bytes, hits: list[FileHit]) -> LayerScan:
    fields = _decode(json.loads(body.decode("utf-8")))
    return LayerScan(key=key, hits=hits, **fields)


@dataclasses.dataclass(frozen=True, slots=True)
class HitRow:
    """One sealed hit as the ``hits`` table holds it."""

    path: str
    inner_path: str | None
    rule_id: str
    fingerprint: str
    redacted: str
    length: int
    offset: int
    line: int
    confidence: int
    reason: str | None
    extra: str  # JSON of FileHit fields this module does not know by name


_HIT_KNOWN = ("path", "match", "inner_path")
_VALIDITY = "$validity"  # the match's validity (no secret in it), kept in ``extra``


def hit_row(hit: FileHit) -> HitRow:
    match = hit.match
    sealed = match if isinstance(match, SealedMatch) else seal(match)
    extra = {
        f.name: _encode(getattr(hit, f.name))
        for f in dataclasses.fields(hit)
        if f.name not in _HIT_KNOWN
    }
    if sealed.validity is not None:
        extra[_VALIDITY] = [sealed.validity.format, [list(pair) for pair in sealed.validity.detail]]
    return HitRow(
        path=hit.path,
        inner_path=hit.inner_path,
        rule_id=sealed.rule_id,
        fingerprint=sealed.fingerprint,
        redacted=sealed.redacted,
        length=sealed.length,
        offset=sealed.offset,
        line=sealed.line,
        confidence=int(sealed.confidence),
        reason=sealed.reason,
        extra=json.dumps(extra, separators=(",", ":"), ensure_ascii=False),
    )


def file_hit(row: HitRow) -> FileHit:
    extra = _decode(json.loads(row.extra)) if row.extra else {}
    kept = extra.pop(_VALIDITY, None)
    validity = Validity(kept[0], tuple((k, v) for k, v in kept[1])) if kept else None
    match = SealedMatch(
        rule_id=row.rule_id,
        fingerprint=row.fingerprint,
        redacted=row.redacted,
        length=row.length,
        offset=row.offset,
        line=row.line,
        confidence=Confidence(row.confidence),
        reason=row.reason,
        validity=validity,
    )
    return FileHit(path=row.path, match=match, inner_path=row.inner_path, **extra)
