"""Fleet outputs: the job summary, db query tables, and the phase progress display."""

from __future__ import annotations

import io
import json

from rich.console import Console
from rich.progress import Progress

from layerleak.report import fleet as render
from layerleak.report.fleet_progress import _Rich, fleet_progress
from layerleak.scan.fleet import FleetSummary


def test_the_progress_display_is_quiet_without_a_terminal() -> None:
    with fleet_progress(True) as progress:  # pytest's stderr is not a terminal
        assert progress is None
    with fleet_progress(False) as progress:
        assert progress is None


def test_the_progress_display_shows_each_phase_with_counts_and_bytes() -> None:
    out = io.StringIO()
    progress = Progress(console=Console(file=out, force_terminal=True, width=100), auto_refresh=False)
    with progress:
        hook = _Rich(progress)
        hook.phase("enumerate", None)
        hook.advance()
        hook.phase("layers", 4)
        hook.advance(1, 3_000_000)
        hook.advance(1, 2_000_000)
        layers = progress.tasks[1]
        assert layers.completed == 2 and layers.total == 4 and layers.fields["nbytes"] == "5 MB"
        hook.phase("images", 2)
    assert [t.description for t in progress.tasks] == ["enumerate", "layers", "images"]
    assert progress.tasks[1].completed == 4  # a phase that ended is shown whole
    assert "layers" in out.getvalue()


def test_the_summary_table_and_json_say_the_same() -> None:
    summary = FleetSummary("127.0.0.1:5000", repositories=2, images=3, layer_refs=7, layers_unique=4,
                           layers_scanned=3, layers_reused=1, bytes_scanned=10, findings=2,
                           findings_by_status={"present": 1, "deleted": 1},
                           errors=["127.0.0.1:5000/a:1: blob digest mismatch \x1b[31m"])  # fmt: skip
    data = json.loads(render.summary_json(summary))
    assert data["version"] == 1 and data["layers_unique"] == 4 and data["errors"] == summary.errors
    table = render.summary_table(summary)
    assert "layers unique      4" in table and "deleted 1" in table
    assert "\x1b" not in table and "\\x1b[31m" in table  # text from a registry is shown escaped


def test_db_tables() -> None:
    findings = [{"image": "r/a:1", "status": "deleted", "inherited": True, "rule_id": "x", "secret": "ab****",
                 "layer_index": 1, "path": "/app/.env"}]  # fmt: skip
    table = render.findings_table(findings)
    assert "deleted (inherited)" in table and "/app/.env" in table
    assert render.findings_table([]) == "no findings\n"
    where = {"fingerprint": "f", "images": [{"image": "r/a:1", "layer_digest": "sha256:1", "path": "/p",
                                             "status": "present", "source": "layer"}]}  # fmt: skip
    assert "sha256:1" in render.where_table(where)
    assert "in no recorded image" in render.where_table({"fingerprint": "f", "images": []})
