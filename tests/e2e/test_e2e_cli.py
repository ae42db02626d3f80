"""The command line contract: targets, report shape, exit codes, errors, formats, output file."""

from __future__ import annotations

import json
import os
import re
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import handmade
import pytest
from expected import (
    FINDING_KEYS,
    TARGET_KEYS,
    assert_one_clean_error_line,
    brief,
    leaked_fragments,
    location,
    the_finding,
)

if TYPE_CHECKING:
    from conftest import Built, Layerleak

SEVERITIES = ["low", "medium", "high", "critical"]  # ascending, as --fail-on reads them


# --- report shape -----------------------------------------------------------------------------


def test_json_report_has_the_documented_shape(layerleak: Layerleak, handmade_images: Built) -> None:
    report = layerleak("scan", handmade_images.target("opaque"), "--format", "json").report
    assert report["version"] == 1
    assert {"name", "version", "ruleset"} <= set(report["tool"])
    assert report["tool"]["name"] == "layerleak"
    (target,) = report["targets"]
    assert set(target) >= TARGET_KEYS, sorted(TARGET_KEYS - set(target))
    assert target["bytes_scanned"] > 0
    assert {"index", "digest", "created_by"} <= set(target["layers"][0])
    assert report["findings"], "the opaque fixture has a finding"
    for finding in report["findings"]:
        assert set(finding) >= FINDING_KEYS, sorted(FINDING_KEYS - set(finding))
        assert finding["source"] in ("layer", "config", "history")
        assert finding["status"] in ("present", "deleted", "overwritten", None)
        assert finding["severity"] in [*SEVERITIES, "info"]


# --- exit codes -------------------------------------------------------------------------------


def test_exit_1_when_there_are_findings(layerleak: Layerleak, handmade_images: Built) -> None:
    run = layerleak("scan", handmade_images.target("opaque"), "--format", "json")
    assert run.returncode == 1, run.describe()


def test_fail_on_none_exits_0_and_still_reports(layerleak: Layerleak, handmade_images: Built) -> None:
    run = layerleak("scan", handmade_images.target("opaque"), "--format", "json", "--fail-on", "none")
    assert run.returncode == 0, run.describe()
    assert run.report["findings"]


@pytest.mark.builder
@pytest.mark.parametrize("level", SEVERITIES)
def test_fail_on_threshold_follows_the_reported_severities(
    layerleak: Layerleak, leaky_image: Built, level: str
) -> None:
    run = layerleak("scan", leaky_image.target("leaky"), "--format", "json", "--fail-on", level)
    severities = {f["severity"] for f in run.report["findings"]}
    at_or_above = severities & set(SEVERITIES[SEVERITIES.index(level) :])
    assert run.returncode == (1 if at_or_above else 0), (severities, run.describe())


def test_exit_0_for_an_image_without_secrets(layerleak: Layerleak, tmp_path: Path) -> None:
    clean = tmp_path / "clean.tar"
    layer = handmade.layer_tar([handmade.directory("etc"), handmade.file("etc/motd", "hello\n")])
    config = handmade.image_config([layer], [{"created_by": "COPY motd /etc/motd # buildkit"}])
    handmade.write_docker_archive(clean, [handmade.LegacyImage(["clean:latest"], [layer], config)])
    run = layerleak("scan", f"docker-archive:{clean}", "--format", "json")
    assert run.returncode == 0, run.describe()
    assert run.report["findings"] == []


# --- input errors: exit 2, one line, no traceback ---------------------------------------------


def _garbage(tmp_path: Path, kind: str) -> str:
    path = tmp_path / f"{kind}.tar"
    if kind == "random-bytes":
        path.write_bytes(os.urandom(4096))
    elif kind == "empty-file":
        path.write_bytes(b"")
    elif kind == "tar-without-manifest":
        with tarfile.open(path, "w") as archive:
            readme = tmp_path / "README"
            readme.write_text("not an image\n")
            archive.add(readme, arcname="README")
    elif kind == "empty-directory":
        path = tmp_path / "empty-dir"
        path.mkdir()
    elif kind == "manifest-pointing-nowhere":
        with tarfile.open(path, "w") as archive:
            manifest = tmp_path / "manifest.json"
            manifest.write_text(json.dumps([{"Config": "c.json", "RepoTags": [], "Layers": ["x.tar"]}]))
            archive.add(manifest, arcname="manifest.json")
    return str(path)


@pytest.mark.parametrize(
    "kind",
    ["random-bytes", "empty-file", "tar-without-manifest", "empty-directory", "manifest-pointing-nowhere"],
)
def test_garbage_input_is_one_clear_error(layerleak: Layerleak, tmp_path: Path, kind: str) -> None:
    assert_one_clean_error_line(layerleak("scan", _garbage(tmp_path, kind), "--format", "json"))


@pytest.mark.parametrize("transport", ["", "docker-archive:", "oci-archive:", "oci:"])
def test_missing_target_is_one_clear_error(layerleak: Layerleak, tmp_path: Path, transport: str) -> None:
    missing = tmp_path / "does-not-exist.tar"
    run = layerleak("scan", f"{transport}{missing}", "--format", "json")
    assert_one_clean_error_line(run)
    assert "does-not-exist" in run.stderr


def test_unknown_transport_is_one_clear_error(layerleak: Layerleak) -> None:
    assert_one_clean_error_line(layerleak("scan", "nosuchtransport:whatever", "--format", "json"))


def test_what_could_be_scanned_is_still_reported(
    layerleak: Layerleak, tmp_path: Path, handmade_images: Built
) -> None:
    missing = tmp_path / "missing.tar"
    run = layerleak("scan", handmade_images.target("opaque"), f"docker-archive:{missing}", "--format", "json")
    assert_one_clean_error_line(run)
    (planted,) = handmade_images.fixtures["opaque"].secrets
    the_finding(planted, run.report["findings"])
    assert {f["path"] for f in run.report["findings"]} == {planted.path}
    opened, unopened = run.report["targets"]
    assert opened["image"] and not opened["errors"]
    assert unopened["image"] is None and unopened["errors"], unopened


def test_bad_option_value_is_a_usage_error(layerleak: Layerleak, handmade_images: Built) -> None:
    run = layerleak("scan", handmade_images.target("opaque"), "--fail-on", "catastrophic")
    assert run.returncode == 2, run.describe()
    assert "Traceback" not in run.stderr


# --- formats and output -----------------------------------------------------------------------


@pytest.mark.builder
def test_table_names_every_finding_path_and_no_secret(layerleak: Layerleak, leaky_image: Built) -> None:
    run = layerleak("scan", leaky_image.target("leaky"), "--format", "table")
    assert run.returncode == 1, run.describe()
    planted = leaky_image.fixtures["leaky"].secrets
    for path in {p.path for p in planted if p.path}:
        assert path in run.stdout, f"{path} missing from the table:\n{run.stdout}"
    for p in planted:
        for fragment in leaked_fragments(p.value):
            assert fragment not in run.stdout + run.stderr, f"{p.kind} leaked into the table"


def test_table_is_the_default_format(layerleak: Layerleak, handmade_images: Built) -> None:
    run = layerleak("scan", handmade_images.target("opaque"))
    assert run.returncode == 1, run.describe()
    (planted,) = handmade_images.fixtures["opaque"].secrets
    assert planted.path and planted.path in run.stdout
    assert planted.value not in run.stdout


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_output_file_receives_the_report(
    layerleak: Layerleak, handmade_images: Built, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"report.{fmt}"
    run = layerleak("scan", handmade_images.target("opaque"), "--format", fmt, "-o", str(out))
    assert run.returncode == 1, run.describe()
    assert out.is_file() and out.stat().st_size > 0
    text = out.read_text()
    (planted,) = handmade_images.fixtures["opaque"].secrets
    assert planted.path and planted.path in text
    assert planted.value not in text
    assert planted.path not in run.stdout, "the report went to the file, not stdout"
    if fmt == "json":
        stdout_report = layerleak("scan", handmade_images.target("opaque"), "--format", "json").report
        assert [location(f) for f in json.loads(text)["findings"]] == [
            location(f) for f in stdout_report["findings"]
        ]


# --- target spellings -------------------------------------------------------------------------


@pytest.mark.builder
@pytest.mark.parametrize("form", ["docker-archive", "docker-archive-gz", "oci-archive", "oci-zstd"])
def test_bare_path_is_detected(layerleak: Layerleak, leaky_image: Built, form: str) -> None:
    explicit = layerleak("scan", leaky_image.target("leaky", form), "--format", "json")
    bare = layerleak("scan", str(leaky_image.path("leaky", form)), "--format", "json")
    assert bare.returncode == 1, bare.describe()
    assert sorted(map(repr, map(location, bare.report["findings"]))) == sorted(
        map(repr, map(location, explicit.report["findings"]))
    )


@pytest.mark.builder
def test_oci_layout_without_ref_uses_its_only_image(layerleak: Layerleak, leaky_image: Built) -> None:
    with_ref = layerleak("scan", leaky_image.target("leaky", "oci-zstd"), "--format", "json")
    without = layerleak("scan", leaky_image.target("leaky", "oci-zstd", ref=False), "--format", "json")
    assert without.returncode == 1, without.describe()
    assert [location(f) for f in without.report["findings"]] == [
        location(f) for f in with_ref.report["findings"]
    ]


@pytest.mark.builder
def test_oci_archive_ref_names_the_image(layerleak: Layerleak, leaky_image: Built) -> None:
    plain = layerleak("scan", leaky_image.target("leaky", "oci-archive"), "--format", "json")
    named = layerleak(
        "scan", leaky_image.target("leaky", "oci-archive") + ":leaky:latest", "--format", "json"
    )
    assert named.returncode == 1, named.describe()
    assert [location(f) for f in named.report["findings"]] == [location(f) for f in plain.report["findings"]]


@pytest.mark.builder
def test_oci_layout_with_an_unknown_ref_is_an_input_error(layerleak: Layerleak, leaky_image: Built) -> None:
    target = leaky_image.target("leaky", "oci-zstd", ref=False) + ":no-such-tag"
    assert_one_clean_error_line(layerleak("scan", target, "--format", "json"))


def _brief_all(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [brief(f) for f in findings]


@pytest.mark.builder
def test_image_name_is_reported(layerleak: Layerleak, leaky_image: Built) -> None:
    report = layerleak("scan", leaky_image.target("leaky"), "--format", "json").report
    (target,) = report["targets"]
    assert re.search(r"leaky:latest$", target["image"] or ""), target["image"]
    assert {f["image"] for f in report["findings"]} == {target["image"]}, _brief_all(report["findings"])


def test_every_keyword_gate_reports_the_same(layerleak: Layerleak, handmade_images: Built) -> None:
    """--gate none is the straightforward path (the automaton reads every byte)."""
    target = handmade_images.target("opaque")
    reports = [layerleak("scan", target, "--format", "json", "--no-cache", "--gate", gate).report
               for gate in ("none", "re2", "auto")]
    assert reports[0]["findings"]
    assert all(r["findings"] == reports[0]["findings"] for r in reports)
    run = layerleak("scan", target, "--gate", "fast")
    assert run.returncode == 2, run.describe()
