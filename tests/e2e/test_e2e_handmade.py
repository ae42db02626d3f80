"""Hand-written archives (fixtures/handmade.py): layouts and layer tricks builders rarely emit.

These need no container tools, so they run everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from expected import (
    RULE_IDS,
    assert_no_findings,
    assert_one_clean_error_line,
    assert_reported_once_per_place,
    brief,
    is_explained,
    the_finding,
)

if TYPE_CHECKING:
    from conftest import Built, CliRun, Layerleak

# Fixtures whose planted secrets all come out of one plain scan.
PLAIN = ["opaque", "hardlink", "multi", "docker25"]


def scan(layerleak: Layerleak, images: Built, name: str, *flags: str) -> CliRun:
    return layerleak("scan", images.target(name), "--format", "json", *flags)


def findings_of(run: CliRun) -> list[dict[str, Any]]:
    findings = run.report["findings"]
    assert isinstance(findings, list)
    return findings


@pytest.mark.parametrize("name", PLAIN)
def test_reports_each_planted_secret(layerleak: Layerleak, handmade_images: Built, name: str) -> None:
    run = scan(layerleak, handmade_images, name)
    assert run.returncode == 1, run.describe()
    assert "Traceback" not in run.stderr
    for planted in handmade_images.fixtures[name].secrets:
        the_finding(planted, findings_of(run))
    for target in run.report["targets"]:
        assert target["errors"] == [], target["errors"]


@pytest.mark.parametrize("name", PLAIN)
def test_reports_nothing_that_was_not_planted(
    layerleak: Layerleak, handmade_images: Built, name: str
) -> None:
    values = [p.value for p in handmade_images.fixtures[name].secrets]
    findings = findings_of(scan(layerleak, handmade_images, name, "--show-secrets"))
    unexplained = [f for f in findings if not is_explained(f["secret"], values)]
    assert_no_findings(unexplained, "reported, but not planted")


def test_opaque_whiteout_deletes_the_directory_below(layerleak: Layerleak, handmade_images: Built) -> None:
    (planted,) = handmade_images.fixtures["opaque"].secrets
    finding = the_finding(planted, findings_of(scan(layerleak, handmade_images, "opaque")))
    assert (finding["status"], finding["layer_index"], finding["removed_in_layer"]) == ("deleted", 0, 1)


def test_hard_link_is_not_scanned_twice(layerleak: Layerleak, handmade_images: Built) -> None:
    fixture = handmade_images.fixtures["hardlink"]
    (planted,) = fixture.secrets
    findings = findings_of(scan(layerleak, handmade_images, "hardlink", "--show-secrets"))
    at_link = [f for f in findings if f["path"] == fixture.expect["link_path"]]
    assert_no_findings(at_link, "the hard link's target was scanned again under the link's name")
    by_rule = [f["path"] for f in findings if f["rule_id"] == RULE_IDS[planted.kind]]
    assert by_rule == [planted.path]


@pytest.mark.parametrize("name", PLAIN)
def test_each_secret_is_reported_once_per_place(
    layerleak: Layerleak, handmade_images: Built, name: str
) -> None:
    """A generic rule must not report again what a specific rule found at the same spot."""
    findings = findings_of(scan(layerleak, handmade_images, name, "--show-secrets"))
    assert_reported_once_per_place(findings)


def test_every_image_of_a_multi_image_archive_is_scanned(
    layerleak: Layerleak, handmade_images: Built
) -> None:
    fixture = handmade_images.fixtures["multi"]
    run = scan(layerleak, handmade_images, "multi")
    images = [target["image"] for target in run.report["targets"]]
    for tag in fixture.expect["images"]:
        assert sum(tag in (image or "") for image in images) == 1, images
    for planted in fixture.secrets:
        assert planted.image and planted.image in the_finding(planted, findings_of(run))["image"]


@pytest.mark.parametrize("ref", ["multi-b:2.0", "@1"])
def test_ref_picks_one_image_of_a_multi_image_archive(
    layerleak: Layerleak, handmade_images: Built, ref: str
) -> None:
    fixture = handmade_images.fixtures["multi"]
    run = layerleak("scan", f"{handmade_images.target('multi')}:{ref}", "--format", "json")
    assert run.returncode == 1, run.describe()
    (target,) = run.report["targets"]
    assert "multi-b" in (target["image"] or ""), target["image"]
    (wanted,) = [p for p in fixture.secrets if p.image == "multi-b:2.0"]
    the_finding(wanted, findings_of(run))
    assert {f["image"] for f in findings_of(run)} == {target["image"]}


def test_docker25_layout_counts_the_empty_layer(layerleak: Layerleak, handmade_images: Built) -> None:
    fixture = handmade_images.fixtures["docker25"]
    (target,) = scan(layerleak, handmade_images, "docker25").report["targets"]
    layers = target["layers"]
    assert [layer["index"] for layer in layers] == [0, 1, 2]
    empty = layers[fixture.expect["empty_layer_index"]]
    assert empty["digest"] == fixture.expect["empty_layer_digest"]
    assert "WORKDIR /srv/app" in empty["created_by"]  # the ENV step before it has no layer
    assert "COPY .env /srv/app/.env" in layers[2]["created_by"]


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_platform_selects_one_image_of_an_index(
    layerleak: Layerleak, handmade_images: Built, platform: str
) -> None:
    fixture = handmade_images.fixtures["multiplatform"]
    run = scan(layerleak, handmade_images, "multiplatform", "--platform", platform, "--show-secrets")
    assert run.returncode == 1, run.describe()
    (target,) = run.report["targets"]
    assert (target["platform"] or "").startswith(platform), target["platform"]
    (wanted,) = [p for p in fixture.secrets if p.platform == platform]
    finding = the_finding(wanted, findings_of(run))
    assert finding["secret"] == wanted.value
    others = {p.value for p in fixture.secrets if p.platform != platform}
    assert_no_findings([f for f in findings_of(run) if f["secret"] in others], "other platform scanned")


def test_multi_platform_index_without_platform_scans_every_platform(
    layerleak: Layerleak, handmade_images: Built
) -> None:
    fixture = handmade_images.fixtures["multiplatform"]
    run = scan(layerleak, handmade_images, "multiplatform")
    assert run.returncode == 1, run.describe()
    platforms = sorted(t["platform"] or "" for t in run.report["targets"])
    assert all(p.startswith(want) for p, want in zip(platforms, fixture.expect["platforms"], strict=True))
    for planted in fixture.secrets:
        the_finding(planted, findings_of(run))


def test_platform_that_is_not_in_the_index_is_an_input_error(
    layerleak: Layerleak, handmade_images: Built
) -> None:
    assert_one_clean_error_line(
        scan(layerleak, handmade_images, "multiplatform", "--platform", "linux/s390x")
    )


def test_truncated_layer_is_an_error_and_the_rest_is_still_scanned(
    layerleak: Layerleak, handmade_images: Built
) -> None:
    fixture = handmade_images.fixtures["broken"]
    run = scan(layerleak, handmade_images, "broken")
    assert_one_clean_error_line(run)  # not scanned completely: exit 2, one line
    for planted in fixture.secrets:
        the_finding(planted, findings_of(run))
    (target,) = run.report["targets"]
    broken = fixture.expect["broken_layer_index"]
    assert [e.get("layer_index") for e in target["errors"]] == [broken], target["errors"]


def test_several_targets_in_one_run(layerleak: Layerleak, handmade_images: Built) -> None:
    names = ["opaque", "hardlink"]
    run = layerleak("scan", *(handmade_images.target(n) for n in names), "--format", "json")
    assert run.returncode == 1, run.describe()
    assert len(run.report["targets"]) == 2
    for name in names:
        for planted in handmade_images.fixtures[name].secrets:
            finding = the_finding(planted, findings_of(run))
            assert str(handmade_images.path(name)) in finding["target"], brief(finding)
