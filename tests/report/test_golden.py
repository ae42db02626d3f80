"""Golden files for every report format. Regenerate with LAYERLEAK_UPDATE_GOLDEN=1 after a
deliberate change, and review the diff: these files are the output contract."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from layerleak.models import (
    Confidence,
    Finding,
    ImageResult,
    LayerSummary,
    Location,
    ScanIssue,
    ScanReport,
    Severity,
    SourceKind,
    Status,
    TargetResult,
    Validity,
)
from layerleak.report.json_report import JSON_VERSION, render_json
from layerleak.report.table import WIDTH, render_table

GOLDEN = Path(__file__).parent / "golden"
DIGEST = "sha256:" + "ab" * 32


def sample_report() -> ScanReport:
    layers = (
        LayerSummary(0, DIGEST, None, None, "/bin/sh -c #(nop) COPY file:1234 in /root/.aws/credentials",
                     4096, 3),
        LayerSummary(1, "sha256:" + "cd" * 32, None, None, "|1 DB_PASSWORD=hu******** (14 chars) "
                     "/bin/sh -c rm /root/.aws/credentials", 1024, 0),
    )
    file_finding = Finding(
        rule_id="aws-access-key-id",
        title="AWS access key ID",
        severity=Severity.HIGH,
        confidence=Confidence.HIGH,
        target="docker-archive:leaky.tar",
        image="leaky:latest",
        image_id="sha256:" + "ef" * 32,
        location=Location(
            source=SourceKind.LAYER, layer_index=0, layer_digest=DIGEST,
            created_by=layers[0].created_by, path="/root/.aws/credentials", line=2,
            status=Status.DELETED, removed_in_layer=1,
        ),
        fingerprint="0123456789abcdef0123456789abcdef",
        redacted="AKIA******** (20 chars)",
        validity=Validity("parsed", (("account", "123456789012"), ("key_type", "long-term"))),
    )
    env_finding = Finding(
        rule_id="generic-password",
        title="Generic secret assignment",
        severity=Severity.MEDIUM,
        confidence=Confidence.MEDIUM,
        target="docker-archive:leaky.tar",
        image="leaky:latest",
        image_id="sha256:" + "ef" * 32,
        location=Location(source=SourceKind.CONFIG, key="API_TOKEN"),
        fingerprint="fedcba9876543210fedcba9876543210",
        redacted="Zx8#******** (16 chars)",
    )
    image = ImageResult(
        target="docker-archive:leaky.tar",
        image="leaky:latest",
        image_id="sha256:" + "ef" * 32,
        platform="linux/amd64",
        layers=layers,
        bytes_scanned=5120,
        errors=(ScanIssue("layer is truncated (after 1024 uncompressed bytes)", 1, layers[1].digest),),
        findings=(file_finding, env_finding),
    )
    return ScanReport(
        targets=(
            TargetResult("docker-archive:leaky.tar", (image,)),
            TargetResult("missing.tar", error="missing.tar: no such file or directory"),
        ),
        ruleset="0011223344556677",
    )


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LAYERLEAK_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with LAYERLEAK_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_json_golden() -> None:
    text = render_json(sample_report())
    doc = json.loads(text)
    assert doc["version"] == JSON_VERSION
    check("report.json", text.replace(doc["tool"]["version"], "VERSION"))


def test_table_golden_fits_80_columns() -> None:
    text = render_table(sample_report())
    assert all(len(line) <= WIDTH for line in text.splitlines())
    check("report.txt", text)


@pytest.mark.parametrize("render", [render_json, render_table])
def test_no_secret_in_default_output(render: object) -> None:
    text = render(sample_report())  # type: ignore[operator]
    assert "hunter2" not in text
