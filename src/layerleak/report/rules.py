"""``layerleak rules``: the rules in use, as a list, as JSON, or one rule in full (``rules show``).

Examples are shown as written in the rule file: templates (``ghp_{{alnum:36}}``) whose random
parts are filled in only by the tests, so nothing printed here looks like a live credential.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from layerleak.detect.rules import Rule
from layerleak.report.escape import escape

RULES_JSON_VERSION = 1


def rule_dict(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "title": rule.title,
        "description": rule.description or rule.title,
        "severity": str(rule.severity),
        "confidence": str(rule.confidence),
        "keywords": list(rule.keywords),
        "regex": rule.regex,
        "path": rule.path_regex,
        "min_entropy": rule.min_entropy,
        "min_length": rule.min_length,
        "window": rule.window,
        "requires": list(rule.requires),
        "allowlist": list(rule.allowlist),
        "generic": rule.generic,
        "references": list(rule.references),
        "supersedes": list(rule.supersedes),
        "examples": {
            "positive": list(rule.examples.positive),
            "negative": list(rule.examples.negative),
            "path": rule.examples.path,
        },
        "origin": rule.origin,
    }


def rules_json(rules: Sequence[Rule], ruleset: str) -> str:
    doc = {
        "version": RULES_JSON_VERSION,
        "ruleset": ruleset,
        "rules": [rule_dict(r) for r in sorted(rules, key=lambda r: r.id)],
    }
    return json.dumps(doc, indent=2) + "\n"


def rules_table(rules: Sequence[Rule]) -> str:
    lines = [f"{escape(r.id):<40} {str(r.severity):<9} {escape(r.title)}"
             for r in sorted(rules, key=lambda r: r.id)]
    lines.append(f"{len(rules)} rules")
    return "\n".join(lines) + "\n"


def rule_detail(rule: Rule) -> str:
    """Everything about one rule, for a person deciding whether a finding is real."""
    def block(title: str, items: Sequence[str]) -> list[str]:
        return [f"{title}:", *(f"  {escape(i)}" for i in items)] if items else [f"{title}: (none)"]

    lines = [
        f"{escape(rule.id)}: {escape(rule.title)}",
        f"severity: {rule.severity}   confidence: {rule.confidence}   origin: {escape(rule.origin)}",
        "",
        escape(rule.description or rule.title),
        "",
        f"regex (RE2): {escape(rule.regex)}",
        f"keywords: {', '.join(escape(k) for k in rule.keywords) or '(none: every chunk)'}",
    ]
    if rule.path_regex:
        lines.append(f"path: {escape(rule.path_regex)}")
    if rule.requires:
        lines.append(f"requires: {', '.join(escape(r) for r in rule.requires)}")
    if rule.supersedes:
        lines.append(f"supersedes: {', '.join(escape(r) for r in rule.supersedes)}")
    extra = []
    if rule.min_entropy is not None:
        extra.append(f"min entropy {rule.min_entropy}")
    if rule.min_length:
        extra.append(f"min length {rule.min_length}")
    if rule.generic:
        extra.append("generic")
    extra.append(f"window {rule.window}")
    lines.append("checks: " + ", ".join(extra))
    lines.append("")
    lines += block("examples that match", rule.examples.positive)
    lines += block("examples that must not match", rule.examples.negative)
    if rule.examples.path:
        lines.append(f"examples are scanned as: {escape(rule.examples.path)}")
    lines.append("")
    lines += block("references", rule.references)
    return "\n".join(lines) + "\n"
