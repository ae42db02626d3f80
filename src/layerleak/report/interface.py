"""The one interface every report format implements, and the options a renderer is given.

A renderer turns a finished :class:`~layerleak.models.ScanReport` into text. It is a small class
with a ``name`` (the ``--format`` value), a file ``extension`` and :meth:`Renderer.render`.
:meth:`Renderer.write` streams to a text file; its default writes ``render()``'s result, and a
format whose output is a sequence of independent records (``jsonl``) overrides
:meth:`Renderer.write_target` so a caller that scans many images can write each target's lines as
it ends (see docs/design.md, "A report format"). Register a renderer in
:data:`layerleak.report.formats.FORMATS`; the CLI's ``--format`` choice is built from it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, TextIO

from layerleak.models import ScanReport, TargetResult

if TYPE_CHECKING:
    from layerleak.detect.rules import Rule


def _no_warning(_message: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What a renderer may use besides the report.

    ``rules``: the rules in use by id (SARIF and HTML describe them). ``width``: the terminal's
    columns for ``table``, None for "do not truncate" (a file or a pipe). ``color``: ANSI colours
    for ``table``. ``warn``: called with one line for anything the reader of stderr must know
    (the SARIF renderer says so when GitHub's limits cut results).
    """

    rules: Mapping[str, Rule] = field(default_factory=dict)
    width: int | None = None
    color: bool = False
    warn: Callable[[str], None] = _no_warning


class Renderer(ABC):
    """One output format."""

    name: ClassVar[str]  # the --format value
    extension: ClassVar[str]  # for a default output file name, without the dot
    media_type: ClassVar[str] = "text/plain"

    @abstractmethod
    def render(self, report: ScanReport, options: RenderOptions) -> str:
        """The whole report as text."""

    def write(self, report: ScanReport, options: RenderOptions, out: TextIO) -> None:
        """Write the whole report to ``out``."""
        out.write(self.render(report, options))

    streams: ClassVar[bool] = False  # True: write_target() may be called per target

    def write_target(self, result: TargetResult, options: RenderOptions, out: TextIO) -> None:
        """Write one target's part of the report as soon as it is scanned (``streams`` formats)."""
        raise NotImplementedError(f"--format {self.name} is written once the scan ends")
