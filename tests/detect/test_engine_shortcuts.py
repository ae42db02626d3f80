"""The engine's per-buffer shortcuts (issue 15) give exactly what the plain way gives: windows
merged from integer keys against the pair sort they replace, a file's path answers kept across
its buffers against a fresh engine per buffer, Hyperscan's hits handed to the rules against the
straightforward path, and literals looked for late against literals looked for at once."""

from __future__ import annotations

import dataclasses
import io
import random

import pytest

from layerleak.detect import engine as engine_mod
from layerleak.detect.engine import Engine
from layerleak.detect.examples import expand
from layerleak.detect.rules import load_rules

RULES = load_rules()


def _pair_sorted_windows(groups: list[tuple[int, list[int]]], w: int, n: int) -> list[tuple[int, int]]:
    """The merge as it was written before: one (start, end) pair per hit, sorted, then merged."""
    span = 2 * w + max(length for length, _ in groups)
    cap = engine_mod.MERGE_FACTOR * span
    pairs = sorted((e - length + 1 - w, e + 1 + w) for length, ends in groups for e in ends)
    merged: list[tuple[int, int]] = []
    for lo, hi in pairs:
        lo, hi = max(lo, 0), min(hi, n)
        if merged and lo <= merged[-1][1] and hi - merged[-1][0] <= cap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _groups(rng: random.Random, n: int) -> list[tuple[int, list[int]]]:
    """Hits of one to four keywords (lengths may repeat, as two keywords sharing a value do),
    crowded at the buffer's edges or spread, in any order, duplicates included."""
    out = []
    for _ in range(rng.randint(1, 4)):
        length = rng.choice((3, 4, 5, 8, 13))
        how = rng.random()
        if how < 0.3:
            ends = [rng.randint(length - 1, min(n - 1, length + 40)) for _ in range(rng.randint(1, 20))]
        elif how < 0.6:
            ends = [rng.randint(max(length - 1, n - 40), n - 1) for _ in range(rng.randint(1, 20))]
        else:
            ends = [rng.randint(length - 1, n - 1) for _ in range(rng.randint(1, 30))]
        if rng.random() < 0.5:
            ends.sort()
        if rng.random() < 0.2:
            ends += ends[: len(ends) // 2]
        out.append((length, ends))
    return out


def test_windows_are_those_the_pair_sort_merged() -> None:
    rng = random.Random(1515)
    checked = 0
    for _ in range(4000):
        n = rng.choice((20, 300, 2000, 50_000))
        w = rng.choice((0, 16, 256))
        groups = [(length, ends) for length, ends in _groups(rng, n) if length <= n]
        if not groups or sum(len(e) for _, e in groups) > engine_mod._SMALL:
            continue
        assert engine_mod._windows(groups, w, n) == _pair_sorted_windows(groups, w, n), (groups, w, n)
        checked += 1
    assert checked > 2000


def test_a_keyword_split_in_two_lists_makes_the_same_windows() -> None:
    """Hyperscan numbers two keywords of one value (same length, same rules) apart: their hits
    reach the rule as two lists, where the automaton gives one."""
    rng = random.Random(7)
    for _ in range(600):
        n = rng.choice((500, 5000, 100_000))
        length = rng.choice((4, 7))
        ends = [rng.randint(length - 1, n - 1) for _ in range(rng.randint(2, 200))]
        cut = rng.randint(1, len(ends) - 1)
        other = (3, [rng.randint(2, n - 1) for _ in range(rng.randint(0, 5))])
        one = [(length, ends), other] if other[1] else [(length, ends)]
        two = [(length, ends[:cut]), other, (length, ends[cut:])] if other[1] else [
            (length, ends[:cut]), (length, ends[cut:])
        ]
        assert engine_mod._windows(two, 256, n) == engine_mod._windows(one, 256, n)


def _flood(rng: random.Random) -> bytes:
    """Rule examples among floods of the generic and shared keywords, some at the very start and
    end of the buffer, some past the small-merge limit, in mixed case."""
    words = ["pass", "PASS", "token", "secret", "api_key", "api-key", "Api.Key", "pwd", "eaa", "EAA",
             "://", "authorization", "password"]
    parts: list[str] = []
    if rng.random() < 0.5:
        parts.append(rng.choice(words))
    for _ in range(rng.randint(1, 6)):
        rule = rng.choice(RULES)
        if rule.examples.positive and rule.path_regex is None:
            parts.append(expand(rng.choice(rule.examples.positive), rng))
        parts.append(rng.choice((" ", "=", "\n", "", '"')).join(
            rng.choice(words) for _ in range(rng.choice((3, 40, 90)))
        ))
    if rng.random() < 0.5:
        parts.append(rng.choice(words))
    return rng.choice(("", " ", "\n")).join(parts).encode("latin-1", "replace")


def test_floods_through_the_gate_find_what_the_straightforward_path_finds() -> None:
    fast = Engine(RULES).prepare()
    plain = Engine(RULES, gate="none")
    rng = random.Random(42)
    found = 0
    for _ in range(150):
        data = _flood(rng)
        got = fast.scan(data, None)
        assert got == plain.scan(data, None), data[:200]
        found += len(got)
    assert found > 100


def _path_samples() -> list[tuple[bytes, str | None]]:
    """The examples of the path-restricted rules, each under its own path, under another path,
    and under none."""
    rng = random.Random(3)
    out: list[tuple[bytes, str | None]] = []
    for rule in RULES:
        if rule.path_regex is None or rule.presence:
            continue
        for template in rule.examples.positive:
            data = expand(template, rng).encode("latin-1", "replace")
            out += [(data, rule.examples.path), (data, "srv/app/readme.txt"), (data, None)]
    return out


def test_a_files_path_answers_are_those_of_a_fresh_engine() -> None:
    """Buffers of one file come one after the other with its path; the kept answers are the
    ones a fresh engine gives for every buffer, whatever the order of paths."""
    samples = _path_samples()
    assert len(samples) > 30
    kept = Engine(RULES).prepare()
    rng = random.Random(5)
    order = samples * 2
    rng.shuffle(order)
    order += [s for s in samples for _ in range(2)]  # the same path twice in a row
    found = 0
    for data, path in order:
        got = kept.scan(data, path)
        assert got == Engine(RULES).scan(data, path), (path, data[:120])
        found += len(got)
    assert found > 30
    on_own_path = sum(bool(kept.scan(d, p)) for d, p in samples[::3])
    on_other_path = sum(bool(kept.scan(d, p)) for d, p in samples[1::3])
    assert on_own_path > on_other_path, "path-restricted rules find more on their own paths"


def test_a_files_path_is_tested_once_for_all_its_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(RULES).prepare()
    calls: list[str] = []
    test = engine._any_path_in
    assert test is not None

    def counting(path: str) -> bool:
        calls.append(path)
        return test(path)

    monkeypatch.setattr(engine, "_any_path_in", counting)
    for data in (b"password secret", b"machine x login y password Zq8kV2mL9wQ", b"token"):
        engine._scan(data, "root/.netrc")
    assert calls == ["root/.netrc"]
    engine._scan(b"password", "etc/other")
    engine._scan(b"password", "root/.netrc")
    assert calls == ["root/.netrc", "etc/other", "root/.netrc"]


def test_literals_looked_for_late_find_what_literals_at_once_find(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule's literals are read from its regex once it has had LITERALS_AFTER windows; before
    that its regex runs in every window. Neither, both, or at once: the same matches."""
    ids = [r.id for r in RULES]
    facebook = ids.index("facebook-access-token")
    late = Engine(RULES)
    assert late.compiled(facebook).literals is None, "not read at compile time"
    assert late.literals(facebook, 1) == (), "not yet"
    assert late.literals(facebook, engine_mod.LITERALS_AFTER) == (b"EAA",)
    assert late.compiled(facebook).literals == (b"EAA",)
    monkeypatch.setattr(engine_mod, "LITERALS_AFTER", 0)
    at_once = Engine(RULES)
    monkeypatch.setattr(engine_mod, "LITERALS_AFTER", 10**9)
    never = Engine(RULES)
    monkeypatch.setattr(engine_mod, "LITERALS_AFTER", 3)
    soon = Engine(RULES)
    rng = random.Random(11)
    found = 0
    for _ in range(120):
        data = _flood(rng)
        got = at_once.scan(data)
        assert got == never.scan(data) == soon.scan(data), data[:200]
        found += len(got)
    assert found > 100
    assert at_once.compiled(facebook).literals == (b"EAA",)
    assert never.compiled(facebook).literals is None


def test_a_rules_allowlist_test_answers_as_its_search_does() -> None:
    """The allowlist is asked with google-re2's own search call on the secret's UTF-8 bytes: the
    same answer as ``search()``, on the rules' examples and on generated text with high bytes."""
    rng = random.Random(9)
    engine = Engine(RULES)
    texts = [expand(t, rng) for r in RULES for t in (*r.examples.positive, *r.examples.negative)]
    alphabet = "aZ09_-./:=é\xff\x00 ExAmPlE${}<>*"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(400)]
    asked = allowed = 0
    for idx, rule in enumerate(RULES):
        if not rule.allowlist:
            continue
        comp = engine.compiled(idx)
        assert comp.allow_in is not None and comp.allow is not None
        for text in [*texts, *rule.allowlist]:
            hit = comp.allow_in(text)
            assert hit == (comp.allow.search(text) is not None), (rule.id, text)
            asked += 1
            allowed += hit
    assert asked > 1000 and allowed > 10


def _stream_as_before(engine: Engine, stream: io.BytesIO, path: str | None) -> list[object]:
    """scan_stream as it was written before the whole-file shortcut."""
    out: list[object] = list(engine.present(path))
    base, base_line = 0, 1
    buf = stream.read(engine_mod.CHUNK_SIZE)
    while buf:
        more = stream.read(engine_mod.CHUNK_SIZE)
        limit = len(buf) - engine_mod.OVERLAP if more else len(buf)
        for m in engine._scan(buf, path):
            if m.offset < limit:
                out.append(dataclasses.replace(m, offset=base + m.offset, line=base_line + m.line - 1))
        if not more:
            break
        dropped = max(0, len(buf) - engine_mod.OVERLAP)
        base_line += buf.count(b"\n", 0, dropped)
        base += dropped
        buf = buf[dropped:] + more
    return out


def test_a_stream_read_whole_or_in_chunks_finds_what_it_found_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files of one buffer (the shortcut), of exactly one and a few chunks, and empty ones."""
    monkeypatch.setattr(engine_mod, "CHUNK_SIZE", 4096)
    monkeypatch.setattr(engine_mod, "OVERLAP", 512)
    engine = Engine(RULES).prepare()
    rng = random.Random(21)
    found = 0
    for i in range(200):
        data = _flood(rng)
        if i % 4 == 0:
            data = (data * (4096 // max(1, len(data)) + 1))[: rng.choice((4095, 4096, 4097, 8192, 9000))]
        elif i % 4 == 1:
            data = data * rng.randint(2, 6)
        path = rng.choice((None, "root/.netrc", "app/config.py"))
        got = list(engine.scan_stream(io.BytesIO(data), path))
        assert got == _stream_as_before(engine, io.BytesIO(data), path), (len(data), path)
        found += len(got)
    assert found > 100
    assert list(engine.scan_stream(io.BytesIO(b""), None)) == []
