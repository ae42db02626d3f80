"""--min-confidence: findings below it leave the report, are counted, and never fail the scan."""

from __future__ import annotations

from layerleak.findings.policy import EXIT_CLEAN, EXIT_FINDINGS, exit_code, min_confidence
from layerleak.models import (
    Confidence,
    Finding,
    ImageResult,
    Location,
    ScanReport,
    Severity,
    SourceKind,
    TargetResult,
)


def _report(*confidences: Confidence) -> ScanReport:
    findings = tuple(
        Finding(rule_id="r", title="R", severity=Severity.HIGH, confidence=c, target="t", image="i",
                image_id=None, location=Location(source=SourceKind.LAYER, path=f"/{i}"),
                fingerprint=str(i), redacted="x")
        for i, c in enumerate(confidences)
    )
    image = ImageResult(target="t", image="i", image_id=None, platform=None, layers=(), bytes_scanned=0,
                        errors=(), findings=findings)
    return ScanReport(targets=(TargetResult(target="t", images=(image,)),), ruleset="x")


def test_low_findings_are_hidden_and_counted() -> None:
    report = min_confidence(_report(Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH), Confidence.MEDIUM)
    (image,) = report.targets[0].images
    assert [f.confidence for f in image.findings] == [Confidence.MEDIUM, Confidence.HIGH]
    assert image.hidden_findings == 1
    assert min_confidence(report, Confidence.HIGH).targets[0].images[0].hidden_findings == 2


def test_hidden_findings_do_not_fail_the_scan() -> None:
    only_vendor = _report(Confidence.LOW)
    assert exit_code(min_confidence(only_vendor, Confidence.MEDIUM), Severity.LOW) == EXIT_CLEAN
    assert exit_code(min_confidence(only_vendor, Confidence.LOW), Severity.LOW) == EXIT_FINDINGS
