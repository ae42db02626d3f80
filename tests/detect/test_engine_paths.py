"""The engine's fast paths find exactly what its plain paths find: google-re2's own search call
against its public finditer, shared windows against per-rule windows."""

from __future__ import annotations

import dataclasses
import random

import pytest

from layerleak.detect import engine as engine_mod
from layerleak.detect.engine import Engine
from layerleak.detect.examples import expand
from layerleak.detect.rules import load_rules, parse_rules_text

RULES = load_rules()


def _samples() -> list[tuple[bytes, str | None]]:
    """Every rule's examples, alone and run together, in floods, and with high bytes around."""
    rng = random.Random(15)
    out: list[tuple[bytes, str | None]] = []
    texts: list[str] = []
    for rule in RULES:
        for template in (*rule.examples.positive, *rule.examples.negative):
            text = expand(template, rng)
            texts.append(text)
            out.append((text.encode("latin-1", "replace"), rule.examples.path))
    for _ in range(30):
        picked = rng.sample(texts, 40)
        glue = [rng.choice(("\n", " ", "", "\x00\xff", "x" * 300)) for _ in picked]
        blob = "".join(g + t for g, t in zip(glue, picked, strict=True))
        out.append((blob.encode("latin-1", "replace"), None))
    return out


def _same_matches(fast: Engine, other: Engine) -> None:
    """``fast`` finds exactly what ``other`` finds on every sample, and they find something."""
    found = 0
    for data, path in _samples():
        got = fast.scan(data, path)
        assert got == other.scan(data, path), data[:120]
        found += len(got)
    assert found > 100


def test_re2_search_call_finds_what_finditer_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = Engine(RULES)
    assert fast.compiled(0).search is not None, "google-re2's own search call is used when present"
    monkeypatch.setattr(engine_mod, "_raw_search", lambda regex: None)
    public = Engine(RULES)
    assert public.compiled(0).search is None
    _same_matches(fast, public)


def test_empty_matches_advance_as_finditer_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """A regex that can match the empty string (gitleaks rules may) steps one byte on."""
    rules = parse_rules_text(
        """
[[rule]]
id = "maybe-empty"
title = "t"
severity = "low"
confidence = "high"
keywords = ["kee"]
regex = '''kee(?P<secret>[a-z0-9]*)|(?:)'''
[rule.examples]
positive = ["kee123"]
negative = ["k"]
""",
        "inline",
    )
    data = b"kee " * 5 + b"keeabc9 xx kee"
    fast = Engine(rules).scan(data)
    monkeypatch.setattr(engine_mod, "_raw_search", lambda regex: None)
    assert fast == Engine(rules).scan(data)
    assert [m.secret for m in fast] == ["abc9"]


def test_rules_sharing_keywords_and_window_share_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows are built once per (window, keywords) kind; the matches are those of per-rule
    windows."""
    engine = Engine(RULES)
    kinds = {}
    for rule, kind in zip(RULES, engine._window_kind, strict=True):
        kinds.setdefault(kind, set()).add((rule.window, frozenset(rule.keywords)))
    assert all(len(v) == 1 for v in kinds.values())
    generic = {engine._window_kind[i] for i, r in enumerate(RULES) if r.id.startswith("generic-password")}
    assert len(generic) == 1, "the generic rules share their keywords and window"
    calls: list[int] = []
    real = engine_mod._windows

    def counting(groups, w, n):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(groups, w, n)

    monkeypatch.setattr(engine_mod, "_windows", counting)
    data = b'password = "Zq8#kV2!mL9w"\napi_key: "Hk3j9Qw2Lm8Zx7Pv"\n'
    shared = engine.scan(data)
    per_rule = Engine(RULES)
    per_rule._window_kind = list(range(len(RULES)))
    calls_shared = len(calls)
    calls.clear()
    assert per_rule.scan(data) == shared and shared
    assert calls_shared < len(calls)


def test_a_kind_of_several_rules_asks_their_alternation_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows where the alternation of a kind's regexes finds nothing are dropped for all its
    rules; what is found is what each rule alone finds in every window."""
    fast = Engine(RULES)
    generic = fast._window_kind[[r.id for r in RULES].index("generic-password")]
    assert generic in fast._kind_members
    data = b"x = 1\n" * 50 + b'token = get_token()\n' + b"y" * 900 + b'\npassword = "Zq8#kV2!mL9wQ"\n'
    ends = [data.index(b"token") + 4, data.index(b"password") + 3]
    spans = engine_mod._windows([(5, ends)], 256, len(data))
    assert len(spans) == 2
    assert fast._any_match(generic, data, spans) == spans[1:], "the token() window holds no match"
    slow = Engine(RULES)
    slow._kind_members = {}
    checked = 0
    for sample, path in [*_samples(), (data, None)]:
        got = fast.scan(sample, path)
        assert got == slow.scan(sample, path), sample[:120]
        checked += bool(got)
    assert checked > 50


def test_no_alternation_for_a_rule_run_on_text() -> None:
    from layerleak.detect.rules import compile_any_latin1

    assert compile_any_latin1([r"a(?P<secret>b)", r"(?i)caf\xe9(?P<secret>c)"]) is None
    both = compile_any_latin1([r"a(?P<secret>b)", r"(?m)^c(?P<secret>d)"])
    assert both is not None
    assert both.search(b"xab") and both.search(b"x\ncd") and not both.search(b"xcd")


def test_literal_checks_drop_only_windows_without_a_match() -> None:
    fast = Engine(RULES)
    for i in range(len(RULES)):
        fast.literals(i, engine_mod.LITERALS_AFTER)  # read now, not after the rule's first windows
    ids = [r.id for r in RULES]
    assert fast.compiled(ids.index("facebook-access-token")).literals == (b"EAA",)
    slow = Engine(RULES)
    for i in range(len(RULES)):
        slow._compiled[i] = dataclasses.replace(slow.compiled(i), literals=())
    _same_matches(fast, slow)


def test_small_buffers_find_the_same_through_a_built_gate() -> None:
    """A buffer of NO_GATE_BELOW bytes or less is walked whole until a gate exists (a rescan from
    the cache builds none), and goes through the gate once it does: the same matches."""
    fresh = Engine(RULES)
    built = Engine(RULES).prepare()
    small = [(d, p) for d, p in _samples() if len(d) <= engine_mod.NO_GATE_BELOW]
    assert len(small) > 100
    found = 0
    for data, path in small:
        got = built.scan(data, path)
        assert got == fresh.scan(data, path), data[:120]
        found += len(got)
    assert found > 50
    assert "_gate" not in fresh.__dict__ and "_plain_gate" not in fresh.__dict__


def test_every_gate_finds_what_the_straightforward_path_finds() -> None:
    """Through the gate (Hyperscan's own hits, when installed; keywords that share the
    automaton's value, such as ``api_key`` and ``api-key``, merged) and through none."""
    fast = Engine(RULES).prepare()
    plain = Engine(RULES, gate="none")
    values = list(fast._values.values())
    assert len(values) > len(set(values)), "some keywords share a value"
    _same_matches(fast, plain)
