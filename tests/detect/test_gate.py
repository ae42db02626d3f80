"""Every keyword gate is exact: the start of every keyword occurrence the automaton finds lies in
one of the gate's spans, and a gate reports no span only when the automaton finds nothing."""

from __future__ import annotations

import random
import secrets
import string

import ahocorasick
import pytest

from layerleak.detect.engine import Engine
from layerleak.detect.gate import GATES, Gate, make_gate
from layerleak.detect.rules import load_rules

RULES = load_rules(())
KEYWORDS = sorted({k for r in RULES for k in r.keywords})


def _available() -> list[str]:
    names = []
    for name in GATES:
        try:
            make_gate(name, KEYWORDS)
        except ImportError:
            continue
        names.append(name)
    return names


def _starts(data: bytes) -> list[int]:
    automaton = ahocorasick.Automaton()
    for kw in KEYWORDS:
        automaton.add_word(kw, len(kw))
    automaton.make_automaton()
    return sorted({end - n + 1 for end, n in automaton.iter(data.lower().decode("latin-1"))})


def _samples() -> list[bytes]:
    rng = random.Random(5)
    out = [b"", b"nothing to see", bytes(range(256)) * 4]
    for _ in range(60):
        noise = bytes(rng.choice(b"\x00\xff\x7f abcxyz019-_.\n\xe9\xc9") for _ in range(rng.randint(0, 3000)))
        kw = rng.choice(KEYWORDS).encode("latin-1")
        kw = bytes(c ^ 0x20 if rng.random() < 0.5 and chr(c).isalpha() else c for c in kw)  # mixed case
        at = rng.randint(0, len(noise))
        out.append(noise[:at] + kw + noise[at:] if rng.random() < 0.7 else noise)
    # Overlapping and nested keywords, and floods of them: matches that hide other occurrences.
    for _ in range(40):
        words = [rng.choice(KEYWORDS).encode("latin-1") for _ in range(rng.randint(1, 40))]
        glue = [bytes(rng.choice(b"ab_-.:/ \n\x00") for _ in range(rng.choice((0, 0, 1, 5, 300))))
                for _ in words]
        out.append(b"".join(g + w[: rng.randint(1, len(w))] + w for g, w in zip(glue, words, strict=True)))
    return out


@pytest.mark.parametrize("name", _available())
def test_gate_is_exact(name: str) -> None:
    gate: Gate = make_gate(name, KEYWORDS)
    hits = 0
    for data in _samples():
        truth = _starts(data)
        spans = gate.spans(data)
        assert spans == sorted(spans)
        assert all(lo < hi <= nxt for (lo, hi), (nxt, _) in zip(spans, spans[1:], strict=False))
        if not truth:
            assert name == "none" or not spans, data[:80]
        for start in truth:
            assert any(lo <= start < hi for lo, hi in spans), (name, start, spans[:10])
        hits += len(truth)
    assert hits > 500  # the samples do hold keywords, overlapping ones among them


def test_gates_give_the_same_matches() -> None:
    engines = [Engine(RULES, gate=name) for name in _available()]
    assert {"none", "re2"} <= {e.gate for e in engines}
    alphabet = string.ascii_letters + string.digits
    token = "ghp_" + "".join(secrets.choice(alphabet) for _ in range(36))  # made here, fake
    data = b"\x00" * 5000 + f"x = '{token}'\n".encode() + b"\x7fELF" * 300
    results = [e.scan(data) for e in engines]
    assert results[0] and all(r == results[0] for r in results)


def test_unknown_gate_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown gate"):
        make_gate("fast", KEYWORDS)


def test_re2_gate_gives_the_same_spans_through_the_public_api(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = make_gate("re2", KEYWORDS)
    assert getattr(fast, "_raw", None) is not None, "google-re2's search call is used when present"
    public = make_gate("re2", KEYWORDS)
    monkeypatch.setattr(public, "_raw", None)
    samples = _samples()
    assert sum(len(fast.spans(d)) for d in samples) > 50
    for data in samples:
        assert fast.spans(data) == public.spans(data)


def _all_hits(data: bytes) -> list[tuple[str, int]]:
    automaton = ahocorasick.Automaton()
    for kw in KEYWORDS:
        automaton.add_word(kw, kw)
    automaton.make_automaton()
    return sorted((kw, end) for end, kw in automaton.iter(data.lower().decode("latin-1")))


@pytest.mark.skipif("hyperscan" not in _available(), reason="the optional hyperscan package is not installed")
def test_hyperscan_hits_are_the_automatons_hits() -> None:
    """The Hyperscan gate's hits are, one for one, the automaton's over every byte: the same
    keyword at the same end offset, overlapping, nested and mixed-case ones included."""
    gate = make_gate("hyperscan", KEYWORDS)
    assert gate.keywords, "the built-in keywords are lowercase ASCII: hits are reported"
    total = 0
    for data in _samples():
        hits = gate.hits(data)
        assert hits is not None
        got = sorted((gate.keywords[i], end) for i, ends in hits.items() for end in ends)
        assert got == _all_hits(data), data[:80]
        total += len(got)
    assert total > 500


@pytest.mark.skipif("hyperscan" not in _available(), reason="the optional hyperscan package is not installed")
@pytest.mark.parametrize("odd", ["café", "Token"])
def test_hyperscan_leaves_hits_to_the_automaton_for_keywords_it_would_fold_differently(odd: str) -> None:
    """A keyword with a byte above ASCII or an upper-case letter (the automaton sees only
    ``data.lower()``) would not be found the same way: such a gate gives spans, not hits."""
    gate = make_gate("hyperscan", [*KEYWORDS, odd])
    assert gate.keywords == () and gate.hits(b"a token here") is None
    assert gate.spans(b"a token here")


@pytest.mark.parametrize("name", ["re2", "none"])
def test_other_gates_leave_hits_to_the_automaton(name: str) -> None:
    assert make_gate(name, KEYWORDS).hits(b"a token here") is None
