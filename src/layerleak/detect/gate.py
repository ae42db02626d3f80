"""The keyword gate: a fast, exact answer to "where could the automaton's first hit start?".

The engine runs its Aho-Corasick automaton over ``data.lower()``. Most bytes of an image (binaries,
libraries, most source files) hold no keyword at all, and the automaton walks them at well under
100 MB/s in Python. A gate finds the first place a keyword could start, several times faster, so
the engine skips a buffer with no keyword and starts the automaton at the first candidate.

A gate may answer too early (it is case-insensitive over Latin-1, a superset of ASCII
``lower()``), never too late, and returns None only when no keyword occurs: the findings are
exactly those of running the automaton over every byte. Every gate is checked against that in
tests/detect/test_gate.py.

- :class:`Re2Gate` (default): one RE2 alternation of the keywords, Latin-1, case-insensitive.
- :class:`HyperscanGate`: the same with Hyperscan, when the optional ``hyperscan`` package is
  installed. Never required.
- :class:`NoGate`: every buffer goes to the automaton from its first byte (the straightforward
  path, for comparisons).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterable
from typing import Any

import re2

GATES = ("auto", "re2", "hyperscan", "none")


class Gate(abc.ABC):
    name: str

    @abc.abstractmethod
    def first(self, data: bytes) -> int | None:
        """An offset at or before the first keyword occurrence in ``data.lower()``, or None if
        there is none."""


class NoGate(Gate):
    name = "none"

    def first(self, data: bytes) -> int | None:
        return 0


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

    def first(self, data: bytes) -> int | None:
        if self._regex is None:
            return None
        m = self._regex.search(data)
        return None if m is None else int(m.start())


class HyperscanGate(Gate):
    """Hyperscan reports matches in order of their end offset, so the first report ends the scan:
    no occurrence ends earlier, hence none starts before ``end - longest keyword``."""

    name = "hyperscan"

    def __init__(self, keywords: Iterable[str]) -> None:
        import hyperscan  # optional accelerator: ImportError means "not installed"

        self._hs: Any = hyperscan
        words = _latin1(keywords)
        self._longest = max((len(w) for w in words), default=0)
        self._db: Any = None
        if words:
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            flags = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH
            self._db.compile(
                expressions=[re2.escape(w) for w in words],
                ids=list(range(len(words))),
                elements=len(words),
                flags=[flags] * len(words),
            )

    def first(self, data: bytes) -> int | None:
        if self._db is None:
            return None
        found: list[int] = []

        def on_match(_id: int, _start: int, end: int, _flags: int, _ctx: object) -> bool:
            found.append(end)
            return True  # stop: the first report is all we need

        with contextlib.suppress(self._hs.ScanTerminated):
            self._db.scan(data, match_event_handler=on_match)
        if not found:
            return None
        return max(0, found[0] - self._longest)


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
