"""Exit codes, the contract CI relies on, and the confidence cut that decides what is reported."""

from __future__ import annotations

import dataclasses

from layerleak.models import Confidence, ScanReport, Severity, TargetResult

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


def parse_fail_on(value: str) -> Severity | None:
    """``none`` means never fail on findings."""
    return None if value.lower() == "none" else Severity.parse(value)


def exit_code(report: ScanReport, fail_on: Severity | None) -> int:
    """2 if anything could not be scanned (a clean result would be a lie), else 1 if any finding
    is at or above ``fail_on``, else 0."""
    if report.has_errors:
        return EXIT_ERROR
    if fail_on is not None and any(f.severity >= fail_on for f in report.findings):
        return EXIT_FINDINGS
    return EXIT_CLEAN


def confidence_cut(target: TargetResult, minimum: Confidence) -> TargetResult:
    """The target without findings below ``minimum`` (vendor content is ``low``); each image
    counts what it hid in ``hidden_findings``, so a report never hides silently."""
    images = []
    for image in target.images:
        kept = tuple(f for f in image.findings if f.confidence >= minimum)
        images.append(
            dataclasses.replace(
                image,
                findings=kept,
                hidden_findings=image.hidden_findings + len(image.findings) - len(kept),
            )
        )
    return dataclasses.replace(target, images=tuple(images))


def min_confidence(report: ScanReport, minimum: Confidence) -> ScanReport:
    """:func:`confidence_cut` for every target of a report."""
    return dataclasses.replace(report, targets=tuple(confidence_cut(t, minimum) for t in report.targets))
