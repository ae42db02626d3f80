"""The keyword gate: a fast, exact answer to "where could the automaton find a keyword?".

The engine runs its Aho-Corasick automaton over ``data.lower()``. In Python it walks well under
100 MB/s, and on a real image a keyword occurs somewhere in three quarters of the bytes it is given
(``token``, ``pass`` and ``://`` are everywhere in source code and binaries), so skipping to the
first hit saves little. A gate finds, several times faster, *spans* of the buffer that hold the
start of every keyword occurrence; the automaton then walks only those spans (plus the length of
the longest keyword), and the bytes between them are never lowered, decoded or walked.

A gate may report more than there is (it is case-insensitive over Latin-1, a superset of ASCII
``lower()``), never less: every keyword occurrence starts inside a span, so the automaton finds
exactly the hits it finds over every byte. Every gate is checked against that in
tests/detect/test_gate.py.

- :class:`Re2Gate` (default): one RE2 alternation of the keywords, Latin-1, case-insensitive,
  run with ``finditer``. Matches do not overlap, but an occurrence RE2 steps over starts inside
  the match that hid it (the next search starts at that match's end), so the matches' spans do
  hold every start.
- :class:`HyperscanGate`: Hyperscan reports every occurrence, when the optional ``hyperscan``
  package is installed. Never required. When every keyword is lowercase ASCII, Hyperscan's
  case-insensitive match of a keyword is exactly the automaton's match of it in ``data.lower()``
  (both fold ASCII letters only), so :meth:`Gate.hits` hands the engine the hits themselves and
  the automaton is not run at all.
- :class:`NoGate`: the whole buffer is one span (the straightforward path, for comparisons).

Spans closer than ``GAP`` bytes are merged: one automaton call over a few hundred bytes costs
about what a few hundred bytes of walking do.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from typing import Any

import re2

GATES = ("auto", "re2", "hyperscan", "none")
GAP = 256  # spans closer than this are merged

Span = tuple[int, int]


class Gate(abc.ABC):
    name: str

    @abc.abstractmethod
    def spans(self, data: bytes) -> list[Span]:
        """Sorted, disjoint ``[lo, hi)`` ranges of ``data`` that hold the start of every keyword
        occurrence in ``data.lower()``; empty when there is none."""

    #: The keywords :meth:`hits` numbers, when it can answer; else empty.
    keywords: tuple[str, ...] = ()

    def hits(self, data: bytes) -> dict[int, list[int]] | None:
        """Every keyword occurrence the automaton finds in ``data.lower()``: for each keyword
        found (its index in :attr:`keywords`), the offsets of its occurrences' last bytes, in no
        particular order; None when this gate cannot say (the engine then runs the automaton over
        :meth:`spans`)."""
        return None


class NoGate(Gate):
    name = "none"

    def spans(self, data: bytes) -> list[Span]:
        return [(0, len(data))] if data else []


def _latin1(keywords: Iterable[str]) -> list[bytes]:
    """Keywords as the bytes they match. A keyword with a character above U+00FF can never occur
    in Latin-1-decoded text, so the automaton never reports it: the gate leaves it out too."""
    out = set()
    for kw in keywords:
        try:
            out.add(kw.encode("latin-1"))
        except UnicodeEncodeError:
            continue
    return sorted(out)


class Re2Gate(Gate):
    name = "re2"

    def __init__(self, keywords: Iterable[str]) -> None:
        words = _latin1(keywords)
        self._regex: Any = None
        if words:
            options = re2.Options()
            options.encoding = re2.Options.Encoding.LATIN1
            options.case_sensitive = False
            options.max_mem = 64 << 20  # room for the DFA of a few hundred keywords
            self._regex = re2.compile(b"|".join(re2.escape(w) for w in words), options)
        # google-re2's own search call, without the Match object its finditer builds for every
        # hit (a third of the gate's time on source code); the public API where it is missing.
        raw = getattr(self._regex, "_regexp", None)
        anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
        self._raw: Any = raw.Match if raw is not None and hasattr(raw, "Match") else None
        self._unanchored = anchor

    def spans(self, data: bytes) -> list[Span]:
        if self._regex is None:
            return []
        if self._raw is None or self._unanchored is None:
            return _merged(m.span() for m in self._regex.finditer(data))
        return _merged(self._matches(data))

    def _matches(self, data: bytes) -> Iterator[Span]:
        search, anchor, pos, n = self._raw, self._unanchored, 0, len(data)
        while pos <= n:
            start, end = search(anchor, data, pos, n)[0]
            if start < 0:
                return
            yield start, end
            pos = end if end > start else end + 1


def _merged(matches: Iterable[Span]) -> list[Span]:
    """Sorted match spans, those closer than GAP merged."""
    out: list[Span] = []
    lo = hi = -GAP - 1
    for start, end in matches:
        if start - hi > GAP:
            if hi >= 0:
                out.append((lo, hi))
            lo = start
        hi = end
    if hi >= 0:
        out.append((lo, hi))
    return out


class HyperscanGate(Gate):
    """Hyperscan reports every occurrence (by its end offset); its start is that end less the
    length of the keyword reported."""

    name = "hyperscan"

    def __init__(self, keywords: Iterable[str]) -> None:
        import hyperscan  # optional accelerator: ImportError means "not installed"

        words = _latin1(keywords)
        self._lengths = [len(w) for w in words]
        if words and all(w.isascii() and w == w.lower() for w in words):
            self.keywords = tuple(w.decode("ascii") for w in words)
        self._db: Any = None
        if words:
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self._db.compile(
                expressions=[re2.escape(w) for w in words],
                ids=list(range(len(words))),
                elements=len(words),
                flags=[hyperscan.HS_FLAG_CASELESS] * len(words),
            )

    def spans(self, data: bytes) -> list[Span]:
        if self._db is None or not data:
            return []
        starts: list[int] = []
        lengths = self._lengths

        def on_match(ident: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            starts.append(end - lengths[ident])

        self._db.scan(data, match_event_handler=on_match)
        return _merged((start, start + 1) for start in sorted(starts))

    def hits(self, data: bytes) -> dict[int, list[int]] | None:
        if not self.keywords:
            return None
        found: dict[int, list[int]] = {}
        if data:
            self._db.scan(data, match_event_handler=_collect, context=found)
        return found


def _collect(ident: int, _start: int, end: int, _flags: int, found: dict[int, list[int]]) -> None:
    """Hyperscan's match callback: ``end`` made the last byte's offset, kept by keyword."""
    try:
        found[ident].append(end - 1)
    except KeyError:
        found[ident] = [end - 1]


def make_gate(name: str, keywords: Iterable[str]) -> Gate:
    """``auto`` is Hyperscan when it is installed, else RE2."""
    words = list(keywords)
    if name == "none":
        return NoGate()
    if name == "re2":
        return Re2Gate(words)
    if name == "hyperscan":
        return HyperscanGate(words)
    if name == "auto":
        try:
            return HyperscanGate(words)
        except ImportError:
            return Re2Gate(words)
    raise ValueError(f"unknown gate {name!r} (expected one of {', '.join(GATES)})")
