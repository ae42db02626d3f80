"""Image text on a terminal: every control character shown as an escape, printable text kept."""

from __future__ import annotations

import pytest

from layerleak.report.escape import escape


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain/path é ü 中", "plain/path é ü 中"),
        ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),
        ("osc52 \x1b]52;c;ZWNobw==\x07", "osc52 \\x1b]52;c;ZWNobw==\\x07"),
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("c1 \x9b31m", "c1 \\x9b31m"),
        ("bidi \u202eevil", "bidi \\u202eevil"),
        ("bytes \udcff\udcfe", "bytes \\xff\\xfe"),
        ("nul \x00 del \x7f", "nul \\x00 del \\x7f"),
    ],
)
def test_escape(raw: str, shown: str) -> None:
    assert escape(raw) == shown
    assert escape(raw).isprintable()
