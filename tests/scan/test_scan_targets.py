"""scan_targets: the library call behind ``layerleak scan``, streamed one target at a time."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import Built
from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.models import Confidence
from layerleak.scan import ScanOptions, TargetOptions, issue_lines, scan_targets
from layerleak.scan.targets import target_key

ENGINE = Engine(load_rules(()))


def test_results_stream_one_per_distinct_target(handmade_images: Built, tmp_path: Path) -> None:
    opaque = handmade_images.target("opaque")
    transport, _, path = opaque.partition(":")
    relative = os.path.relpath(path)
    missing = f"docker-archive:{tmp_path / 'missing.tar'}"
    stream = scan_targets([opaque, f"{transport}:{relative}", missing, opaque], ENGINE, TargetOptions())
    first = next(stream)  # the first result arrives before the next target is opened
    assert first.target == opaque and first.error is None and first.images
    rest = list(stream)
    assert [r.target for r in rest] == [missing]  # the same file twice is scanned once
    assert rest[0].error is not None and missing in rest[0].error
    assert issue_lines(rest[0]) == [(True, rest[0].error)]


def test_confidence_cut_counts_what_it_hides(handmade_images: Built) -> None:
    target = handmade_images.target("opaque")
    shown = next(scan_targets([target], ENGINE, TargetOptions(min_confidence=Confidence.LOW)))
    strict = next(scan_targets([target], ENGINE, TargetOptions(
        scan=ScanOptions(), min_confidence=Confidence.HIGH)))
    total = sum(len(i.findings) for i in shown.images)
    kept = sum(len(i.findings) for i in strict.images)
    hidden = sum(i.hidden_findings for i in strict.images)
    assert total > 0 and kept + hidden == total
    assert all(f.confidence >= Confidence.HIGH for i in strict.images for f in i.findings)


def test_target_keys() -> None:
    here = os.path.realpath(".")
    assert target_key("oci:./x:ref") == target_key(f"oci:{here}/x:ref")
    assert target_key("oci:x:a") != target_key("oci:x:b")
    assert target_key("docker://h:5000/r:1") == ("docker", "//h:5000/r:1")
