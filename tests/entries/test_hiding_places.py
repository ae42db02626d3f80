"""Every hiding place of docs/content.md, with a real file of its kind, scanned through the CLI.

The image (fixtures/hiding.py) is built once per session with fresh secrets; one scan of it is
shared by the tests (the ``layerleak`` fixture runs identical command lines once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import hiding
import pytest
from hiding import Hidden, HidingImage

if TYPE_CHECKING:
    from conftest import CliRun, Layerleak


@pytest.fixture(scope="session")
def hiding_image(tmp_path_factory: pytest.TempPathFactory) -> HidingImage:
    return hiding.build(tmp_path_factory.mktemp("hiding"))


@pytest.fixture(scope="session")
def hiding_scan(layerleak: Layerleak, hiding_image: HidingImage) -> CliRun:
    run = layerleak(
        "scan",
        f"docker-archive:{hiding_image.archive}",
        "--format",
        "json",
        "--show-secrets",
        "--no-progress",
    )
    # 1: findings. The bomb and the deep nesting were cut short by documented limits: warnings
    # in `errors` and on stderr, not an unreadable image (policy.py)
    assert run.returncode == 1, run.describe()
    return run


def _found(run: CliRun, hidden: Hidden) -> list[dict[str, Any]]:
    return [
        f
        for f in run.report["findings"]
        if f["rule_id"] == hidden.rule_id and f["secret"] == hidden.value and f["path"] == hidden.path
    ]


NAMES = [
    "jar",
    "war-jar",
    "wheel",
    "egg",
    "tgz",
    "tar-in-tgz",
    "log-gz",
    "log-bz2",
    "log-xz",
    "log-zst",
    "after-bomb",
    "k8s-data",
    "k8s-dockerconfigjson",
    "docker-auth",
    "utf-16",
    "pyc-slack",
    "pyc-aws",
    "elf",
    "big",
]


@pytest.mark.parametrize("name", NAMES)
def test_secret_is_found_where_it_hides(name: str, hiding_image: HidingImage, hiding_scan: CliRun) -> None:
    if name == "elf" and not hiding_image.gcc:
        pytest.skip("=== gcc is not installed: no ELF binary could be compiled for this test ===")
    hidden = hiding_image.hidden[name]
    found = _found(hiding_scan, hidden)
    assert found, f"{name}: {hidden.rule_id} not reported for {hidden.path}\n{hiding_scan.stdout[:3000]}"
    places = {(f["inner_path"], f["line"]) for f in found}
    if hidden.line is None:
        assert hidden.inner_path in {inner for inner, _ in places}, places
    else:
        assert (hidden.inner_path, hidden.line) in places, places


def test_the_fixture_covers_every_hiding_place(hiding_image: HidingImage) -> None:
    assert set(hiding_image.hidden) == set(NAMES) - (set() if hiding_image.gcc else {"elf"})


def _errors(run: CliRun) -> list[dict[str, Any]]:
    return [e for t in run.report["targets"] for e in t["errors"]]


def test_zip_bomb_is_cut_short_and_said_so(hiding_scan: CliRun) -> None:
    bomb = [e for e in _errors(hiding_scan) if e.get("path") == "/srv/bomb.zip"]
    assert len(bomb) == 1, _errors(hiding_scan)
    assert bomb[0]["message"].startswith("zeros.bin: stopped after ")
    assert "compression bomb" in bomb[0]["message"]
    stopped_at_mib = int(bomb[0]["message"].split()[3])
    assert stopped_at_mib < hiding.BOMB_BYTES // 2**20  # cut early, not expanded in full


def test_nesting_beyond_the_depth_limit_is_not_opened_and_said_so(
    hiding_image: HidingImage, hiding_scan: CliRun
) -> None:
    deep = hiding_image.unreachable["deep"]
    assert not _found(hiding_scan, deep)
    errors = [e for e in _errors(hiding_scan) if e.get("path") == "/srv/deep.zip"]
    assert [e["message"] for e in errors] == [
        "level1.zip!/level2.zip!/level3.zip!/level4.zip!/level5.zip: zip nested more than 5 levels "
        "deep; not opened"
    ]


def test_limits_are_the_only_errors(hiding_scan: CliRun) -> None:
    assert {e.get("path") for e in _errors(hiding_scan)} == {"/srv/bomb.zip", "/srv/deep.zip"}
    assert {e["level"] for e in _errors(hiding_scan)} == {"warning"}


def test_decoded_secrets_stay_redacted_by_default(layerleak: Layerleak, hiding_image: HidingImage) -> None:
    run = layerleak("scan", f"docker-archive:{hiding_image.archive}", "--format", "json", "--no-progress")
    assert run.returncode == 1, run.describe()
    assert "layerleak: warning:" in run.stderr
    for hidden in hiding_image.hidden.values():
        assert hidden.value not in run.stdout
        assert hidden.value not in run.stderr
    inner = {f["inner_path"] for f in run.report["findings"]}
    assert {"[base64]", "[utf-16]", "[strings]", "app.log.1"} <= inner


def test_the_big_file_is_more_than_20_mb_before_its_secret(hiding_image: HidingImage) -> None:
    line = hiding_image.hidden["big"].line
    assert line is not None and (line - 1) * len(hiding.BIG_LINE) > 20 * 1024 * 1024
