"""Findings from annotations, attestations and git history, and a key's related certificates,
rendered by every format (the golden sample predates them)."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from report_sample import SAMPLE_RULES, finding

from layerleak.models import (
    GitOrigin,
    ImageResult,
    LayerSummary,
    Location,
    Related,
    ScanReport,
    Severity,
    SourceKind,
    Status,
    TargetResult,
)
from layerleak.report.formats import FORMATS, renderer
from layerleak.report.interface import RenderOptions

DIGEST = "sha256:" + "ab" * 32
ATTESTATION_KEY = "https://slsa.dev/provenance/v0.2 predicate.invocation.parameters.args.build-arg:TOKEN"
FINGERPRINT = "SHA256:" + base64.b64encode(bytes.fromhex("cd" * 32)).decode().rstrip("=")


def report() -> ScanReport:
    git = finding(
        "aws-access-key-id", "AWS access key ID", Severity.HIGH,
        Location(source=SourceKind.LAYER, layer_index=0, layer_digest=DIGEST, created_by="COPY . /app",
                 path="/app/.git/objects/pack/pack-" + "1" * 40 + ".pack",
                 inner_path="[git] 26daebccc999:config/prod.env", line=2, status=Status.PRESENT,
                 git=GitOrigin("26daebccc999" + "0" * 28, "config/prod.env", "8f" * 20, True, False)),
        "0123456789abcdef0123456789abcdef", "AKIA******** (20 chars)",
    )
    key = finding(
        "private-key", "Private key", Severity.CRITICAL,
        Location(source=SourceKind.LAYER, layer_index=0, layer_digest=DIGEST, path="/srv/tls.key", line=1,
                 status=Status.PRESENT),
        "11112222333344445555666677778888", "[PRIVATE KEY] ******** (1704 chars)",
    )
    cert = Related("certificate", FINGERPRINT, 0, "/etc/ssl/certs/server.crt", "CN=api.internal.test")
    key = dataclasses.replace(key, related=(cert,))
    annotation = finding(
        "url-credentials", "Credentials in a URL", Severity.HIGH,
        Location(source=SourceKind.ANNOTATION, key="org.opencontainers.image.source"),
        "22223333444455556666777788889999", "Zq8x******** (20 chars)",
    )
    attestation = finding(
        "github-pat-classic", "GitHub personal access token", Severity.CRITICAL,
        Location(source=SourceKind.ATTESTATION, key=ATTESTATION_KEY),
        "33334444555566667777888899990000", "ghp_ab******** (40 chars)",
    )
    image = ImageResult(
        target="oci:app", image="app:1", image_id="sha256:" + "ef" * 32, platform="linux/amd64",
        layers=(LayerSummary(0, DIGEST, None, None, "COPY . /app", 4096, 3),), bytes_scanned=4096,
        errors=(), findings=(git, key, annotation, attestation),
    )
    return ScanReport(targets=(TargetResult("oci:app", (image,)),), ruleset="0011223344556677")


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_renders_the_new_places(name: str) -> None:
    text = renderer(name).render(report(), RenderOptions(rules=SAMPLE_RULES, width=120))
    assert "org.opencontainers.image.source" in text
    assert "build-arg:TOKEN" in text
    assert "26daebccc999:config/prod.env" in text


def test_json_fields() -> None:
    doc = json.loads(renderer("json").render(report(), RenderOptions(rules=SAMPLE_RULES)))
    git, key, annotation, attestation = doc["findings"]
    assert git["git"] == {"commit": "26daebccc999" + "0" * 28, "path": "config/prod.env", "object": "8f" * 20,
                          "reachable": True, "in_worktree": False}
    assert key["related"] == [{"kind": "certificate", "fingerprint": FINGERPRINT, "spki_sha256": "cd" * 32,
                               "layer_index": 0,
                               "path": "/etc/ssl/certs/server.crt", "detail": "CN=api.internal.test"}]
    assert (annotation["source"], annotation["key"]) == ("annotation", "org.opencontainers.image.source")
    assert (attestation["source"], attestation["key"]) == ("attestation", ATTESTATION_KEY)


def test_table_groups() -> None:
    text = renderer("table").render(report(), RenderOptions(rules=SAMPLE_RULES, width=200))
    assert text.index("Annotations") < text.index("Attestations")
    assert "2 in config, history, annotations or attestations" in text


def test_table_shows_related() -> None:
    text = renderer("table").render(report(), RenderOptions(rules=SAMPLE_RULES, width=200))
    assert "its certificate: layer 0 /etc/ssl/certs/server.crt (CN=api.internal.test)" in text
