"""The detection engine: one Aho-Corasick automaton over every rule's keywords, then each rule's
RE2 regex only in a window around its keyword hits, then entropy and false-positive filters.

The engine sees bytes, never where they came from: callers attach the location.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import ahocorasick

from layerleak.detect import filters
from layerleak.detect.entropy import shannon_entropy
from layerleak.detect.rules import SECRET_GROUP, Rule, compile_checked, ruleset_hash
from layerleak.models import Match

CHUNK_SIZE = 8 * 1024 * 1024  # bytes held per file at a time: the memory bound for file content
OVERLAP = 32 * 1024  # re-scanned between chunks so a secret on a chunk boundary is not lost


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    regex: Any
    allow: tuple[Any, ...]
    path: Any | None
    group: int


class Engine:
    def __init__(self, rules: Sequence[Rule]) -> None:
        if not rules:
            raise ValueError("the engine needs at least one rule")
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.ruleset = ruleset_hash(self.rules)
        self._compiled: list[_Compiled] = []
        by_keyword: dict[str, list[int]] = {}
        for idx, rule in enumerate(self.rules):
            regex = compile_checked(rule.regex, rule.id)
            self._compiled.append(
                _Compiled(
                    rule=rule,
                    regex=regex,
                    allow=tuple(compile_checked(a, rule.id, "allowlist") for a in rule.allowlist),
                    path=compile_checked(rule.path_regex, rule.id, "path")
                    if rule.path_regex
                    else None,
                    group=regex.groupindex[SECRET_GROUP],
                )
            )
            for kw in rule.keywords:
                by_keyword.setdefault(kw, []).append(idx)
        self._automaton = ahocorasick.Automaton()
        for kw, idxs in by_keyword.items():
            self._automaton.add_word(kw, (len(kw), tuple(idxs)))
        self._automaton.make_automaton()
        self._by_id = {r.id: r for r in self.rules}

    def rule(self, rule_id: str) -> Rule:
        return self._by_id[rule_id]

    def scan(self, data: bytes, path: str | None = None) -> list[Match]:
        """Every match in ``data`` (offsets and 1-based lines relative to ``data``)."""
        if not data:
            return []
        lowered = data.lower().decode("latin-1")
        windows: dict[int, list[tuple[int, int]]] = {}
        for end, (length, idxs) in self._automaton.iter(lowered):
            start = end - length + 1
            for idx in idxs:
                w = self._compiled[idx].rule.window
                lo, hi = max(0, start - w), min(len(data), end + 1 + w)
                spans = windows.setdefault(idx, [])
                if spans and lo <= spans[-1][1]:
                    spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
                else:
                    spans.append((lo, hi))
        if not windows:
            return []
        found: dict[tuple[str, int], Match] = {}
        for idx, spans in windows.items():
            comp = self._compiled[idx]
            if comp.path is not None and (path is None or not comp.path.search(path)):
                continue
            for lo, hi in spans:
                text = data[lo:hi].decode("latin-1")
                for m in comp.regex.finditer(text):
                    secret = m.group(comp.group)
                    if not secret:
                        continue
                    offset = lo + m.start(comp.group)
                    key = (comp.rule.id, offset)
                    if key in found or not self._accept(comp, secret):
                        continue
                    found[key] = Match(
                        rule_id=comp.rule.id,
                        secret=secret,
                        offset=offset,
                        line=0,
                        confidence=comp.rule.confidence,
                    )
        return _with_lines(data, found.values())

    @staticmethod
    def _accept(comp: _Compiled, secret: str) -> bool:
        rule = comp.rule
        if len(secret) < rule.min_length:
            return False
        if any(a.search(secret) for a in comp.allow):
            return False
        if filters.rejection(secret):
            return False
        return not (
            rule.min_entropy is not None and shannon_entropy(secret) < rule.min_entropy
        )

    def scan_stream(self, stream: IO[bytes], path: str | None = None) -> Iterator[Match]:
        """Scan a file of any size in bounded memory: CHUNK_SIZE at a time, OVERLAP re-read."""
        base = 0  # absolute offset of buf[0]
        base_line = 1  # line number at buf[0]
        buf = stream.read(CHUNK_SIZE)
        while buf:
            more = stream.read(CHUNK_SIZE)
            # Matches starting in the tail are found again, whole, in the next buffer.
            limit = len(buf) - OVERLAP if more else len(buf)
            for m in self.scan(buf, path):
                if m.offset >= limit:
                    continue
                yield Match(
                    rule_id=m.rule_id,
                    secret=m.secret,
                    offset=base + m.offset,
                    line=base_line + m.line - 1,
                    confidence=m.confidence,
                )
            if not more:
                return
            dropped = max(0, len(buf) - OVERLAP)
            base_line += buf.count(b"\n", 0, dropped)
            base += dropped
            buf = buf[dropped:] + more


def _with_lines(data: bytes, matches: Any) -> list[Match]:
    ordered = sorted(matches, key=lambda m: m.offset)
    out: list[Match] = []
    line, pos = 1, 0
    for m in ordered:
        line += data.count(b"\n", pos, m.offset)
        pos = m.offset
        out.append(
            Match(
                rule_id=m.rule_id,
                secret=m.secret,
                offset=m.offset,
                line=line,
                confidence=m.confidence,
                reason=m.reason,
            )
        )
    return out
