"""The table of report formats: ``--format NAME`` picks ``renderer(NAME)``.

Each renderer's module is imported when its format is asked for: the command line lists the
names without importing five renderers (HTML and SARIF pull in more than a JSON scan needs).
"""

from __future__ import annotations

import importlib
from functools import cache

from layerleak.report.interface import Renderer

# name -> (module, class); tests/report/test_golden.py checks every entry's name.
_RENDERERS: dict[str, tuple[str, str]] = {
    "table": ("layerleak.report.table", "TableRenderer"),
    "json": ("layerleak.report.json_report", "JsonRenderer"),
    "jsonl": ("layerleak.report.json_report", "JsonlRenderer"),
    "sarif": ("layerleak.report.sarif", "SarifRenderer"),
    "html": ("layerleak.report.html", "HtmlRenderer"),
}
FORMATS: tuple[str, ...] = tuple(_RENDERERS)


@cache
def renderer(name: str) -> Renderer:
    """The renderer for ``--format name`` (KeyError for a name not in :data:`FORMATS`)."""
    module, cls = _RENDERERS[name]
    made: Renderer = getattr(importlib.import_module(module), cls)()
    return made
