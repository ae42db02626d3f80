"""The table of report formats: ``--format NAME`` picks ``RENDERERS[NAME]``."""

from __future__ import annotations

from layerleak.report.html import HtmlRenderer
from layerleak.report.interface import Renderer
from layerleak.report.json_report import JsonlRenderer, JsonRenderer
from layerleak.report.sarif import SarifRenderer
from layerleak.report.table import TableRenderer

RENDERERS: dict[str, Renderer] = {
    r.name: r for r in (TableRenderer(), JsonRenderer(), JsonlRenderer(), SarifRenderer(), HtmlRenderer())
}
FORMATS: tuple[str, ...] = tuple(RENDERERS)


def renderer(name: str) -> Renderer:
    """The renderer for ``--format name`` (KeyError for a name not in :data:`FORMATS`)."""
    return RENDERERS[name]
