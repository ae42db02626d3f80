"""The detection engine: one Aho-Corasick automaton over every rule's keywords, then each rule's
RE2 regex only in a window around its keyword hits, then entropy and false-positive filters.

The engine sees bytes, never where they came from: callers attach the location.
"""

from __future__ import annotations

import bisect
import dataclasses
import importlib
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import IO, Any

import ahocorasick

from layerleak.detect import filters, validity
from layerleak.detect.entropy import shannon_entropy
from layerleak.detect.gate import GATES, Gate, make_gate
from layerleak.detect.rules import (
    SECRET_GROUP,
    Allowlist,
    Rule,
    compile_checked,
    compile_latin1,
    ruleset_hash,
)
from layerleak.models import Match

CHUNK_SIZE = 2 * 1024 * 1024  # bytes the engine scans at a time (each costs ~3x in copies)
FILE_HEAD = 8 * 1024 * 1024  # the first read of a file: a file this small is held whole (credential
# files are parsed and package-recorded files hashed only then)
OVERLAP = 32 * 1024  # re-scanned between chunks so a secret on a chunk boundary is not lost
LINE_CONTEXT = 1024  # characters of a match's line, each side, given to the filters
SHORT_ENTROPY_SHARE = 0.85  # a short secret needs this share of the entropy its length allows
MERGE_FACTOR = 4  # a merged regex window spans at most this many single-hit windows
NO_GATE_BELOW = 1024  # a buffer this small is walked whole: calling a gate costs about what that does,
# and a rescan from the cache (which scans only the image's build steps) never builds a gate


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    regex: Any
    binary: bool  # ``regex`` is a Latin-1 bytes regex, run on the buffer itself
    requires: tuple[bytes, ...]  # a window holding none of these cannot hold a match
    allow: Any | None  # the rule's allowlist as one alternation: a secret is tested once
    path: Any | None
    group: int
    groups: tuple[int, ...] = ()  # the secret is the first non-empty of these (ends with ``group``)
    allowlists: tuple[_Allow, ...] = ()


@dataclass(frozen=True, slots=True)
class _Allow:
    """A compiled :class:`Allowlist` (gitleaks rules)."""

    regexes: tuple[Any, ...]
    target: str
    stopwords: tuple[str, ...]
    paths: tuple[Any, ...]
    require_all: bool

    @classmethod
    def of(cls, a: Allowlist, rule_id: str) -> _Allow:
        return cls(
            regexes=tuple(compile_checked(r, rule_id, "allowlist regex") for r in a.regexes),
            target=a.target,
            stopwords=a.stopwords,
            paths=tuple(compile_checked(p, rule_id, "allowlist path") for p in a.paths),
            require_all=a.require_all,
        )

    def allows(self, on_path: bool, secret: str, whole: str, line: str) -> bool:
        """Whether this allowlist drops a match: ``whole`` is what the regex matched, ``line``
        the line it is on."""
        checks: list[bool] = []
        if self.paths:
            checks.append(on_path)
        if self.regexes:
            target = {"secret": secret, "match": whole}.get(self.target) or line
            checks.append(any(r.search(target) for r in self.regexes))
        if self.stopwords:
            low = secret.lower()
            checks.append(any(w in low for w in self.stopwords))
        return all(checks) if self.require_all else any(checks)


class Engine:
    def __init__(self, rules: Sequence[Rule], gate: str = "auto") -> None:
        """``gate`` picks the keyword gate (:mod:`layerleak.detect.gate`); "none" is the
        straightforward path. Every gate gives the same matches."""
        if not rules:
            raise ValueError("the engine needs at least one rule")
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.ruleset = ruleset_hash(self.rules)
        # Each rule's regexes are compiled the first time one of its keywords is hit: most runs
        # (a warm cache, a small image) need a few of them, and compiling all costs 0.2 s.
        self._compiled: list[_Compiled | None] = [None] * len(self.rules)
        by_keyword: dict[str, list[int]] = {}
        for idx, rule in enumerate(self.rules):
            for kw in rule.keywords:
                by_keyword.setdefault(kw, []).append(idx)
        # Rules limited to some paths (.env files, shell history, ...) often have very common
        # keywords ("key", "pass"): a second automaton and gate without them serve every file
        # that no such rule applies to, so their hits are never even produced there.
        unrestricted: dict[str, list[int]] = {}
        for kw, idxs in by_keyword.items():
            free = [i for i in idxs if self.rules[i].path_regex is None]
            if free:
                unrestricted[kw] = free
        paths = [r.path_regex for r in self.rules if r.path_regex]
        self._any_path = compile_checked("|".join(f"(?:{p})" for p in paths), "path") if paths else None
        # The automata and gates are built on the first scan (prepare()): a rescan answered
        # from the cache never needs them, and Hyperscan's compile alone takes a tenth of a second.
        if gate not in GATES:
            raise ValueError(f"unknown gate {gate!r} (expected one of {', '.join(GATES)})")
        if gate == "hyperscan":
            importlib.import_module("hyperscan")  # ImportError now, not at the first scan
        self._gate_choice = gate
        self._by_keyword = by_keyword
        self._unrestricted = unrestricted
        # Rules without keywords (gitleaks allows them) run over every chunk, whole. File-presence
        # rules (gitleaks' path-only rules) never run a regex: a matching path is the finding.
        self._always = tuple(i for i, r in enumerate(self.rules) if not r.keywords and not r.presence)
        self._presence = tuple(
            (r, compile_checked(r.path_regex, r.id, "path"), tuple(_Allow.of(a, r.id) for a in r.allowlists))
            for r in self.rules
            if r.presence and r.path_regex
        )
        self._keyworded = bool(by_keyword)
        self._reach = max((len(kw) for kw in by_keyword), default=1) - 1  # past a span's end
        self._by_id = {r.id: r for r in self.rules}

    @cached_property
    def _automaton(self) -> Any:
        return _automaton(self._by_keyword)

    @cached_property
    def _gate(self) -> Gate:
        return make_gate(self._gate_choice, self._by_keyword)

    @cached_property
    def _plain_automaton(self) -> Any:
        return _automaton(self._unrestricted) if self._unrestricted else None

    @cached_property
    def _plain_gate(self) -> Gate | None:
        return make_gate(self._gate_choice, self._unrestricted) if self._unrestricted else None

    @property
    def gate(self) -> str:
        """The gate in use (``auto`` resolved)."""
        return self._gate.name

    def prepare(self) -> Engine:
        """Build the automata and gates now (before forking workers that share them)."""
        for built in (self._automaton, self._gate, self._plain_automaton, self._plain_gate):
            del built
        return self

    def rule(self, rule_id: str) -> Rule:
        return self._by_id[rule_id]

    def compiled(self, idx: int) -> _Compiled:
        comp = self._compiled[idx]
        if comp is None:
            comp = self._compiled[idx] = _compile(self.rules[idx])
        return comp

    def present(self, path: str | None) -> list[Match]:
        """The file-presence matches of a file at ``path``: one per presence rule whose path
        regex matches, its secret the path, at offset 0, line 1."""
        if path is None or not self._presence:
            return []
        out: list[Match] = []
        for rule, regex, allows in self._presence:
            if not regex.search(path):
                continue
            if any(a.allows(any(p.search(path) for p in a.paths), path, path, "") for a in allows):
                continue
            out.append(Match(rule_id=rule.id, secret=path, offset=0, line=1, confidence=rule.confidence))
        return out

    def scan(self, data: bytes, path: str | None = None) -> list[Match]:
        """Every match in ``data`` (offsets and 1-based lines relative to ``data``), the file
        presence matches of ``path`` included."""
        return self.present(path) + self._scan(data, path)

    def _scan(self, data: bytes, path: str | None) -> list[Match]:
        if not data:
            return []
        # Files no path-restricted rule applies to get the automaton and gate without those
        # rules' keywords. Either is built at its first use.
        plain = self._any_path is None or path is None or not self._any_path.search(path)
        automaton: Any = None
        candidates: list[tuple[int, int]] = []
        if self._unrestricted if plain else self._keyworded:
            automaton = self._plain_automaton if plain else self._automaton
            if len(data) <= NO_GATE_BELOW:
                candidates = [(0, len(data))]  # the whole buffer, as the gate "none" gives: same hits
            else:
                gate = self._plain_gate if plain else self._gate
                candidates = gate.spans(data) if gate is not None else []
        if not candidates and not self._always:
            return []  # no keyword anywhere: the automaton would find nothing
        windows: dict[int, list[tuple[int, int]]] = {i: [(0, len(data))] for i in self._always}
        # The automaton walks each span and the longest keyword past it, keeping the hits that
        # start inside the span: every occurrence starts in one span, so each is found once.
        # Hits are grouped by keyword first (one append per hit); each rule's windows are then
        # built from its keywords' hit positions in one go.
        grouped: dict[tuple[int, tuple[int, ...]], list[int]] = {}
        if automaton is not None:
            reach = self._reach
            for lo, hi in candidates:
                text = data[lo : hi + reach].lower().decode("latin-1")
                limit = hi - lo
                for end, val in automaton.iter(text):
                    if end - val[0] + 1 >= limit:  # starts at or after hi: another span's
                        continue
                    ends = grouped.get(val)
                    if ends is None:
                        grouped[val] = [lo + end]
                    else:
                        ends.append(lo + end)
        per_rule: dict[int, list[tuple[int, list[int]]]] = {}
        for (length, idxs), ends in grouped.items():
            for idx in idxs:
                per_rule.setdefault(idx, []).append((length, ends))
        for idx, groups in per_rule.items():
            windows[idx] = _windows(groups, self.rules[idx].window, len(data))
        if not windows:
            return []
        found: dict[tuple[str, int], Match] = {}
        for idx, spans in windows.items():
            comp = self.compiled(idx)
            if comp.path is not None and (path is None or not comp.path.search(path)):
                continue
            on_path = tuple(any(p.search(path) for p in a.paths) if path else False
                            for a in comp.allowlists)
            for lo, hi in spans:
                if comp.requires and all(data.find(r, lo, hi) < 0 for r in comp.requires):
                    continue
                if comp.binary:
                    # RE2 searches [lo, hi) of the buffer itself, and `\b`, `^` and `$` see the
                    # real neighbours, so a token cut off by the window is not taken for a whole
                    # one. No copy, no decoding.
                    base, matches = 0, comp.regex.finditer(data, lo, hi)
                else:
                    # A rule RE2 cannot run on Latin-1 bytes exactly as on text (see
                    # compile_latin1): its window, decoded, with one byte of context each side.
                    base = max(0, lo - 1)
                    window = data[base : min(len(data), hi + 1)].decode("latin-1")
                    matches = comp.regex.finditer(window, lo - base, hi - base)
                for m in matches:
                    group = next((g for g in comp.groups if m.group(g)), comp.group)
                    raw = m.group(group)
                    if not raw:
                        continue
                    secret = raw.decode("latin-1") if comp.binary else raw
                    offset = base + m.start(group)
                    key = (comp.rule.id, offset)
                    if key in found:
                        continue
                    line = _line_of(data, offset, offset + len(secret))
                    if not self._accept(comp, secret, line):
                        continue
                    if comp.allowlists:
                        whole = m.group(0)
                        whole = whole.decode("latin-1") if comp.binary else whole
                        if any(
                            a.allows(hit, secret, whole, line)
                            for a, hit in zip(comp.allowlists, on_path, strict=True)
                        ):
                            continue
                    found[key] = validity.judged(
                        Match(
                            rule_id=comp.rule.id,
                            secret=secret,
                            offset=offset,
                            line=0,
                            confidence=comp.rule.confidence,
                        )
                    )
        return _with_lines(data, self._unshadowed(list(found.values())))

    def _unshadowed(self, found: list[Match]) -> list[Match]:
        """Drop a generic rule's match that overlaps a specific rule's match: one value, already
        named by the rule that knows what it is (``TOKEN=ghp_...`` is a GitHub token, not also a
        "hard-coded password"). An imported (gitleaks) rule's match that overlaps a built-in
        specific rule's match is dropped the same way: one secret, one finding. So is the match of
        a rule another matching rule ``supersedes`` (a shared key shape, told apart by context)."""
        found = self._unshadowed_by(found, lambda r: r.generic, lambda r: not r.generic)
        found = self._unshadowed_by(
            found, lambda r: r.imported, lambda r: not r.generic and not r.imported
        )
        for rule_id in sorted({m.rule_id for m in found if self._by_id[m.rule_id].supersedes}):
            found = self._superseded_dropped(found, self._by_id[rule_id])
        return found

    def _superseded_dropped(self, found: list[Match], rule: Rule) -> list[Match]:
        given_way = frozenset(rule.supersedes)

        def weak(r: Rule) -> bool:
            return r.id in given_way

        def strong(r: Rule) -> bool:
            return r.id == rule.id

        return self._unshadowed_by(found, weak, strong)

    def _unshadowed_by(
        self, found: list[Match], weak: Callable[[Rule], bool], strong: Callable[[Rule], bool]
    ) -> list[Match]:
        """Drop each match of a ``weak`` rule that overlaps a match of a ``strong`` rule."""
        weak_ones = [m for m in found if weak(self._by_id[m.rule_id])]
        if not weak_ones or len(weak_ones) == len(found):
            return found
        spans = sorted(
            (m.offset, m.offset + len(m.secret)) for m in found if strong(self._by_id[m.rule_id])
        )
        if not spans:
            return found
        starts = [lo for lo, _ in spans]
        reach = list(itertools.accumulate((hi for _, hi in spans), max))  # furthest end so far

        def shadowed(m: Match) -> bool:
            i = bisect.bisect_left(starts, m.offset + len(m.secret)) - 1  # spans starting before m ends
            return i >= 0 and reach[i] > m.offset

        return [m for m in found if not (weak(self._by_id[m.rule_id]) and shadowed(m))]

    @staticmethod
    def _accept(comp: _Compiled, secret: str, context: str = "") -> bool:
        rule = comp.rule
        if len(secret) < rule.min_length:
            return False
        if comp.allow is not None and comp.allow.search(secret):
            return False
        if filters.rejection(secret, context, generic=rule.generic):
            return False
        if rule.min_entropy is None:
            return True
        # A string of n characters has at most log2(n) bits per character: a fixed floor would
        # reject most random short passwords, so short secrets need a share of their maximum.
        floor = min(rule.min_entropy, SHORT_ENTROPY_SHARE * math.log2(max(len(secret), 2)))
        return shannon_entropy(secret) >= floor

    def scan_stream(self, stream: IO[bytes], path: str | None = None) -> Iterator[Match]:
        """Scan a file of any size in bounded memory: CHUNK_SIZE at a time, OVERLAP re-read."""
        base = 0  # absolute offset of buf[0]
        base_line = 1  # line number at buf[0]
        yield from self.present(path)
        buf = stream.read(CHUNK_SIZE)
        while buf:
            more = stream.read(CHUNK_SIZE)
            # Matches starting in the tail are found again, whole, in the next buffer.
            limit = len(buf) - OVERLAP if more else len(buf)
            for m in self._scan(buf, path):
                if m.offset >= limit:
                    continue
                yield dataclasses.replace(m, offset=base + m.offset, line=base_line + m.line - 1)
            if not more:
                return
            dropped = max(0, len(buf) - OVERLAP)
            base_line += buf.count(b"\n", 0, dropped)
            base += dropped
            buf = buf[dropped:] + more


def _compile(rule: Rule) -> _Compiled:
    binary = compile_latin1(rule.regex, rule.id)
    regex = binary if binary is not None else compile_checked(rule.regex, rule.id)
    return _Compiled(
        rule=rule,
        regex=regex,
        binary=binary is not None,
        requires=tuple(r.encode("ascii") for r in rule.requires),
        allow=compile_checked("|".join(f"(?:{a})" for a in rule.allowlist), rule.id, "allowlist")
        if rule.allowlist
        else None,
        path=compile_checked(rule.path_regex, rule.id, "path") if rule.path_regex else None,
        group=_group_index(regex),
        groups=(*rule.secret_groups, _group_index(regex)),
        allowlists=tuple(_Allow.of(a, rule.id) for a in rule.allowlists),
    )


_SMALL = 64  # hit counts up to this are merged in Python; more with numpy


def _windows(groups: list[tuple[int, list[int]]], w: int, n: int) -> list[tuple[int, int]]:
    """One rule's regex windows: ``w`` bytes each side of every keyword hit, overlapping windows
    merged. A merged window never spans more than MERGE_FACTOR single-hit windows: a regex's
    all-matches cost can grow with the square of the text it runs on, so a flood of keyword hits
    makes many bounded windows (overlapping, so that every hit's own window lies whole inside one
    of them), not one huge one. ``groups`` holds (keyword length, offsets of the hits' last bytes).
    """
    span = 2 * w + max(length for length, _ in groups)  # the longest single-hit window
    cap = MERGE_FACTOR * span
    if sum(len(ends) for _, ends in groups) <= _SMALL:
        pairs = sorted(
            (max(0, e - length + 1 - w), min(n, e + 1 + w))
            for length, ends in groups
            for e in ends
        )
        merged: list[tuple[int, int]] = []
        for lo, hi in pairs:
            if merged and lo <= merged[-1][1] and hi - merged[-1][0] <= cap:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        return merged
    import numpy as np  # loaded by the first flood of hits, not by every start-up

    arrays = [(length, np.asarray(ends, dtype=np.int64)) for length, ends in groups]
    los = np.concatenate([a + (1 - length - w) for length, a in arrays])
    his = np.concatenate([a + (1 + w) for _, a in arrays])
    order = np.argsort(los, kind="stable")
    los, his = np.clip(los[order], 0, n), np.clip(his[order], 0, n)
    reach = np.maximum.accumulate(his)
    starts = np.flatnonzero(np.concatenate(([True], los[1:] > reach[:-1])))
    lasts = np.concatenate((starts[1:] - 1, [len(los) - 1]))
    out: list[tuple[int, int]] = []
    step = cap - span
    for lo, hi in zip(los[starts].tolist(), reach[lasts].tolist(), strict=True):
        while hi - lo > cap:
            out.append((lo, lo + cap))
            lo += step
        out.append((lo, hi))
    return out


def _automaton(by_keyword: dict[str, list[int]]) -> Any:
    automaton = ahocorasick.Automaton()
    for kw, idxs in by_keyword.items():
        automaton.add_word(kw, (len(kw), tuple(idxs)))
    automaton.make_automaton()
    return automaton


def _line_of(data: bytes, start: int, end: int) -> str:
    """The line of ``data`` around ``[start, end)``, as text: context for the false-positive
    filters.

    At most LINE_CONTEXT bytes on each side: on a 10 MB line with a match every few bytes,
    looking for the line's ends would make the scan quadratic."""
    floor, ceiling = max(0, start - LINE_CONTEXT), min(len(data), end + LINE_CONTEXT)
    lo = data.rfind(b"\n", floor, start) + 1 or floor
    hi = data.find(b"\n", end, ceiling)
    return data[lo : hi if hi >= 0 else ceiling].decode("latin-1")


def _group_index(regex: Any) -> int:
    index = regex.groupindex
    return int(index.get(SECRET_GROUP, index.get(SECRET_GROUP.encode(), 0)))


def _with_lines(data: bytes, matches: Any) -> list[Match]:
    ordered = sorted(matches, key=lambda m: m.offset)
    out: list[Match] = []
    line, pos = 1, 0
    for m in ordered:
        line += data.count(b"\n", pos, m.offset)
        pos = m.offset
        out.append(dataclasses.replace(m, line=line))
    return out
