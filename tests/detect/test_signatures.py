"""Every built-in rule against its own examples, through the real engine.

Positive examples must be found by their rule; negative examples must not be. Templates in the
examples are filled with fresh random characters on every run: the seed is printed in each failure
and can be replayed with LAYERLEAK_EXAMPLE_SEED=<seed>.
"""

from __future__ import annotations

import os
import random
import re

import pytest

from layerleak.detect.engine import Engine
from layerleak.detect.examples import TemplateError, armor, expand, has_template
from layerleak.detect.rules import Rule, load_rules

SEED = int(os.environ.get("LAYERLEAK_EXAMPLE_SEED") or random.SystemRandom().randrange(2**32))
KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MIN_EXAMPLES = 2

RULES = load_rules()
ENGINE = Engine(RULES)


def _rng(rule: Rule, kind: str, index: int) -> random.Random:
    return random.Random(f"{SEED}/{rule.id}/{kind}/{index}")


def _found(text: str, rule: Rule) -> list[str]:
    return [m.secret for m in ENGINE.scan(text.encode("latin-1"), rule.examples.path) if m.rule_id == rule.id]


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_examples(rule: Rule) -> None:
    failures: list[str] = []
    for i, template in enumerate(rule.examples.positive):
        text = expand(template, _rng(rule, "positive", i))
        if not _found(text, rule):
            failures.append(f"positive example not found:\n  {text!r}")
    for i, template in enumerate(rule.examples.negative):
        text = expand(template, _rng(rule, "negative", i))
        found = _found(text, rule)
        if found:
            failures.append(f"negative example matched {found!r}:\n  {text!r}")
    assert not failures, f"rule {rule.id} (seed {SEED}):\n" + "\n".join(failures)


def test_every_rule_has_examples() -> None:
    thin = [
        f"{r.id} ({len(r.examples.positive)} positive, {len(r.examples.negative)} negative)"
        for r in RULES
        if len(r.examples.positive) < MIN_EXAMPLES or len(r.examples.negative) < MIN_EXAMPLES
    ]
    assert not thin, f"rules need at least {MIN_EXAMPLES} examples of each kind: " + ", ".join(thin)


def test_positive_examples_are_templates() -> None:
    """No committed positive example may be a literal credential: each holds a random field."""
    literal = [(r.id, p) for r in RULES for p in r.examples.positive if not has_template(p)]
    assert not literal, f"positive examples without a {{{{class:n}}}} field: {literal}"


def test_rule_ids_unique_and_kebab_case() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert [i for i in ids if not KEBAB.match(i)] == []


def test_generic_rules_have_an_entropy_floor() -> None:
    assert [r.id for r in RULES if r.generic and r.min_entropy is None] == []


def test_builtin_rules_are_builtin() -> None:
    assert {r.origin.split("/")[0] for r in RULES} == {"signatures"}


@pytest.mark.parametrize(
    ("template", "pattern"),
    [
        ("AKIA{{upper2-7:16}}", r"^AKIA[A-Z2-7]{16}$"),
        ("{{alnum:5}}-{{digit:3}}", r"^[A-Za-z0-9]{5}-[0-9]{3}$"),
        ("{{hex:8}}{{HEX:8}}", r"^[0-9a-f]{8}[0-9A-F]{8}$"),
        ("{{b64:10}}|{{b64url:10}}", r"^[A-Za-z0-9+/]{10}\|[A-Za-z0-9_-]{10}$"),
        ("{{upperdigit:6}}{{lowerdigit:6}}", r"^[A-Z0-9]{6}[a-z0-9]{6}$"),
        ("{{upper:3}}{{lower:3}}", r"^[A-Z]{3}[a-z]{3}$"),
        ("no fields", r"^no fields$"),
        ("{{ .Values.token }}", r"^\{\{ \.Values\.token \}\}$"),
    ],
)
def test_expand_classes(template: str, pattern: str) -> None:
    assert re.match(pattern, expand(template, random.Random(SEED))), f"seed {SEED}"


def test_expand_pem() -> None:
    text = expand("{{pem:RSA PRIVATE KEY:3}}", random.Random(SEED))
    lines = text.split("\n")
    assert lines[0] == armor("BEGIN", "RSA PRIVATE KEY")
    assert lines[-1] == armor("END", "RSA PRIVATE KEY")
    assert [len(line) for line in lines[1:-1]] == [64, 64, 64]
    assert len(expand("{{pem:PRIVATE KEY}}", random.Random(SEED)).split("\n")) == 22


def test_expand_is_reproducible() -> None:
    template = "{{alnum:40}} {{pem:EC PRIVATE KEY:2}}"
    assert expand(template, random.Random(SEED)) == expand(template, random.Random(SEED))


def test_expand_never_spells_a_placeholder_by_chance() -> None:
    rng = random.Random(SEED)
    for _ in range(200):
        text = expand("{{upper:12}}", rng).lower()
        assert not any(w in text for w in ("xxxx", "todo", "dummy", "fixme")), f"seed {SEED}"
    assert expand("todo-{{digit:4}}", rng).startswith("todo-")


@pytest.mark.parametrize("template", ["{{nope:4}}", "{{alnum:0}}", "{{alnum:x}}", "{{pem:K:y}}"])
def test_expand_rejects_bad_templates(template: str) -> None:
    with pytest.raises(TemplateError):
        expand(template, random.Random(SEED))
