"""Rule files are validated: a bad rule is one clear error naming the rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from layerleak.detect.rules import load_rules, parse_rules_text, ruleset_hash
from layerleak.errors import RuleError

GOOD = '''
[[rule]]
id = "x-token"
title = "X"
severity = "high"
keywords = ["xtk_"]
regex = \'\'\'(?P<secret>xtk_[a-z]{10})\'\'\'
'''


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("(?P<secret>", "("), "named group"),
        (GOOD.replace('keywords = ["xtk_"]', "keywords = []"), "keyword"),
        (GOOD.replace('keywords = ["xtk_"]', 'keywords = ["x"]'), "at least 3"),
        (GOOD.replace('severity = "high"', 'severity = "urgent"'), "unknown severity"),
        (GOOD.replace("xtk_[a-z]{10}", "(?<=a)b"), "RE2"),
        (GOOD + 'colour = "red"\n', "unknown field"),
        ("[[rule]\n", "not valid TOML"),
    ],
)
def test_invalid_rules_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(RuleError) as err:
        parse_rules_text(text, "mine.toml")
    assert message in err.value.diagnostics()


def test_user_rules_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    rules = load_rules([tmp_path], builtin=False)
    assert [r.id for r in rules] == ["x-token"]
    assert rules[0].origin.endswith("a.toml")


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    (tmp_path / "b.toml").write_text(GOOD)
    with pytest.raises(RuleError, match="defined twice"):
        load_rules([tmp_path], builtin=False)


def test_ruleset_hash_changes_with_the_rules() -> None:
    a = parse_rules_text(GOOD, "a")
    b = parse_rules_text(GOOD.replace("{10}", "{11}"), "b")
    assert ruleset_hash(a) == ruleset_hash(parse_rules_text(GOOD, "c"))
    assert ruleset_hash(a) != ruleset_hash(b)


def test_builtin_rules_pass_the_full_validation_they_skip_at_load_time() -> None:
    """Built-in rules are loaded without compiling their regexes (the engine compiles them when
    first needed); here every one is compiled and checked as a user's rule file would be."""
    from layerleak.detect.rules import builtin_rule_files

    checked = [r for name, text in builtin_rule_files() for r in parse_rules_text(text, f"signatures/{name}")]
    assert checked == load_rules(())
    assert len(checked) > 200


def _scanned(rules: list[Any]) -> list[Any]:
    """The rules as a scan uses them: the cache leaves out examples (nothing credential-like is
    written under the cache directory), which no scan reads."""
    import dataclasses

    from layerleak.detect.rules import Examples

    return [dataclasses.replace(r, examples=Examples()) for r in rules]


def test_the_parsed_rules_cache_gives_the_same_rules(tmp_path: Path) -> None:
    """load_rules(cache_dir=...) keeps the parsed built-in files as JSON; loaded from there the
    rules (and so the ruleset hash that keys the layer cache) are those parsed from TOML, less
    their examples."""
    from layerleak.detect.rules import load_rules, ruleset_hash

    parsed = _scanned(load_rules(()))
    first = load_rules((), cache_dir=tmp_path)  # parses, writes the cache
    written = list(tmp_path.glob("rules-*.json"))
    assert len(written) == 1
    second = load_rules((), cache_dir=tmp_path)  # reads it
    assert first == parsed and second == parsed
    assert ruleset_hash(second) == ruleset_hash(load_rules(()))
    assert "{{" not in written[0].read_text()  # no example template was written


def test_a_damaged_or_foreign_rules_cache_is_parsed_again(tmp_path: Path) -> None:
    from layerleak.detect.rules import load_rules

    parsed = _scanned(load_rules(()))
    load_rules((), cache_dir=tmp_path)
    (cached,) = tmp_path.glob("rules-*.json")
    for text in ("{not json", "[]", '{"rule": []}', "[1, 2]"):
        cached.write_text(text)
        assert load_rules((), cache_dir=tmp_path) == parsed
    # ...and the next load has rewritten it whole.
    assert load_rules((), cache_dir=tmp_path) == parsed
    assert cached.read_text().startswith("[{")


def test_the_rules_cache_is_only_written_where_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from layerleak.detect.rules import load_rules

    monkeypatch.chdir(tmp_path)
    load_rules(())
    assert list(tmp_path.rglob("rules-*.json")) == []


def test_supersedes_must_name_a_loaded_rule(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD + 'supersedes = ["no-such-rule"]\n')
    with pytest.raises(RuleError, match="supersedes unknown rule"):
        load_rules([tmp_path], builtin=False)
    (tmp_path / "a.toml").write_text(GOOD + 'supersedes = ["x-token"]\n')
    with pytest.raises(RuleError, match="supersedes unknown rule"):
        load_rules([tmp_path], builtin=False)


def test_references_are_https_urls() -> None:
    with pytest.raises(RuleError, match="https://"):
        parse_rules_text(GOOD + 'references = ["docs.example/tokens"]\n', "mine.toml")
    (rule,) = parse_rules_text(GOOD + 'references = ["https://docs.example/tokens"]\n', "mine.toml")
    assert rule.references == ("https://docs.example/tokens",)


def test_supersedes_changes_the_ruleset_hash_only_where_declared() -> None:
    plain = parse_rules_text(GOOD, "a")
    other = GOOD.replace('"x-token"', '"y-token"')
    declared = parse_rules_text(GOOD + other + 'supersedes = ["x-token"]\n', "b")
    undeclared = parse_rules_text(GOOD + other, "c")
    assert ruleset_hash(declared) != ruleset_hash(undeclared)
    assert ruleset_hash(plain) == ruleset_hash(parse_rules_text(GOOD, "d"))


def test_every_builtin_reference_is_https() -> None:
    refs = [(r.id, u) for r in load_rules(()) for u in r.references]
    assert refs, "built-in rules record where their format is documented"
    assert [x for x in refs if not x[1].startswith("https://")] == []
