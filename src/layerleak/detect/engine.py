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
import re2

from layerleak.detect import filters, literals, validity
from layerleak.detect.entropy import shannon_entropy
from layerleak.detect.gate import GATES, Gate, make_gate
from layerleak.detect.rules import (
    SECRET_GROUP,
    Allowlist,
    Rule,
    compile_any_latin1,
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
LITERALS_AFTER = 64  # windows a rule's regex runs in before its literals are looked for: reading
# the regex for them costs about what compiling it does (a few hundred window searches), and most
# rules a scan compiles see only a few windows
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
    # google-re2's own search call on a bytes regex (spans of every group, no Match object);
    # None: the public finditer is used.
    search: Any | None = None
    # Found in the regex itself (detect.literals): every match holds one of these, case and all.
    # None: not looked for yet (Engine.literals looks once the rule has had LITERALS_AFTER windows).
    literals: tuple[bytes, ...] | None = ()
    path_in: Callable[[str], bool] | None = None  # ``path`` as a test of a file's path
    per_path: bool = False  # what it does depends on the file's path (``path``, allowlist paths)
    allow_in: Callable[[str], bool] | None = None  # ``allow`` as a test of a secret


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
        self._literals_wait = [LITERALS_AFTER] * len(self.rules)  # windows left before looking
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
        self._any_path_in = _text_test(self._any_path) if self._any_path is not None else None
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
        # The automaton's value for each keyword, for the full and the plain keyword sets; a gate
        # that reports hits itself numbers keywords its own way (_gate_values maps them).
        self._values = {kw: (len(kw), tuple(idxs)) for kw, idxs in by_keyword.items()}
        self._plain_values = {kw: (len(kw), tuple(idxs)) for kw, idxs in unrestricted.items()}
        self._gate_value_lists: dict[bool, list[tuple[int, tuple[int, ...]]]] = {}
        # Rules with the same keywords and window size get the same regex windows.
        kinds: dict[tuple[int, frozenset[str]], int] = {}
        self._window_kind = [
            kinds.setdefault((r.window, frozenset(r.keywords)), len(kinds)) for r in self.rules
        ]
        members: dict[int, list[int]] = {}
        for idx, kind in enumerate(self._window_kind):
            members.setdefault(kind, []).append(idx)
        # A kind of several rules (the generic ones) first asks one regex, the alternation of
        # theirs, whether any of them matches in a window: most windows hold none.
        self._kind_members = {k: tuple(v) for k, v in members.items() if len(v) > 1}
        self._any_regex: dict[int, Any | None] = {}
        self._by_id = {r.id: r for r in self.rules}
        # What was asked of the last path, answered once for all the buffers of that file (its
        # chunks, inner views and decoded values come one after the other, with its path):
        # whether no path-restricted rule applies, and per rule index, False when its ``path``
        # does not match, else its allowlists' path answers.
        self._last_path: object = _NO_FILE
        self._last_plain = True
        self._last_rules: dict[int, tuple[bool, ...] | bool] = {}

    @cached_property
    def _automaton(self) -> Any:
        return _automaton(self._values)

    @cached_property
    def _gate(self) -> Gate:
        return make_gate(self._gate_choice, self._by_keyword)

    @cached_property
    def _plain_automaton(self) -> Any:
        return _automaton(self._plain_values) if self._plain_values else None

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
        for kind in self._kind_members:
            self._any_match(kind, b"", [])
        return self

    def _gate_values(self, gate: Gate, plain: bool) -> list[tuple[int, tuple[int, ...]]]:
        """The automaton's value of each keyword of ``gate.keywords``, by index."""
        values = self._gate_value_lists.get(plain)
        if values is None:
            table = self._plain_values if plain else self._values
            values = self._gate_value_lists[plain] = [table[kw] for kw in gate.keywords]
        return values

    def _any_match(self, kind: int, data: bytes, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The windows of ``spans`` where a rule of window kind ``kind`` may match: where the
        alternation of their regexes matches (each rule's match in a window is one of its)."""
        if kind not in self._any_regex:
            members = self._kind_members[kind]
            regex = compile_any_latin1([self.rules[i].regex for i in members])
            self._any_regex[kind] = _raw_search(regex) if regex is not None else None
        search = self._any_regex[kind]
        if search is None:
            return spans
        return [(lo, hi) for lo, hi in spans if search(_UNANCHORED, data, lo, hi)[0] != _NO_SPAN]

    def _walk(
        self,
        plain: bool,
        data: bytes,
        candidates: list[tuple[int, int]],
        grouped: dict[tuple[int, tuple[int, ...]], list[int]],
    ) -> None:
        """Add the automaton's hits in ``candidates`` to ``grouped``. It walks each span and the
        longest keyword past it, keeping the hits that start inside the span: every occurrence
        starts in one span, so each is found once."""
        automaton = self._plain_automaton if plain else self._automaton
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

    def rule(self, rule_id: str) -> Rule:
        return self._by_id[rule_id]

    def compiled(self, idx: int) -> _Compiled:
        comp = self._compiled[idx]
        if comp is None:
            comp = self._compiled[idx] = _compile(self.rules[idx])
        return comp

    def literals(self, idx: int, windows: int = LITERALS_AFTER) -> tuple[bytes, ...]:
        """Rule ``idx``'s literals (detect.literals) once it has been given LITERALS_AFTER windows
        (``windows`` more now); until then none (its regex runs in every window, which finds
        exactly what it finds in the windows holding a literal)."""
        comp = self.compiled(idx)
        if comp.literals is not None:
            return comp.literals
        left = self._literals_wait[idx] = self._literals_wait[idx] - windows
        if left > 0:
            return ()
        comp = self._compiled[idx] = dataclasses.replace(comp, literals=literals.required(comp.rule.regex))
        assert comp.literals is not None
        return comp.literals

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
        if path != self._last_path:
            # Files no path-restricted rule applies to get the automaton and gate without those
            # rules' keywords. Either is built at its first use.
            self._last_path, self._last_rules = path, {}
            self._last_plain = self._any_path_in is None or path is None or not self._any_path_in(path)
        plain = self._last_plain
        # Hits grouped by keyword (the automaton's value for it: length, rule indexes), as the
        # offsets of their last bytes; or by Hyperscan's number of the keyword (``direct``).
        grouped: dict[tuple[int, tuple[int, ...]], list[int]] = {}
        direct: dict[int, list[int]] | None = None
        values: list[tuple[int, tuple[int, ...]]] = []  # the automaton's value of each gate keyword
        if self._unrestricted if plain else self._keyworded:
            built = "_plain_gate" if plain else "_gate"
            if len(data) <= NO_GATE_BELOW and built not in self.__dict__:
                # A small buffer, and no gate yet (a rescan from the cache scans only build
                # steps): walked whole, as the gate "none" gives, without building one.
                self._walk(plain, data, [(0, len(data))], grouped)
            else:
                gate = self._plain_gate if plain else self._gate
                assert gate is not None  # built for every keyword set that has keywords
                direct = gate.hits(data)
                if direct:
                    values = self._gate_values(gate, plain)
                elif direct is None:
                    candidates = gate.spans(data)
                    if candidates:
                        self._walk(plain, data, candidates, grouped)
        if not grouped and not direct and not self._always:
            return []  # no keyword anywhere
        windows: dict[int, list[tuple[int, int]]] = (
            {i: [(0, len(data))] for i in self._always} if self._always else {}
        )
        # Each rule's hits: (keyword length, offsets of their last bytes) for each keyword.
        per_rule: dict[int, list[tuple[int, list[int]]]] = {}
        if direct:
            # The gate found the hits themselves (Hyperscan): no automaton pass. Two keywords
            # can share a value (same length, same rules): the windows are the same whether
            # their hits come in one list or two.
            for ident, ends in direct.items():
                length, idxs = values[ident]
                for idx in idxs:
                    its = per_rule.get(idx)
                    if its is None:
                        per_rule[idx] = [(length, ends)]
                    else:
                        its.append((length, ends))
        for (length, idxs), ends in grouped.items():
            for idx in idxs:
                per_rule.setdefault(idx, []).append((length, ends))
        # Rules with the same keywords and window size have the same windows (the generic
        # rules share a dozen common keywords): they are built once.
        shared: dict[int, list[tuple[int, int]]] = {}
        kinds, n, rules, several = self._window_kind, len(data), self.rules, self._kind_members
        for idx, groups in per_rule.items():
            kind = kinds[idx]
            spans = shared.get(kind)
            if spans is None:
                spans = _windows(groups, rules[idx].window, n)
                if kind in several:
                    spans = self._any_match(kind, data, spans)
                shared[kind] = spans
            windows[idx] = spans
        if not windows:
            return []
        found: dict[tuple[str, int], Match] = {}
        compiled = self._compiled
        for idx, spans in windows.items():
            comp = compiled[idx] or self.compiled(idx)
            on_path: tuple[bool, ...] | bool | None = ()
            if comp.per_path:
                on_path = self._last_rules.get(idx)
                if on_path is None:
                    on_path = self._last_rules[idx] = _on_path(comp, path)
                if on_path is False:
                    continue  # the rule's path does not match
            requires, needed, search = comp.requires, comp.literals, comp.search
            if needed is None:
                needed = self.literals(idx, len(spans))
            for lo, hi in spans:
                # A window holding none of the rule's required strings, or none of the literals
                # every match of its regex spells, holds no match.
                if requires:
                    for r in requires:
                        if data.find(r, lo, hi) >= 0:
                            break
                    else:
                        continue
                if needed:
                    for r in needed:
                        if data.find(r, lo, hi) >= 0:
                            break
                    else:
                        continue
                text: bytes | str
                first: Sequence[tuple[int, int]] | None = None
                if comp.binary:
                    # RE2 searches [lo, hi) of the buffer itself, and `\b`, `^` and `$` see the
                    # real neighbours, so a token cut off by the window is not taken for a whole
                    # one. No copy, no decoding.
                    base, text = 0, data
                    if search is not None:
                        # most windows hold no match: that is one call, without a generator
                        first = search(_UNANCHORED, data, lo, hi)
                        if first[0] == _NO_SPAN:
                            continue
                else:
                    # A rule RE2 cannot run on Latin-1 bytes exactly as on text (see
                    # compile_latin1): its window, decoded, with one byte of context each side.
                    base = max(0, lo - 1)
                    text = data[base : min(len(data), hi + 1)].decode("latin-1")
                for got in _match_spans(comp, text, lo - base, hi - base, first):
                    # The secret is the first non-empty group of comp.groups (a span of (-1, -1)
                    # is a group that took no part).
                    if len(comp.groups) == 1:
                        group = comp.group
                    else:
                        group = next((g for g in comp.groups if got[g][1] > got[g][0]), comp.group)
                    start, end = got[group]
                    if end <= start:
                        continue
                    secret = _str(text[start:end])
                    offset = base + start
                    key = (comp.rule.id, offset)
                    if key in found:
                        continue
                    line = _line_of(data, offset, offset + len(secret))
                    if not self._accept(comp, secret, line):
                        continue
                    if comp.allowlists:
                        assert isinstance(on_path, tuple)  # one answer per allowlist
                        whole = _str(text[got[0][0] : got[0][1]])
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
        if not found:
            return []
        return _with_lines(data, self._unshadowed(list(found.values())))

    def _unshadowed(self, found: list[Match]) -> list[Match]:
        """Drop a generic rule's match that overlaps a specific rule's match: one value, already
        named by the rule that knows what it is (``TOKEN=ghp_...`` is a GitHub token, not also a
        "hard-coded password"). An imported (gitleaks) rule's match that overlaps a built-in
        specific rule's match is dropped the same way: one secret, one finding. So is the match of
        a rule another matching rule ``supersedes`` (a shared key shape, told apart by context)."""
        if len(found) < 2:
            return found  # nothing for a match to overlap
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
        if comp.allow_in is not None and comp.allow_in(secret):
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
        if self._presence:
            yield from self.present(path)
        buf = stream.read(CHUNK_SIZE)
        if not buf:
            return
        more = stream.read(CHUNK_SIZE)
        if not more:
            # The whole file in one buffer (most files): its matches as they are.
            yield from self._scan(buf, path)
            return
        base = 0  # absolute offset of buf[0]
        base_line = 1  # line number at buf[0]
        while True:
            # Matches starting in the tail are found again, whole, in the next buffer.
            limit = len(buf) - OVERLAP if more else len(buf)
            for m in self._scan(buf, path):
                if m.offset >= limit:
                    continue
                if base:
                    m = dataclasses.replace(m, offset=base + m.offset, line=base_line + m.line - 1)
                yield m
            if not more:
                return
            dropped = max(0, len(buf) - OVERLAP)
            base_line += buf.count(b"\n", 0, dropped)
            base += dropped
            buf = buf[dropped:] + more
            more = stream.read(CHUNK_SIZE)


def _compile(rule: Rule) -> _Compiled:
    binary = compile_latin1(rule.regex, rule.id)
    path = compile_checked(rule.path_regex, rule.id, "path") if rule.path_regex else None
    regex = binary if binary is not None else compile_checked(rule.regex, rule.id)
    allow = (
        compile_checked("|".join(f"(?:{a})" for a in rule.allowlist), rule.id, "allowlist")
        if rule.allowlist
        else None
    )
    return _Compiled(
        rule=rule,
        regex=regex,
        binary=binary is not None,
        requires=tuple(r.encode("ascii") for r in rule.requires),
        allow=allow,
        path=path,
        path_in=_text_test(path) if path is not None else None,
        per_path=path is not None or bool(rule.allowlists),
        allow_in=_text_test(allow) if allow is not None else None,
        group=_group_index(regex),
        groups=(*rule.secret_groups, _group_index(regex)),
        allowlists=tuple(_Allow.of(a, rule.id) for a in rule.allowlists),
        search=_raw_search(regex) if binary is not None else None,
        literals=None if binary is not None else (),
    )


_SMALL = 64  # hit counts up to this are merged in Python; more with numpy


def _windows(groups: list[tuple[int, list[int]]], w: int, n: int) -> list[tuple[int, int]]:
    """One rule's regex windows: ``w`` bytes each side of every keyword hit, overlapping windows
    merged. A merged window never spans more than MERGE_FACTOR single-hit windows: a regex's
    all-matches cost can grow with the square of the text it runs on, so a flood of keyword hits
    makes many bounded windows (overlapping, so that every hit's own window lies whole inside one
    of them), not one huge one. ``groups`` holds (keyword length, offsets of the hits' last bytes).
    """
    if len(groups) == 1:
        longest, hits = groups[0][0], len(groups[0][1])
    else:
        longest, hits = max(length for length, _ in groups), sum(len(ends) for _, ends in groups)
    span = 2 * w + longest  # the longest single-hit window
    cap = MERGE_FACTOR * span
    if hits <= _SMALL:
        return _merged_windows(groups, w, n, cap)
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


def _merged_windows(groups: list[tuple[int, list[int]]], w: int, n: int, cap: int) -> list[tuple[int, int]]:
    """:func:`_windows` for a few hits, merged in Python: the hits' windows in (start, end) order,
    each clamped to [0, n] (clamping keeps the order: windows starting at 0 all merge into the
    first, whatever their order), joined to the last merged window when they overlap it and the
    two span at most ``cap``."""
    merged: list[tuple[int, int]] = []
    cur_lo, cur_hi = 0, -1  # the window being merged (none yet)
    if len(groups) == 1:
        # One keyword length: the windows sorted by start are sorted by end too.
        length, ends = groups[0]
        down, up = 1 - length - w, 1 + w
        for e in sorted(ends):
            lo, hi = e + down, e + up
            if lo < 0:
                lo = 0
            if hi > n:
                hi = n
            if lo <= cur_hi and hi - cur_lo <= cap:
                cur_hi = hi
            else:
                if cur_hi >= 0:
                    merged.append((cur_lo, cur_hi))
                cur_lo, cur_hi = lo, hi
    else:
        # (start, end) order is (start, keyword length) order: one integer key per hit sorts
        # as the pair would (``length < _KEY``; floor division keeps a negative start's order).
        keys = sorted([(e - length + 1 - w) * _KEY + length for length, ends in groups for e in ends])
        reach = 2 * w
        for key in keys:
            lo, length = divmod(key, _KEY)
            hi = lo + length + reach
            if lo < 0:
                lo = 0
            if hi > n:
                hi = n
            if lo <= cur_hi and hi - cur_lo <= cap:
                if hi > cur_hi:
                    cur_hi = hi
            else:
                if cur_hi >= 0:
                    merged.append((cur_lo, cur_hi))
                cur_lo, cur_hi = lo, hi
    if cur_hi >= 0:
        merged.append((cur_lo, cur_hi))
    return merged


_KEY = 1 << 16  # longer than any keyword


def _automaton(values: dict[str, tuple[int, tuple[int, ...]]]) -> Any:
    automaton = ahocorasick.Automaton()
    for kw, value in values.items():
        automaton.add_word(kw, value)
    automaton.make_automaton()
    return automaton


_NO_FILE = object()  # no buffer scanned yet: unequal to every path and to None
_UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
_NO_SPAN = (-1, -1)


def _raw_search(regex: Any) -> Any | None:
    """google-re2's own search call of ``regex``, when this version has it."""
    raw = getattr(regex, "_regexp", None)
    return raw.Match if _UNANCHORED is not None and raw is not None and hasattr(raw, "Match") else None


def _text_test(regex: Any) -> Callable[[str], bool]:
    """Whether text regex ``regex`` matches somewhere in a text (a path, a secret): google-re2's
    own search call on the UTF-8 bytes its search() would make of it (no Match object and no
    generator), or search()."""
    raw = _raw_search(regex)
    if raw is None:
        return lambda path: regex.search(path) is not None

    def test(path: str) -> bool:
        text = path.encode("utf-8")
        return bool(raw(_UNANCHORED, text, 0, len(text))[0] != _NO_SPAN)

    return test


def _on_path(comp: _Compiled, path: str | None) -> tuple[bool, ...] | bool:
    """False when ``comp``'s path regex does not match ``path``; else whether each of its
    allowlists' paths does."""
    if comp.path_in is not None and (path is None or not comp.path_in(path)):
        return False
    return tuple(any(p.search(path) for p in a.paths) if path else False for a in comp.allowlists)


def _str(part: bytes | str) -> str:
    return part.decode("latin-1") if isinstance(part, bytes) else part


def _match_spans(
    comp: _Compiled,
    text: bytes | str,
    pos: int,
    endpos: int,
    first: Sequence[tuple[int, int]] | None = None,
) -> Iterator[Sequence[tuple[int, int]]]:
    """What ``comp.regex.finditer(text, pos, endpos)`` finds, as the (start, end) span of every
    group of each match ((-1, -1): the group took no part). With google-re2's own search call
    this is that finditer's loop without its Match objects (a third of a window's cost).
    ``first``: what that call gave for ``[pos, endpos)`` of the bytes ``text``, already asked
    (``0 <= pos <= endpos <= len(text)``)."""
    search = comp.search
    if search is None or not isinstance(text, bytes):
        count = comp.regex.groups
        for m in comp.regex.finditer(text, pos, endpos):
            yield [m.span(g) for g in range(count + 1)]
        return
    n = len(text)
    pos, endpos = max(0, min(pos, n)), max(0, min(endpos, n))
    if pos > endpos:
        return
    while True:
        if first is not None:
            spans, first = first, None
        else:
            spans = search(_UNANCHORED, text, pos, endpos)
        whole = spans[0]
        if whole == _NO_SPAN:
            return
        yield spans
        if pos == endpos:
            return
        pos = pos + 1 if pos == whole[1] else whole[1]


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
