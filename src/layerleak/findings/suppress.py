"""Findings a team has already dealt with, left out of a report: a baseline and ignore entries.

A finding's identity across rebuilds is its fingerprint (the rule and the secret) and its path
(:func:`match_path`): line numbers and layer digests move when an image is rebuilt, so they are
not part of it. A baseline is a previous JSON report; an ignore entry (``[[ignore]]`` in
``.layerleak.toml``, :mod:`layerleak.settings`) names a fingerprint, a rule, a path glob or an
image glob (all that it names must match) and always a reason; past its ``expires`` date it no
longer applies, and :meth:`Suppressor.notes` says so. Left-out findings are counted in each
image's ``baselined`` and ``ignored``, so a report never hides silently, and do not change the
exit code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from layerleak.errors import UsageError
from layerleak.models import Finding, SourceKind, TargetResult

BASELINE_VERSION = 1  # the JSON report's version: a baseline is a JSON report


def path_key(source: str, path: str | None, inner_path: str | None, key: str | None) -> str:
    if source == str(SourceKind.LAYER):
        return (path or "") + (f" ! {inner_path}" if inner_path else "")
    if source == str(SourceKind.CONFIG):
        return f"config:{key or ''}"
    return "history"  # a history step's index moves when a step is added: the secret is the identity


def match_path(f: Finding) -> str:
    """The path part of a finding's identity: the in-image path (and the member of an archive
    inside it), ``config:KEY``, or ``history``; never a line number or a layer digest."""
    loc = f.location
    return path_key(str(loc.source), loc.path, loc.inner_path, loc.key)


def match_key(f: Finding) -> tuple[str, str]:
    return (f.fingerprint, match_path(f))


@dataclass(frozen=True, slots=True)
class Baseline:
    """The (fingerprint, path) pairs of a previous report's findings."""

    keys: frozenset[tuple[str, str]]
    origin: str = ""

    @classmethod
    def from_report(cls, doc: Mapping[str, Any], origin: str) -> Baseline:
        findings = doc.get("findings")
        if doc.get("version") != BASELINE_VERSION or not isinstance(findings, list):
            raise UsageError(f"{origin}: not a layerleak JSON report (version {BASELINE_VERSION}) "
                             "to use as a baseline")
        keys: set[tuple[str, str]] = set()
        for item in findings:
            if not isinstance(item, dict) or not isinstance(item.get("fingerprint"), str):
                raise UsageError(f"{origin}: a finding without a fingerprint; not a layerleak report")
            for loc in item.get("locations") or [item]:
                if isinstance(loc, dict):
                    keys.add((item["fingerprint"], path_key(
                        str(loc.get("source")), loc.get("path"), loc.get("inner_path"), loc.get("key"))))
        return cls(frozenset(keys), origin)

    @classmethod
    def load(cls, path: Path) -> Baseline:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"--baseline {path}: cannot read it ({exc.strerror})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"--baseline {path}: not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise UsageError(f"--baseline {path}: not a layerleak JSON report")
        return cls.from_report(doc, str(path))

    def __contains__(self, f: object) -> bool:
        return isinstance(f, Finding) and match_key(f) in self.keys


@dataclass(frozen=True, slots=True)
class IgnoreEntry:
    """One ``[[ignore]]`` entry. Every criterion it names must match; it names at least one."""

    reason: str
    fingerprint: str | None = None
    rule: str | None = None
    path: str | None = None  # a glob over the in-image path (``*`` also matches ``/``)
    image: str | None = None  # a glob over the image name or the target
    expires: dt.date | None = None
    origin: str = ""  # "FILE [[ignore]] #N", for messages

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and today > self.expires

    def matches(self, f: Finding) -> bool:
        loc = f.location
        return (
            (self.fingerprint is None or f.fingerprint == self.fingerprint)
            and (self.rule is None or fnmatchcase(f.rule_id, self.rule))
            and (self.path is None or (loc.path is not None and fnmatchcase(loc.path, self.path)))
            and (self.image is None or fnmatchcase(f.image or "", self.image)
                 or fnmatchcase(f.target, self.image))
        )

    def describe(self) -> str:
        named = [f"{k} = {v!r}" for k, v in (("fingerprint", self.fingerprint), ("rule", self.rule),
                                            ("path", self.path), ("image", self.image)) if v is not None]
        return f"{self.origin} ({', '.join(named)})"


class Suppressor:
    """Applies a baseline and ignore entries to each target's result as it comes."""

    def __init__(self, baseline: Baseline | None = None, ignores: Sequence[IgnoreEntry] = (),
                 today: dt.date | None = None) -> None:
        self.today = today or dt.date.today()
        self.baseline = baseline
        self.active = tuple(e for e in ignores if not e.expired(self.today))
        self.expired = tuple(e for e in ignores if e.expired(self.today))

    def notes(self) -> list[str]:
        """One line per expired ignore entry: it stopped applying, and the reader should know."""
        return [f"ignore entry {e.describe()} expired on {e.expires}: it no longer applies"
                for e in self.expired]

    def apply(self, target: TargetResult) -> TargetResult:
        if self.baseline is None and not self.active:
            return target
        images = []
        for image in target.images:
            kept, baselined, ignored = [], 0, 0
            for f in image.findings:
                if self.baseline is not None and f in self.baseline:
                    baselined += 1
                elif any(e.matches(f) for e in self.active):
                    ignored += 1
                else:
                    kept.append(f)
            images.append(dataclasses.replace(
                image, findings=tuple(kept), baselined=image.baselined + baselined,
                ignored=image.ignored + ignored,
            ))
        return dataclasses.replace(target, images=tuple(images))

    def apply_all(self, targets: Iterable[TargetResult]) -> list[TargetResult]:
        return [self.apply(t) for t in targets]
