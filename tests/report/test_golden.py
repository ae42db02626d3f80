"""Golden files for every report format. Regenerate with LAYERLEAK_UPDATE_GOLDEN=1 after a
deliberate change, and review the diff: these files are the output contract."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from report_sample import PLAIN, SAMPLE_RULES, sample_report

from layerleak.report.formats import FORMATS, renderer
from layerleak.report.interface import RenderOptions
from layerleak.report.json_report import JSON_VERSION, render_json
from layerleak.report.table import WIDTH, render_table

GOLDEN = Path(__file__).parent / "golden"
OPTIONS = RenderOptions(rules=SAMPLE_RULES, width=WIDTH)


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LAYERLEAK_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with LAYERLEAK_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def _versionless(text: str) -> str:
    from layerleak import __version__

    text = text.replace(f'"{__version__}"', '"VERSION"')
    return text.replace(f"layerleak {__version__}", "layerleak VERSION")


def test_json_golden() -> None:
    text = render_json(sample_report())
    doc = json.loads(text)
    assert doc["version"] == JSON_VERSION
    assert doc["baselined"] == 0 and doc["ignored"] == 0
    check("report.json", _versionless(text))


def test_table_golden_fits_80_columns() -> None:
    text = render_table(sample_report())
    assert all(len(line) <= WIDTH for line in text.splitlines())
    check("report.txt", text)


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_has_a_golden_file(name: str) -> None:
    r = renderer(name)
    assert r.name == name and r.extension
    text = r.render(sample_report(), OPTIONS)
    check(f"report.{r.extension}", _versionless(text))


@pytest.mark.parametrize("name", FORMATS)
def test_no_secret_and_no_raw_escape_in_any_format(name: str) -> None:
    text = renderer(name).render(sample_report(), OPTIONS)
    assert PLAIN not in text
    assert "\x1b" not in text and "\x07" not in text, "image text must be escaped"


@pytest.mark.parametrize("name", FORMATS)
def test_write_is_render(name: str, tmp_path: Path) -> None:
    r = renderer(name)
    out = tmp_path / f"report.{r.extension}"
    with out.open("w", encoding="utf-8") as handle:
        r.write(sample_report(), OPTIONS, handle)
    assert out.read_text(encoding="utf-8") == r.render(sample_report(), OPTIONS)
