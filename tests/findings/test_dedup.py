"""One finding per secret per file across layers, listing every location; fingerprints stable."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import handmade
import plant
import pytest

from layerleak.findings.dedup import dedup
from layerleak.findings.redact import fingerprint
from layerleak.models import Confidence, Finding, Location, Severity, SourceKind

if TYPE_CHECKING:
    from conftest import Layerleak


def _finding(layer: int, path: str, fp: str = "f1", confidence: Confidence = Confidence.HIGH,
             source: SourceKind = SourceKind.LAYER) -> Finding:
    return Finding(
        rule_id="r", title="R", severity=Severity.HIGH, confidence=confidence, target="t", image="i",
        image_id=None, location=Location(source=source, layer_index=layer, path=path, line=layer + 1),
        fingerprint=fp, redacted="x", reason="vendor" if confidence is Confidence.LOW else None,
    )


def test_same_secret_same_file_merges_lowest_layer_first() -> None:
    merged = dedup([_finding(2, "/a", confidence=Confidence.LOW), _finding(0, "/a"), _finding(1, "/b")])
    assert [(f.location.path, f.location.layer_index) for f in merged] == [("/a", 0), ("/b", 1)]
    assert [loc.layer_index for loc in merged[0].other_locations] == [2]
    assert (merged[0].confidence, merged[0].reason) == (Confidence.HIGH, None)  # the strongest


def test_different_secret_or_config_findings_stay_apart() -> None:
    config = dataclasses.replace(_finding(0, "/a"), location=Location(source=SourceKind.CONFIG, key="Env"))
    findings = [_finding(0, "/a"), _finding(1, "/a", fp="f2"), config, config]
    assert dedup(findings) == findings


@pytest.fixture(scope="module")
def layered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    token = plant.github_pat_classic()
    text = f"# app\nGITHUB_TOKEN={token}\n"
    layers = [
        handmade.layer_tar([handmade.directory("etc"), handmade.file("etc/app.env", text)]),
        handmade.layer_tar([handmade.directory("etc"), handmade.file("etc/app.env", text, 0o600)]),
        handmade.layer_tar([handmade.directory("srv"), handmade.file("srv/copy.env", text)]),
    ]
    config = handmade.image_config(
        layers,
        [{"created_by": "COPY app.env /etc/"}, {"created_by": "RUN chmod 600 /etc/app.env"},
         {"created_by": "RUN cp /etc/app.env /srv/copy.env"}],
    )
    archive = tmp_path_factory.mktemp("dedup") / "dedup.tar"
    handmade.write_docker_archive(archive, [handmade.LegacyImage(["dedup:1"], layers, config)])
    return archive, token


def test_one_finding_per_file_across_layers(layerleak: Layerleak, layered: tuple[Path, str]) -> None:
    archive, token = layered
    run = layerleak("scan", f"docker-archive:{archive}", "--format", "json")
    assert run.returncode == 1, run.describe()
    findings = run.report["findings"]
    assert [(f["path"], f["layer_index"], f["status"]) for f in findings] == [
        ("/etc/app.env", 0, "overwritten"), ("/srv/copy.env", 2, "present")]
    first = findings[0]
    assert [(x["layer_index"], x["status"], x["line"]) for x in first["locations"]] == [
        (0, "overwritten", 2), (1, "present", 2)]
    assert {f["fingerprint"] for f in findings} == {fingerprint("github-pat-classic", token)}
    assert run.report["targets"][0]["findings"] == 2
