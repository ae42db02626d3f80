"""What the end-to-end tests expect of a report, in one place.

RULE_IDS maps the kind of each planted secret (fixtures/plant.py) to the rule id the scanner must
report for it: if a rule is renamed, this dict is the one line to change.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from plant import Planted

if TYPE_CHECKING:
    from conftest import CliRun

RULE_IDS: dict[str, str] = {
    "aws-access-key-id": "aws-access-key-id",
    "aws-secret-access-key": "aws-secret-access-key",
    "github-pat-classic": "github-pat-classic",
    "slack-bot-token": "slack-bot-token",
    "private-key": "private-key",
    "generic-password": "generic-password",
}

Finding = dict[str, Any]

FINDING_KEYS = {
    "rule_id", "title", "severity", "confidence", "target", "image", "source", "layer_index",
    "layer_digest", "created_by", "path", "inner_path", "line", "status", "removed_in_layer",
    "key", "fingerprint", "secret",
}  # fmt: skip
TARGET_KEYS = {"target", "image", "image_id", "platform", "layers", "bytes_scanned", "errors"}


def _key_matches(planted: Planted, key: str | None) -> bool:
    if planted.key is None:
        return True
    if planted.key.startswith("label:"):  # any spelling that names the label will do
        return key is not None and planted.key.removeprefix("label:") in key
    return key == planted.key


def matches(planted: Planted, finding: Finding) -> bool:
    """Is ``finding`` the report of ``planted``: same rule and the exact same location?"""
    if finding.get("rule_id") != RULE_IDS[planted.kind] or finding.get("source") != planted.source:
        return False
    if planted.image and planted.image not in (finding.get("image") or ""):
        return False
    if not _key_matches(planted, finding.get("key")):
        return False
    created_by = finding.get("created_by") or ""
    if not all(fragment in created_by for fragment in planted.created_by):
        return False
    if planted.source != "layer":
        return True
    located = (
        finding.get("path") == planted.path
        and finding.get("layer_index") == planted.layer_index
        and finding.get("line") == planted.line
    )
    if not planted.status_known:
        return located
    return (
        located
        and finding.get("status") == planted.status
        and finding.get("removed_in_layer") == planted.removed_in_layer
    )


def near(planted: Planted, findings: list[Finding]) -> list[Finding]:
    """Findings at the same place (or of the same rule), to show when an exact match is missing."""
    if planted.source == "layer":
        return [f for f in findings if f.get("path") == planted.path]
    return [f for f in findings if f.get("source") == planted.source]


def the_finding(planted: Planted, findings: list[Finding]) -> Finding:
    """The one finding that reports ``planted``; a readable failure otherwise."""
    found = [f for f in findings if matches(planted, f)]
    if len(found) == 1:
        return found[0]
    want = {
        "rule_id": RULE_IDS[planted.kind],
        "source": planted.source,
        "path": planted.path,
        "line": planted.line,
        "layer_index": planted.layer_index,
        "status": planted.status if planted.status_known else "(any)",
        "removed_in_layer": planted.removed_in_layer if planted.status_known else "(any)",
        "key": planted.key,
        "image": planted.image,
        "created_by contains": list(planted.created_by),
    }
    shown = found or near(planted, findings)
    raise AssertionError(
        f"expected exactly one finding like\n{json.dumps(want, indent=2)}\n"
        f"found {len(found)} matching; {'those' if found else 'nearby'} findings:\n"
        + json.dumps([brief(f) for f in shown], indent=2)
    )


def brief(finding: Finding) -> dict[str, Any]:
    """A finding without its bulky or secret fields, for assertion messages."""
    return {k: v for k, v in finding.items() if k not in {"secret", "title", "target"}}


def location(finding: Finding) -> tuple[Any, ...]:
    """What must be the same whichever way the image was exported."""
    return tuple(
        finding.get(k)
        for k in ("rule_id", "source", "path", "inner_path", "line", "status", "layer_index",
                  "removed_in_layer", "key")
    )  # fmt: skip


def is_explained(secret: str, values: list[str]) -> bool:
    """Does a shown secret belong to something that was planted (exactly, or as part of it)?"""
    secret = secret.strip()
    return any(
        secret == v.strip() or (len(secret) >= 8 and (secret in v or v.strip() in secret)) for v in values
    )


def leaked_fragments(value: str) -> list[str]:
    """Pieces of a planted value that must never appear in a redacted report.

    The whole value, and for a PEM key each base64 body line too (a redactor that kept the header
    but printed the body would otherwise pass).
    """
    pieces = [value]
    if value.startswith("-----BEGIN"):
        pieces += [line for line in value.splitlines()[1:-1] if len(line) >= 16]
    return pieces


def assert_reported_once_per_place(findings: list[Finding]) -> None:
    """No secret is reported by two rules at the same place (the specific rule should win)."""
    places: dict[tuple[Any, ...], list[str]] = {}
    for f in findings:
        place = (f["image"], f["source"], f["layer_index"], f["path"], f["line"], f["key"], f["secret"])
        places.setdefault(place, []).append(f["rule_id"])
    repeated = {
        f"{place[3] or place[5]} (layer {place[2]}, line {place[4]})": rules
        for place, rules in places.items()
        if len(rules) > 1
    }
    assert repeated == {}, f"same secret at the same place reported by several rules: {repeated}"


def assert_one_clean_error_line(run: CliRun) -> None:
    """Exit 2 with one line on stderr and no traceback: how every input problem must look."""
    assert run.returncode == 2, run.describe()
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{run.stderr}"


def assert_no_findings(findings: list[Finding], why: str) -> None:
    """Fail with the offending findings spelled out (secrets cut short and escaped)."""
    shown = [brief(f) | {"secret": repr(str(f.get("secret"))[:60])} for f in findings]
    assert not findings, f"{why}:\n{json.dumps(shown, indent=2)}"
