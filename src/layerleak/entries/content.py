"""Scan one file's content: classify it cheaply, then feed its bytes to the engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from layerleak.detect.classify import HEAD, skip_reason
from layerleak.detect.engine import FILE_HEAD, Engine
from layerleak.entries import credfiles
from layerleak.entries.limits import Budget
from layerleak.entries.nested import scan_file
from layerleak.models import Match


def scan_entry(
    path: str,
    first: bytes,
    rest: IO[bytes],
    engine: Engine,
    notes: list[str] | None = None,
    base: str | None = None,
) -> tuple[str | None, Iterator[tuple[str | None, Match]]]:
    """(skip reason, iterator of (inner_path, match)). ``first`` is the file's first chunk,
    ``rest`` yields the remainder. Archives and compressed files are opened, encoded content is
    decoded (see docs/content.md); what was cut short is appended to ``notes`` as it happens.
    ``base``: the path's file name, when the caller has it (the layer walk split the path)."""
    head = first[:HEAD]  # classified here, handed on
    reason = skip_reason(head)
    if reason is not None:
        return reason, iter(())
    budget = Budget(notes=notes if notes is not None else [])
    hits = scan_file(engine, path, first, rest, budget, base, head)
    if len(first) < FILE_HEAD:  # the whole file is in first
        kind = credfiles.kind_for(path, base)  # looked up once per file, handed on
        if kind is not None:
            return None, credfiles.merge_hits(path, first, hits, engine, kind)
    return None, hits
