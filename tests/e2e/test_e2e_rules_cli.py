"""`layerleak rules --format json` and `layerleak rules show ID`, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from layerleak.detect.rules import parse_rules_text

if TYPE_CHECKING:
    from conftest import Layerleak

RULE = """
[[rule]]
id = "acme-token"
title = "ACME API token"
description = "A token for the ACME API.   It grants   write access."
references = ["https://docs.acme.example/tokens", "https://docs.acme.example/revoke"]
severity = "high"
keywords = ["acme_"]
regex = '''(?P<secret>acme_[a-z0-9]{24})'''
[rule.examples]
positive = ["key = acme_{{lowerdigit:24}}"]
negative = ["key = acme_short"]
"""


def test_description_and_references_are_kept() -> None:
    (rule,) = parse_rules_text(RULE, "acme.toml")
    assert rule.description == "A token for the ACME API. It grants write access."
    assert rule.references == ("https://docs.acme.example/tokens", "https://docs.acme.example/revoke")
    (bare,) = parse_rules_text(RULE.replace("description", "#").replace("references", "#"), "x.toml")
    assert bare.description is None and bare.references == ()


def test_rules_json_lists_every_rule_with_its_metadata(layerleak: Layerleak, tmp_path: Path) -> None:
    path = tmp_path / "acme.toml"
    path.write_text(RULE)
    run = layerleak("rules", "--rules", str(path), "--format", "json")
    assert run.returncode == 0, run.describe()
    doc = json.loads(run.stdout)
    assert doc["version"] == 1 and len(doc["ruleset"]) == 16
    by_id = {r["id"]: r for r in doc["rules"]}
    assert len(by_id) > 100 and "github-pat-classic" in by_id
    acme = by_id["acme-token"]
    assert acme["references"][0] == "https://docs.acme.example/tokens"
    assert acme["keywords"] == ["acme_"] and acme["examples"]["positive"] == ["key = acme_{{lowerdigit:24}}"]
    # A built-in rule's description and sources are listed; without a description, the title stands in.
    assert by_id["github-pat-classic"]["description"].startswith("Acts as the GitHub user")
    assert by_id["clerk-secret-key"]["supersedes"] == ["stripe-secret-key"]
    assert by_id["paddle-api-key"]["references"][0].startswith("https://developer.paddle.com/")
    assert by_id["todoist-api-token"]["description"] == by_id["todoist-api-token"]["title"]


def test_rules_show_one_rule_in_full(layerleak: Layerleak, tmp_path: Path) -> None:
    path = tmp_path / "acme.toml"
    path.write_text(RULE)
    run = layerleak("rules", "--rules", str(path), "show", "acme-token")
    assert run.returncode == 0, run.describe()
    for part in ("ACME API token", "regex (RE2): (?P<secret>acme_[a-z0-9]{24})", "keywords: acme_",
                 "key = acme_{{lowerdigit:24}}", "key = acme_short", "https://docs.acme.example/revoke",
                 "It grants write access."):
        assert part in run.stdout, part
    as_json = layerleak("rules", "--rules", str(path), "show", "acme-token", "--format", "json")
    shown = json.loads(as_json.stdout)
    assert shown["id"] == "acme-token"


def test_rules_show_unknown_id_is_one_line_exit_2(layerleak: Layerleak) -> None:
    run = layerleak("rules", "show", "github")
    assert run.returncode == 2
    (line,) = run.stderr.strip().splitlines()
    assert "no rule 'github'" in line and "github-pat-classic" in line


def test_rules_table_still_lists(layerleak: Layerleak) -> None:
    run = layerleak("rules")
    assert run.returncode == 0 and run.stdout.strip().endswith("rules")
