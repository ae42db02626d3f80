"""Literals a regex cannot match without: a cheap test before a regex runs in a window.

``required(pattern)`` gives byte strings, one of which lies inside every match of ``pattern``
(or nothing, when no such strings are known). The engine skips a window that holds none of them,
as it does for a rule's declared ``requires``: a keyword is found case-insensitively, but many
tokens start with a fixed, case-sensitive prefix (``EAA`` for a Facebook token, ``API-`` for
Octopus Deploy, ``Q~`` inside an Azure AD client secret) that most keyword hits lack.

The pattern is read with Python's own regex parser, which reads RE2's syntax the same way for
everything this looks at; a pattern it reads differently or not at all (RE2-only syntax such as
``\\pL``, ``[[:alpha:]]`` or ``\\Q...\\E``, a flag group in the middle) gives nothing. Anything
this does not understand counts as "could match anything", so the answer can only be weaker
than the truth, never wrong: a literal is required only where every path through the pattern
spells it.
"""

from __future__ import annotations

import importlib
import itertools
import re
from typing import Any

# The standard library's own regex parser (private, but stable across 3.11+); typeshed has no stubs.
_p: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

MAX_SET = 8  # strings in a set (each is one ``bytes.find`` per window)
MIN_LEN = 2  # a single byte is in most windows: not worth a look
MAX_LEN = 16  # bytes kept of an exact string
# RE2 syntax Python reads otherwise or not at all; ``{,n}`` is a repeat to Python, text to RE2.
_RE2_ONLY = re.compile(r"\\[pPQECz]|\[\[:|\\x\{|\(\?<[A-Za-z]|\{,")

Strings = frozenset[bytes]


def required(pattern: str) -> tuple[bytes, ...]:
    """Byte strings one of which every match of ``pattern`` (RE2 syntax, run on Latin-1 bytes)
    contains; empty when none are known."""
    if not pattern.isascii() or _RE2_ONLY.search(pattern):
        return ()
    try:
        parsed = _p.parse(pattern)
    except Exception:  # noqa: BLE001 - syntax Python reads differently: nothing is known
        return ()
    folded = bool(parsed.state.flags & re.IGNORECASE)
    need = _Walk().need(list(parsed), folded)
    if not need or min(len(s) for s in need) < MIN_LEN or not _case_sensitive(need):
        return ()
    # A string holding another of the set adds nothing: a window with it holds the other.
    return tuple(sorted(s for s in need if not any(t != s and t in s for t in need)))


class _Walk:
    def exact(self, node: tuple[Any, Any], folded: bool) -> Strings | None:
        """Every string ``node`` can match, when they are few and short; else None."""
        op, arg = node
        if op is _c.LITERAL:
            return _chars([arg], folded)
        if op is _c.AT:
            return frozenset({b""})  # an anchor matches no byte
        if op is _c.IN:
            chars: list[int] = []
            for item_op, item in arg:
                if item_op is _c.LITERAL:
                    chars.append(item)
                elif item_op is _c.RANGE and item[1] - item[0] < MAX_SET:
                    chars.extend(range(item[0], item[1] + 1))
                else:  # NEGATE, CATEGORY, wide ranges
                    return None
            return _chars(chars, folded)
        if op is _c.SUBPATTERN:
            return self.exact_seq(list(arg[3]), _flags(folded, arg[1], arg[2]))
        if op is _c.BRANCH:
            out: set[bytes] = set()
            for branch in arg[1]:
                one = self.exact_seq(list(branch), folded)
                if one is None:
                    return None
                out |= one
            return frozenset(out) if len(out) <= MAX_SET else None
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
            low, high, item = arg
            one = self.exact_seq(list(item), folded)
            if one is None or high > 4:
                return None
            out = set()
            for count in range(low, high + 1):
                repeated = _product([one] * count)
                if repeated is None:
                    return None
                out |= repeated
                if len(out) > MAX_SET:
                    return None
            return frozenset(out)
        return None

    def exact_seq(self, nodes: list[tuple[Any, Any]], folded: bool) -> Strings | None:
        parts = [self.exact(n, folded) for n in nodes]
        if any(p is None for p in parts):
            return None
        return _product([p for p in parts if p is not None])

    def need(self, nodes: list[tuple[Any, Any]], folded: bool) -> Strings | None:
        """Strings one of which every match of the sequence ``nodes`` contains, or None."""
        candidates: list[Strings] = []
        run: Strings | None = frozenset({b""})
        for node in nodes:
            one = self.exact(node, folded)
            if one is not None and run is not None:
                grown = _product([run, one])
                if grown is not None:
                    run = grown
                    continue
            if run is not None:
                candidates.append(run)
            run = one  # a run restarts at this node (or at the next exact one)
            inner = self.need_node(node, folded)
            if inner is not None:
                candidates.append(inner)
            if run is None:
                run = frozenset({b""})
        if run is not None:
            candidates.append(run)
        return max(candidates, key=_score, default=None)

    def need_node(self, node: tuple[Any, Any], folded: bool) -> Strings | None:
        op, arg = node
        if op is _c.SUBPATTERN:
            return self.need(list(arg[3]), _flags(folded, arg[1], arg[2]))
        if op is _c.BRANCH:
            out: set[bytes] = set()
            for branch in arg[1]:
                one = self.need(list(branch), folded)
                if not one or min(len(s) for s in one) == 0:
                    return None
                out |= one
            return frozenset(out) if len(out) <= MAX_SET else None
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
            low, _high, item = arg
            return self.need(list(item), folded) if low >= 1 else None
        exact = self.exact(node, folded)
        return exact


def _flags(folded: bool, add: int, remove: int) -> bool:
    if add & re.IGNORECASE:
        return True
    if remove & re.IGNORECASE:
        return False
    return folded


def _chars(codes: list[int], folded: bool) -> Strings | None:
    """The bytes of ``codes``; None (unknown) for a letter under ``(?i)``: a literal in every
    case is no better than the keyword, which is found in every case already."""
    out: set[bytes] = set()
    for code in codes:
        if code > 0xFF:
            continue  # never in Latin-1 bytes
        char = bytes([code])
        if folded and (code >= 0x80 or char.lower() != char.upper()):
            return None
        out.add(char)
    return frozenset(out) if out and len(out) <= MAX_SET else None


def _product(sets: list[Strings]) -> Strings | None:
    """Every concatenation of one string from each set, when few and short; else None."""
    out: set[bytes] = {b""}
    for one in sets:
        out = {a + b for a, b in itertools.product(out, one)}
        if len(out) > MAX_SET or any(len(s) > MAX_LEN for s in out):
            return None
    return frozenset(out)


def _score(strings: Strings | None) -> tuple[bool, int, int]:
    """Sets that are not just a word in every case first (the keyword is found in every case
    already: only a case-sensitive literal tells a window apart), then the longer shortest
    string (rarer), then fewer strings."""
    if not strings:
        return (False, 0, 0)
    return (_case_sensitive(strings), min(len(s) for s in strings), -len(strings))


def _case_sensitive(strings: Strings) -> bool:
    return len({s.lower() for s in strings}) == len(strings)


RELAX_FROM = 8  # bounded repeats with an upper bound this high or higher are relaxed
_BOUNDED = re.compile(r"\{(\d+),(\d+)\}")


def relaxed(pattern: str) -> str | None:
    """``pattern`` with every bounded repeat ``{m,n}`` (n >= RELAX_FROM) made ``{m,}``: it
    matches every string ``pattern`` matches, and more, but RE2's DFA for it is a fraction of
    the size (a counted repeat makes a state for every count), so it answers "can this window
    hold a match?" several times faster. None when the pattern has syntax this does not follow
    (``\\Q...\\E`` quoting, POSIX classes)."""
    if "\\Q" in pattern or "[:" in pattern:
        return None
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])  # an escape: the next character is never syntax here
            i += 2
            continue
        if in_class:
            in_class = char != "]"
            out.append(char)
            i += 1
            continue
        if char == "[":
            # A class: "]" right after "[" or "[^" is a member, not its end.
            start = i + 1 + (pattern.startswith("^", i + 1))
            end = start + 1 if pattern.startswith("]", start) else start
            out.append(pattern[i:end])
            i, in_class = end, True
            continue
        bounded = _BOUNDED.match(pattern, i)
        if bounded and int(bounded.group(2)) >= RELAX_FROM:
            out.append("{" + bounded.group(1) + ",}")
            i = bounded.end()
            continue
        out.append(char)
        i += 1
    return "".join(out)
