"""The table fits the width it is given, never cuts what a responder needs, and colours safely."""

from __future__ import annotations

import re

import pytest
from report_sample import HOSTILE_PATH, sample_report

from layerleak.report.table import ansi, fit_path, fit_step, render_table

CSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.parametrize("width", [60, 80, 100, 132])
def test_every_line_fits_and_the_vital_parts_survive(width: int) -> None:
    text = render_table(sample_report(), width=width)
    for line in text.splitlines():
        assert len(line) <= width, (width, line)
    assert "[deleted in layer 1]" in text
    assert "[overwritten in layer 2]" in text
    assert "server-private-key.pem:1" in text
    assert "in /root/.aws/credentials" in text
    assert "in /opt/app/config/production/settings/" in text


def test_no_width_cuts_nothing() -> None:
    text = render_table(sample_report(), width=None)
    assert text.count("…") == 1  # the image ID alone is always abbreviated
    assert "/opt/very-long-directory-0/very-long-directory-1/very-long-directory-2" in text
    assert "COPY file:1234567890abcdef1234567890abcdef in /root/.aws/credentials" in text


def test_summary_tells_the_responder_what_to_do() -> None:
    text = " ".join(render_table(sample_report(), width=None).split())
    assert ("5 findings of 5 unique secrets, in 6 places: 2 present, 1 deleted but still extractable, "
            "1 overwritten, 2 in config or history") in text
    assert "Rotate every one: a deleted file is still in the image." in text


def test_history_finding_shows_its_step_and_layer() -> None:
    text = render_table(sample_report(), width=None)
    assert "layer 1: |1 DB_PASSWORD=hu******** (14 chars) RUN rm /root/.aws/credentials" in text


def test_hostile_text_is_escaped_even_in_colour() -> None:
    text = render_table(sample_report(), ansi, width=None)
    assert "\x07" not in text and "\x1b]" not in text and "\x1b[2J" not in text
    # The only escape sequences left are our own SGR colours.
    assert "\x1b" not in CSI.sub("", text)
    assert HOSTILE_PATH.replace("\x1b", "\\x1b").replace("\x07", "\\x07") in text


def test_critical_and_high_have_distinct_colours() -> None:
    text = render_table(sample_report(), ansi, width=None)
    critical = re.search(r"(\x1b\[[0-9;]*m)CRITICAL", text)
    high = re.search(r"(\x1b\[[0-9;]*m)HIGH", text)
    assert critical and high and critical.group(1) != high.group(1)
    assert ansi("x", "critical") != ansi("x", "high")


def test_fitting_helpers() -> None:
    assert fit_path("/a/b/c/d/e/f/g/name.txt:12", 16).endswith("/name.txt:12")
    assert len(fit_path("/a/b/c/d/e/f/g/name.txt:12", 16)) == 16
    step = "/bin/sh -c #(nop) COPY multi:" + "0" * 64 + " in /etc/app/"
    assert fit_step(step, 40).endswith(" in /etc/app/") and len(fit_step(step, 40)) == 40
    assert fit_step(step, None) == "COPY multi:" + "0" * 64 + " in /etc/app/"
