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


def test_latin1_bytes_regexes_match_as_text_regexes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every built-in rule runs as a Latin-1 bytes regex on the buffer itself; it must find what
    the same regex finds on the buffer decoded to text (every rule's examples, with high bytes and
    case changes mixed in, scanned both ways)."""
    from layerleak.detect import engine as engine_module

    compiled = [ENGINE.compiled(i) for i in range(len(RULES))]
    assert all(c.binary for c in compiled), "a built-in rule fell back to text matching"
    monkeypatch.setattr(engine_module, "compile_latin1", lambda pattern, rule_id: None)
    text_engine = Engine(RULES)
    assert not any(c.binary for c in (text_engine.compiled(i) for i in range(len(RULES))))
    rng = random.Random(f"{SEED}/latin1")
    compared = 0
    for rule in RULES:
        for i, template in enumerate((*rule.examples.positive, *rule.examples.negative)):
            text = expand(template, _rng(rule, "latin1", i))
            variants = [text, text.upper(), text.swapcase()]
            data = [v.encode("latin-1", "replace") for v in variants]
            data.append(b"\xe9\xc9\xff " + data[0] + b" \xb5\xdf\x80")
            data.append(bytes(b ^ 0x80 if rng.random() < 0.05 else b for b in data[0]))
            for blob in data:
                assert ENGINE.scan(blob, rule.examples.path) == text_engine.scan(
                    blob, rule.examples.path
                ), (rule.id, SEED, blob[:120])
                compared += 1
    assert compared > 5 * len(RULES)


def test_a_rule_that_latin1_bytes_would_read_differently_runs_on_text() -> None:
    from layerleak.detect.rules import compile_latin1, parse_rules_text

    assert compile_latin1(r"(?i)caf\xe9=(?P<secret>[a-z0-9]{12})", "x") is None
    assert compile_latin1(r"caf\xe9=(?P<secret>[a-z0-9]{12})", "x") is not None
    assert compile_latin1("café=(?P<secret>[a-z0-9]{12})", "x") is None
    assert compile_latin1(r"(?i)key=(?P<secret>[^\x00-\x20\x7f-\xff]{12})", "x") is not None
    rules = parse_rules_text(
        """
[[rule]]
id = "cafe-key"
title = "t"
severity = "low"
confidence = "high"
keywords = ["caf"]
regex = '''(?i)caf\\xe9=(?P<secret>[a-z0-9]{12})'''
[rule.examples]
positive = ["CAF\\u00c9=abcdefgh1234"]
negative = ["caf=abcdefgh1234"]
""",
        "inline",
    )
    engine = Engine(rules)
    assert not engine.compiled(0).binary
    found = engine.scan("x CAF\u00c9=q1w2e3r4t5y6 x".encode("latin-1"))
    assert [m.secret for m in found] == ["q1w2e3r4t5y6"]


def test_required_literals_are_in_every_match() -> None:
    """``requires`` skips windows without the literal: each rule's examples are found the same
    with and without that shortcut, and every positive example holds one of the literals."""
    import dataclasses

    with_requires = [r for r in RULES if r.requires]
    assert with_requires, "url-credentials declares requires"
    plain = Engine([dataclasses.replace(r, requires=()) for r in RULES])
    for rule in with_requires:
        for i, template in enumerate((*rule.examples.positive, *rule.examples.negative)):
            text = expand(template, _rng(rule, "requires", i))
            data = text.encode("latin-1")
            assert ENGINE.scan(data, rule.examples.path) == plain.scan(data, rule.examples.path)
        for i, template in enumerate(rule.examples.positive):
            text = expand(template, _rng(rule, "requires", i))
            assert any(r in text for r in rule.requires), (rule.id, text)


def provider_of(rule: Rule) -> str:
    """The provider a rule is about: its ``provider`` field, else the first part of its id."""
    return rule.provider or rule.id.split("-")[0]


def test_no_example_is_claimed_by_a_stronger_rule_of_another_provider() -> None:
    """Every positive example's secret is reported by its own rule, and no rule of a different
    provider reports anything in it at a higher severity: no ambiguous duplicates, and no example
    whose finding would be outranked by a guess about someone else's key."""
    failures: list[str] = []
    for rule in RULES:
        for i, template in enumerate(rule.examples.positive):
            text = expand(template, _rng(rule, "positive", i))
            for m in ENGINE.scan(text.encode("latin-1"), rule.examples.path):
                other = ENGINE.rule(m.rule_id)
                if provider_of(other) != provider_of(rule) and other.severity > rule.severity:
                    failures.append(f"{rule.id} ({rule.severity}) example also found by {other.id} "
                                    f"({other.severity}): {text[:100]!r}")
    assert not failures, f"seed {SEED}:\n" + "\n".join(failures)
