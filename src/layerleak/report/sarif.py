"""SARIF 2.1.0 for GitHub code scanning (``--format sarif``).

One run, one result per finding, the rules that fired with their title, description, help and
``security-severity``. A result's ``artifactLocation.uri`` is the path inside the image (config and
history findings name ``image-config.json``); its ``logicalLocations`` name the image, the layer
and the status; its ``partialFingerprints`` come from the finding's fingerprint and path, so an
alert survives a rebuild that moves lines and changes layer digests. Snippets are always the
redacted form, even with ``--show-secrets``: a SARIF file is uploaded to a service.

GitHub refuses a run with more than 25,000 results or a file over 10 MB gzip-compressed: the most
severe results are kept, and ``options.warn`` says how many were left out.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any
from urllib.parse import quote

from layerleak import __version__
from layerleak.findings.suppress import match_path
from layerleak.models import Finding, ScanReport, Severity, SourceKind
from layerleak.report.interface import Renderer, RenderOptions
from layerleak.report.table import fate, step_text

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/layerleak/layerleak"
MAX_RESULTS = 25_000  # GitHub: results per run
MAX_GZIP_BYTES = 10 * 1024 * 1024  # GitHub: the uploaded file, gzip-compressed
CONFIG_URI = "image-config.json"
FINGERPRINT_KEY = "layerleakFingerprint/v1"

# GitHub reads security-severity as a CVSS-like score: > 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
LEVEL = {
    Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note",
    Severity.INFO: "note",
}
ROTATE = (
    "Rotate (revoke and replace) this secret: anyone who can pull the image can extract it, from "
    "any layer, even if a later layer deleted or overwrote the file."
)


def _uri(f: Finding) -> str:
    loc = f.location
    if loc.source is SourceKind.LAYER and loc.path:
        return quote(loc.path.lstrip("/"), safe="/")
    return CONFIG_URI


def _rule_descriptor(rule_id: str, f: Finding, options: RenderOptions) -> dict[str, Any]:
    rule = options.rules.get(rule_id)
    title = rule.title if rule else f.title
    description = (rule.description if rule else None) or title
    references = rule.references if rule else ()
    severity = rule.severity if rule else f.severity
    refs_text = "".join(f"\n- {r}" for r in references)
    descriptor: dict[str, Any] = {
        "id": rule_id,
        "name": "".join(p.capitalize() for p in rule_id.replace("_", "-").split("-") if p),
        "shortDescription": {"text": title},
        "fullDescription": {"text": description},
        "help": {
            "text": f"{description}\n\n{ROTATE}" + (f"\n\nReferences:{refs_text}" if references else ""),
            "markdown": f"**{title}**\n\n{description}\n\n{ROTATE}"
            + (f"\n\nReferences:{refs_text}" if references else ""),
        },
        "defaultConfiguration": {"level": LEVEL[severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[severity],
            "tags": ["security", "secret", "container-image"],
            "precision": "high",
        },
    }
    if references:
        descriptor["helpUri"] = references[0]
    return descriptor


def image_name(f: Finding) -> str:
    return f.image if f.image is not None else f"{f.target} (layers of no known image)"


def _logical(f: Finding) -> list[dict[str, Any]]:
    loc = f.location
    image = image_name(f)
    out: list[dict[str, Any]] = [{"name": image, "fullyQualifiedName": image, "kind": "module"}]
    if loc.layer_index is not None:
        layer = f"layer {loc.layer_index}"
        out.append({"name": layer, "fullyQualifiedName": f"{image}/{layer} ({loc.layer_digest})",
                    "kind": "namespace"})
    elif loc.key:
        out.append({"name": loc.key, "fullyQualifiedName": f"{image}/{loc.key}", "kind": "member"})
    status = fate(f) or _PLACES.get(loc.source, "in the build history")
    out.append({"name": status, "kind": "object"})
    return out


_PLACES = {
    SourceKind.CONFIG: "in the image config",
    SourceKind.ANNOTATION: "in an annotation",
    SourceKind.ATTESTATION: "in an attestation",
}


def _message(f: Finding) -> str:
    loc = f.location
    if loc.source is SourceKind.LAYER:
        where = f"{loc.path}" + (f" ! {loc.inner_path}" if loc.inner_path else "")
        where += f" (layer {loc.layer_index}, {fate(f) or 'present'})"
        if loc.created_by:
            where += f", added by `{step_text(loc.created_by)}`"
    elif loc.source is SourceKind.CONFIG:
        where = f"the image config ({loc.key})"
    elif loc.source in (SourceKind.ANNOTATION, SourceKind.ATTESTATION):
        where = f"the image's {loc.source} {loc.key}"
    else:
        where = f"build history step {loc.key}"
        if loc.created_by:
            where += f": `{step_text(loc.created_by)}`"
    others = ", ".join(str(x.layer_index) for x in f.other_locations)
    also = f" Also in layers {others}." if others else ""
    return f"{f.title} in {where} of {image_name(f)}: {f.redacted}.{also} Rotate it."


def partial_fingerprint(f: Finding) -> str:
    return hashlib.sha256(f"{f.fingerprint}\0{match_path(f)}".encode()).hexdigest()[:32]


def _result(f: Finding, rule_index: int) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": f.location.line or 1, "snippet": {"text": f.redacted}}
    return {
        "ruleId": f.rule_id,
        "ruleIndex": rule_index,
        "level": LEVEL[f.severity],
        "message": {"text": _message(f)},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": _uri(f)}, "region": region},
                "logicalLocations": _logical(f),
            }
        ],
        "relatedLocations": [
            {
                "id": n,
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(f)},
                    "region": {"startLine": other.line or 1},
                },
                "message": {"text": f"the same secret in layer {other.layer_index}"
                                    + (f" ({other.status})" if other.status else "")},
            }
            for n, other in enumerate(f.other_locations, 1)
        ],
        "partialFingerprints": {FINGERPRINT_KEY: partial_fingerprint(f)},
        "properties": {
            "image": f.image,
            "imageId": f.image_id,
            "target": f.target,
            "source": str(f.location.source),
            "layerIndex": f.location.layer_index,
            "layerDigest": f.location.layer_digest,
            "status": str(f.location.status) if f.location.status else None,
            "removedInLayer": f.location.removed_in_layer,
            "confidence": str(f.confidence),
            "fingerprint": f.fingerprint,
            "validity": f.validity.as_dict() if f.validity is not None else None,
        },
    }


def sarif_dict(report: ScanReport, findings: list[Finding], options: RenderOptions) -> dict[str, Any]:
    rule_ids: dict[str, int] = {}
    rules: list[dict[str, Any]] = []
    results = []
    for f in findings:
        if f.rule_id not in rule_ids:
            rule_ids[f.rule_id] = len(rules)
            rules.append(_rule_descriptor(f.rule_id, f, options))
        results.append(_result(f, rule_ids[f.rule_id]))
    notifications = [
        {"level": "error", "message": {"text": t.error}} for t in report.targets if t.error is not None
    ] + [
        {"level": "error" if e.fatal else "warning", "message": {"text": f"{i.image}: {e.message}"}}
        for t in report.targets for i in t.images for e in i.errors
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "layerleak",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "results": results,
        "invocations": [
            {
                "executionSuccessful": not report.has_errors,
                "toolExecutionNotifications": notifications,
            }
        ],
        "properties": {"ruleset": report.ruleset, "baselined": report.baselined, "ignored": report.ignored},
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _gzip_size(text: str) -> int:
    return len(gzip.compress(text.encode("utf-8"), compresslevel=6))


def render_sarif(report: ScanReport, options: RenderOptions | None = None,
                 max_results: int = MAX_RESULTS, max_gzip: int = MAX_GZIP_BYTES) -> str:
    options = options or RenderOptions()
    every = report.findings
    # The most severe first, in report order within a severity, when something must go.
    ranked = sorted(range(len(every)), key=lambda i: -int(every[i].severity))
    keep = min(len(every), max_results)
    text = _dump(sarif_dict(report, [every[i] for i in sorted(ranked[:keep])], options))
    # gzip never makes JSON bigger than it is: only a text over the limit needs compressing.
    while keep and len(text.encode("utf-8")) > max_gzip and _gzip_size(text) > max_gzip:
        keep = keep * 9 // 10
        text = _dump(sarif_dict(report, [every[i] for i in sorted(ranked[:keep])], options))
    if keep < len(every):
        by_count = keep == min(len(every), max_results)
        why = (f"GitHub accepts at most {max_results:,} results per run" if by_count
               else f"GitHub accepts at most {max_gzip // (1024 * 1024)} MB of gzip-compressed SARIF")
        options.warn(
            f"SARIF: {why}: wrote {keep:,} of {len(every):,} results (the most severe); "
            "--format json has them all"
        )
    return text


class SarifRenderer(Renderer):
    name = "sarif"
    extension = "sarif"
    media_type = "application/sarif+json"

    def render(self, report: ScanReport, options: RenderOptions) -> str:
        return render_sarif(report, options)
