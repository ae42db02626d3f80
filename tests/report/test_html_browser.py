"""The HTML report in a real headless browser (Debian's chromium): it renders, its script runs,
and no secret text is in the rendered page unless the report was made with --show-secrets."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from report_sample import PLAIN, sample_report

from layerleak.report.html import CSP, render_html

if TYPE_CHECKING:
    from conftest import Built, Layerleak

WINDOW = (1280, 1000)
BROWSER_TIMEOUT_S = 120


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "=" * 20 + " chromium NOT FOUND: the HTML report is not tested in a browser " + "=" * 20
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def run_browser(page: Path, tmp: Path, *mode: str, view: str = "") -> subprocess.CompletedProcess[bytes]:
    argv = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
        f"--user-data-dir={tmp / 'profile'}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--virtual-time-budget=3000", *mode, page.as_uri() + view,
    ]
    done = subprocess.run(argv, capture_output=True, timeout=BROWSER_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        pytest.fail(f"chromium exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}")
    return done


def dom(page: Path, tmp: Path, view: str = "") -> str:
    return run_browser(page, tmp, "--dump-dom", view=view).stdout.decode("utf-8")


def png_facts(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the pixel data): a blank page has very few."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_the_page_renders_in_a_browser(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(sample_report()), encoding="utf-8")
    shot = tmp_path / "shot.png"
    run_browser(page, tmp_path, f"--screenshot={shot}")
    width, height, distinct = png_facts(shot.read_bytes())
    assert (width, height) == WINDOW
    assert distinct > 40, f"the screenshot looks blank ({distinct} distinct byte values)"
    rendered = dom(page, tmp_path)
    assert "leaky:latest" in rendered and "deleted in layer 1" in rendered
    assert '<span id="shown">5</span>' in rendered, "the filter script ran and counted every finding"
    assert PLAIN not in rendered


def test_filters_by_severity_and_status(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(sample_report()), encoding="utf-8")
    critical = dom(page, tmp_path, "#severity=critical")
    assert '<span id="shown">1</span>' in critical
    assert critical.count('class="finding hidden"') == 4
    deleted = dom(page, tmp_path, "#status=deleted,overwritten&severity=high,medium")
    assert '<span id="shown">2</span>' in deleted


def test_page_is_self_contained() -> None:
    text = render_html(sample_report())
    assert f'content="{CSP}"' in text and "default-src 'none'" in CSP
    for needle in ("http://", "https://", "src=", "href=", "@import", "url(", "<link", "<img"):
        assert needle not in text, needle
    assert "\x1b" not in text, "control characters are shown as text"


def test_no_secret_in_the_rendered_page_unless_shown(layerleak: Layerleak, handmade_images: Built,
                                                    tmp_path: Path) -> None:
    target = handmade_images.target("opaque")
    secret = handmade_images.fixtures["opaque"].secrets[0].value
    redacted = tmp_path / "redacted.html"
    run = layerleak("scan", target, "--format", "html", "-o", str(redacted), "--no-cache")
    assert run.returncode == 1, run.describe()
    page = dom(redacted, tmp_path)
    assert "/etc/app/secret.conf" in page and "deleted in layer 1" in page
    assert secret not in page and secret[8:] not in page
    shown = tmp_path / "shown.html"
    run = layerleak("scan", target, "--format", "html", "-o", str(shown), "--no-cache", "--show-secrets")
    assert secret in dom(shown, tmp_path), "with --show-secrets the page shows the secret"
