"""The progress bar draws from the scanning thread: no extra thread, so workers can be forked."""

from __future__ import annotations

import io
import threading

import pytest

from layerleak.report import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_runs_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    term = _Terminal()
    monkeypatch.setattr("sys.stderr", term)
    monkeypatch.setattr(progress, "REDRAW", 0.0)
    before = threading.active_count()
    with progress.layer_progress(True) as hook:
        assert hook is not None
        advance = hook("sha256:" + "ab" * 32, 1000)
        for _ in range(5):
            advance(200)
        assert threading.active_count() == before
    assert term.getvalue(), "the bar was drawn"


def test_no_progress_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with progress.layer_progress(True) as hook:
        assert hook is None


def test_a_label_is_a_digest_or_a_number_never_image_text() -> None:
    digest = "0123456789abcdef" * 4
    assert progress.label(f"blobs/sha256/{digest}", 1) == "sha256:0123456789ab"
    assert progress.label(f"sha256:{digest}", 2) == "sha256:0123456789ab"
    # a legacy docker-archive key: <v1 id>/layer.tar, the v1 id being a sha256 too
    assert progress.label(f"{digest}/layer.tar", 3) == "sha256:0123456789ab"
    # a crafted member name: whatever it holds, none of it is shown
    for key in ("ghp_" + "A1b2C3d4" * 5 + "/layer.tar", "\x1b]0;pwned\x07", "x" * 63 + "/layer.tar"):
        assert progress.label(key, 4) == "layer 4"
