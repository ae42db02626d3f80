"""The JSON report: a documented, versioned contract (README, "JSON output")."""

from __future__ import annotations

import json
from typing import Any, TextIO

from layerleak import __version__
from layerleak.detect.validity import spki_hex
from layerleak.models import Finding, ImageResult, Location, ScanReport, TargetResult
from layerleak.report.interface import Renderer, RenderOptions

JSON_VERSION = 1


def location_dict(loc: Location) -> dict[str, Any]:
    return {
        "source": str(loc.source),
        "layer_index": loc.layer_index,
        "layer_digest": loc.layer_digest,
        "created_by": loc.created_by,
        "path": loc.path,
        "inner_path": loc.inner_path,
        "line": loc.line,
        "status": str(loc.status) if loc.status else None,
        "removed_in_layer": loc.removed_in_layer,
        "key": loc.key,
        "git": _git(loc),
    }


def _git(loc: Location) -> dict[str, Any] | None:
    g = loc.git
    if g is None:
        return None
    return {"commit": g.commit, "path": g.path, "object": g.object, "reachable": g.reachable,
            "in_worktree": g.in_worktree}


def finding_dict(f: Finding) -> dict[str, Any]:
    loc = f.location
    return {
        "rule_id": f.rule_id,
        "title": f.title,
        "severity": str(f.severity),
        "confidence": str(f.confidence),
        "target": f.target,
        "image": f.image,
        "image_id": f.image_id,
        **location_dict(loc),
        "fingerprint": f.fingerprint,
        "secret": f.secret if f.secret is not None else f.redacted,
        "redacted": f.secret is None,
        "reason": f.reason,
        "validity": f.validity.as_dict() if f.validity is not None else None,
        "locations": [location_dict(x) for x in (loc, *f.other_locations)],
        "related": [
            {"kind": r.kind, "fingerprint": r.fingerprint, "spki_sha256": spki_hex(r.fingerprint),
             "layer_index": r.layer_index, "path": r.path, "detail": r.detail}
            for r in f.related
        ],
    }


def image_dict(target: str, image: ImageResult) -> dict[str, Any]:
    return {
        "target": target,
        "image": image.image,
        "image_id": image.image_id,
        "platform": image.platform,
        "layers": [
            {
                "index": layer.index,
                "digest": layer.digest,
                "blob_digest": layer.blob_digest,
                "media_type": layer.media_type,
                "created_by": layer.created_by,
                "bytes_scanned": layer.bytes_scanned,
                "files_scanned": layer.files_scanned,
            }
            for layer in image.layers
        ],
        "bytes_scanned": image.bytes_scanned,
        "errors": [
            {
                "level": "error" if e.fatal else "warning",
                **{k: v for k, v in (("message", e.message), ("layer_index", e.layer_index),
                                     ("layer_digest", e.layer_digest), ("path", e.path))
                   if v is not None},
            }
            for e in image.errors
        ],
        "findings": len(image.findings),
        "hidden_findings": image.hidden_findings,
        "baselined": image.baselined,
        "ignored": image.ignored,
    }


def report_dict(report: ScanReport) -> dict[str, Any]:
    targets: list[dict[str, Any]] = []
    for t in report.targets:
        if t.error is not None:
            targets.append(
                {"target": t.target, "image": None, "image_id": None, "platform": None,
                 "layers": [], "bytes_scanned": 0, "errors": [{"level": "error", "message": t.error}],
                 "findings": 0, "hidden_findings": 0, "baselined": 0, "ignored": 0}
            )
        targets.extend(image_dict(t.target, i) for i in t.images)
    return {
        "version": JSON_VERSION,
        "tool": {"name": "layerleak", "version": __version__, "ruleset": report.ruleset},
        "secrets_shown": report.secrets_shown,
        "targets": targets,
        "findings": [finding_dict(f) for f in report.findings],
        "baselined": report.baselined,
        "ignored": report.ignored,
    }


def render_json(report: ScanReport) -> str:
    return json.dumps(report_dict(report), indent=2) + "\n"


class JsonRenderer(Renderer):
    name = "json"
    extension = "json"
    media_type = "application/json"

    def render(self, report: ScanReport, options: RenderOptions) -> str:
        return render_json(report)


class JsonlRenderer(Renderer):
    """JSON Lines: one finding per line, the same objects as the JSON report's ``findings``.

    Streams: each target's findings are written as soon as it is scanned. Targets that failed
    and per-image errors are on stderr (and in ``--format json``), not in these lines.
    """

    name = "jsonl"
    extension = "jsonl"
    media_type = "application/jsonl"
    streams = True

    def render(self, report: ScanReport, options: RenderOptions) -> str:
        return "".join(_line(f) for f in report.findings)

    def write_target(self, result: TargetResult, options: RenderOptions, out: TextIO) -> None:
        for image in result.images:
            for f in image.findings:
                out.write(_line(f))


def _line(f: Finding) -> str:
    return json.dumps(finding_dict(f), separators=(",", ":"), ensure_ascii=True) + "\n"
