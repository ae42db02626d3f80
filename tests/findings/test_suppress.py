"""Baselines and ignore entries as pure functions: what matches, what is counted, what expires."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "report"))
from report_sample import sample_report  # noqa: E402

from layerleak.errors import UsageError  # noqa: E402
from layerleak.findings.suppress import Baseline, IgnoreEntry, Suppressor, match_path  # noqa: E402
from layerleak.models import Finding  # noqa: E402
from layerleak.report.json_report import report_dict  # noqa: E402
from layerleak.settings import load_settings  # noqa: E402

TODAY = dt.date(2026, 12, 2)


def findings() -> list[Finding]:
    return sample_report().findings


def moved(f: Finding) -> Finding:
    """The same secret in the same file after a rebuild: another line, layer and digest."""
    index = f.location.layer_index
    loc = dataclasses.replace(f.location, line=(f.location.line or 0) + 5, layer_digest="sha256:" + "77" * 32,
                              layer_index=None if index is None else index + 1)
    return dataclasses.replace(f, location=loc)


def test_baseline_matches_fingerprint_and_path_not_line_or_digest() -> None:
    baseline = Baseline.from_report(report_dict(sample_report()), "b.json")
    for f in findings():
        assert moved(f) in baseline
        assert dataclasses.replace(f, fingerprint="0" * 32) not in baseline
        if f.location.path:
            other = dataclasses.replace(f, location=dataclasses.replace(f.location, path="/elsewhere"))
            assert other not in baseline


def test_suppressor_counts_what_it_leaves_out() -> None:
    report = sample_report()
    first = findings()[0]
    suppressor = Suppressor(
        Baseline(frozenset({(first.fingerprint, match_path(first))})),
        [IgnoreEntry(reason="docs", rule="generic-*", path="/srv/*")],
        today=TODAY,
    )
    target = suppressor.apply(report.targets[0])
    (image,) = target.images
    assert image.baselined == 1 and image.ignored == 1
    assert len(image.findings) == len(report.targets[0].images[0].findings) - 2


@pytest.mark.parametrize(
    ("entry", "hits"),
    [
        (IgnoreEntry(reason="r", rule="generic-password"), 3),
        (IgnoreEntry(reason="r", rule="generic-password", path="/srv/*"), 1),  # every criterion must match
        (IgnoreEntry(reason="r", path="/root/.aws/*"), 1),
        (IgnoreEntry(reason="r", image="leaky:*"), 5),
        (IgnoreEntry(reason="r", image="docker-archive:*.tar"), 5),  # the target, too
        (IgnoreEntry(reason="r", image="other:*"), 0),
        (IgnoreEntry(reason="r", fingerprint="0123456789abcdef0123456789abcdef"), 1),
    ],
)
def test_ignore_entry_matching(entry: IgnoreEntry, hits: int) -> None:
    assert sum(entry.matches(f) for f in findings()) == hits


def test_expired_entry_stops_applying_and_says_so() -> None:
    entry = IgnoreEntry(reason="r", image="*", expires=dt.date(2026, 12, 1), origin="x.toml [[ignore]] #1")
    suppressor = Suppressor(None, [entry], today=TODAY)
    assert suppressor.apply(sample_report().targets[0]).images[0].ignored == 0
    (note,) = suppressor.notes()
    assert "x.toml [[ignore]] #1" in note and "expired on 2026-12-01" in note
    # The day it expires it still applies.
    assert Suppressor(None, [entry], today=dt.date(2026, 12, 1)).apply(
        sample_report().targets[0]).images[0].ignored == 5


def test_baseline_file_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "b.json"
    bad.write_text("[1, 2]")
    with pytest.raises(UsageError, match="not a layerleak JSON report"):
        Baseline.load(bad)
    bad.write_text(json.dumps({"version": 2, "findings": []}))
    with pytest.raises(UsageError, match="version 1"):
        Baseline.load(bad)
    with pytest.raises(UsageError, match="cannot read"):
        Baseline.load(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "unknown key 'colour'"),
        ("[rules]\ndisabled = ['x']\n", "unknown key 'disabled'"),
        ("[[ignore]]\nrule = 'x'\n", "'reason' is required"),
        ("[[ignore]]\nreason = 'why'\n", "at least one of"),
        ("[[ignore]]\nrule = 'x'\nreason = 'y'\nexpires = 'soon'\n", "'expires' must be a date"),
        ("[[ignore]]\nrule = 'x'\nreason = 'y'\npaht = '/a'\n", "unknown key 'paht'"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_settings_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / ".layerleak.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_settings(path)
    assert message in caught.value.diagnostics() and str(path) in caught.value.diagnostics()


def test_settings_read_everything(tmp_path: Path) -> None:
    path = tmp_path / ".layerleak.toml"
    path.write_text('[scan]\nfail-on = "high"\n[rules]\ndisable = ["a"]\nenable = ["b"]\n'
                    '[[ignore]]\npath = "/x/*"\nreason = "r"\nexpires = 2027-01-31\n'
                    '[[ignore]]\nrule = "z"\nreason = "r"\nexpires = "2027-02-01"\n')
    settings = load_settings(path)
    assert settings.scan == {"fail-on": "high"}
    assert settings.disable_rules == ("a",) and settings.enable_rules == ("b",)
    assert [e.expires for e in settings.ignores] == [dt.date(2027, 1, 31), dt.date(2027, 2, 1)]
