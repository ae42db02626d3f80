"""One finding per secret per file: the same secret at the same path in several layers (a file
copied, then touched by a later step) is one finding that lists every location.

Findings merge when they share the fingerprint (rule and secret), the path and the inner path.
The merged finding keeps the lowest layer's location as its own (where the secret first entered
the image) and lists the others in ``other_locations``, in layer order; its confidence is the
highest of the merged findings (a copy that is not vendor content is a leak). Config and history
findings, which have no path, are never merged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from layerleak.models import Finding, SourceKind


def _layer(f: Finding) -> int:
    return f.location.layer_index if f.location.layer_index is not None else -1


def dedup(findings: Iterable[Finding]) -> list[Finding]:
    """Merge file-borne findings of one secret in one file across layers; order is preserved
    (each merged finding takes the place of its first member)."""
    groups: dict[tuple[str, str, str | None], list[Finding]] = {}
    order: list[tuple[str, str, str | None] | int] = []
    singles: list[Finding] = []
    for f in findings:
        loc = f.location
        if loc.source is not SourceKind.LAYER or loc.path is None:
            order.append(len(singles))
            singles.append(f)
            continue
        key = (f.fingerprint, loc.path, loc.inner_path)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(f)
    out: list[Finding] = []
    for item in order:
        if isinstance(item, int):
            out.append(singles[item])
        else:
            out.append(_merge(groups[item]))
    return out


def _merge(group: list[Finding]) -> Finding:
    if len(group) == 1:
        return group[0]
    ordered = sorted(group, key=lambda f: (_layer(f), f.location.line or 0))
    first = ordered[0]
    strongest = max(ordered, key=lambda f: f.confidence)
    others = tuple(loc for f in ordered[1:] for loc in (f.location, *f.other_locations))
    return dataclasses.replace(
        first,
        confidence=strongest.confidence,
        reason=strongest.reason,
        other_locations=(*first.other_locations, *others),
    )
