"""Literals found in a regex are in every match of it: a window without one can be skipped."""

from __future__ import annotations

import random

import pytest

from layerleak.detect.examples import expand
from layerleak.detect.literals import relaxed, required
from layerleak.detect.rules import compile_latin1, load_rules

RULES = load_rules()


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        (r"\bEAA[A-Za-z0-9]{90}", (b"EAA",)),
        (r"(?:ab|cd)ef", (b"abef", b"cdef")),
        (r"a?bc", (b"bc",)),  # "abc" holds "bc": only the shorter is looked for
        (r"(?i:ab)CD", (b"CD",)),  # letters under (?i) are in every case: not a literal
        (r"ab[xy]cd", (b"abxcd", b"abycd")),
        (r"foo|bar", (b"bar", b"foo")),
        (r"x+yz{2}", (b"yzz",)),  # an unbounded repeat ends a literal run
        (r"(?P<secret>API\-[A-Z0-9]{26})", (b"API-",)),
        # nothing known: every path must spell a literal of two bytes or more
        (r"(?i)eaa", ()),
        (r"foo|b", ()),
        (r"(?:foo)?bar?", (b"ba",)),
        (r"(?:foo)*", ()),
        (r"[^a]bc|x", ()),
        # syntax RE2 and Python read differently, or Python cannot read: nothing is claimed
        (r"x{,3}yz", ()),
        (r"\pLabc", ()),
        (r"[[:alpha:]]abc", ()),
        (r"\Qab\E", ()),
        (r"ab(?i)cd", ()),
        ("caf\u00e9", ()),
    ],
)
def test_required_literals(pattern: str, literals: tuple[bytes, ...]) -> None:
    assert required(pattern) == literals


def _variants(text: str, rng: random.Random) -> list[bytes]:
    data = text.encode("latin-1", "replace")
    return [
        data,
        text.upper().encode("latin-1", "replace"),
        text.swapcase().encode("latin-1", "replace"),
        bytes(b ^ 0x20 if rng.random() < 0.1 else b for b in data),
        b"\xe9 " + data + b" \xff",
    ]


def test_every_match_of_every_rule_holds_one_of_its_literals() -> None:
    """Every built-in rule's regex, over its examples (and case-changed and mutated copies):
    each match holds one of the literals found in the regex, and many rules have some."""
    rng = random.Random(15)
    with_literals = matches = 0
    for rule in RULES:
        literals = required(rule.regex)
        regex = compile_latin1(rule.regex, rule.id)
        if not literals or regex is None:
            continue
        with_literals += 1
        for template in (*rule.examples.positive, *rule.examples.negative):
            for data in _variants(expand(template, rng), rng):
                for m in regex.finditer(data):
                    assert any(lit in m.group(0) for lit in literals), (rule.id, literals, m.group(0)[:80])
                    matches += 1
    assert with_literals > 200 and matches > 500


@pytest.mark.parametrize(
    ("pattern", "loose"),
    [
        ("a{1,20}", "a{1,}"),
        ("a{0,40}?b", "a{0,}?b"),
        ("a{1,5}b{3}", "a{1,5}b{3}"),  # short and exact repeats stay
        (r"\{1,20}", r"\{1,20}"),  # escaped: text
        ("[{1,20}]x{2,9}", "[{1,20}]x{2,}"),  # in a class: text
        ("[]{1,20}]", "[]{1,20}]"),
        ("[^]{]{1,20}", "[^]{]{1,}"),
        (r"\Qa{1,20}\E", None),
        ("[[:alpha:]]{1,20}", None),
    ],
)
def test_relaxed(pattern: str, loose: str | None) -> None:
    assert relaxed(pattern) == loose


def test_a_relaxed_regex_matches_wherever_the_rule_does() -> None:
    """Every built-in rule's relaxed regex matches each stretch its regex matches."""
    rng = random.Random(16)
    checked = 0
    for rule in RULES:
        regex = compile_latin1(rule.regex, rule.id)
        loose_pattern = relaxed(rule.regex)
        if loose_pattern is None:  # ``[:`` in a class: not relaxed, the rule runs alone
            continue
        loose = compile_latin1(loose_pattern, rule.id)
        if regex is None or loose is None:
            continue
        for template in (*rule.examples.positive, *rule.examples.negative):
            for data in _variants(expand(template, rng), rng):
                for m in regex.finditer(data):
                    assert loose.search(data, m.start(), m.end()), (rule.id, m.group(0)[:80])
                    checked += 1
    assert checked > 500
