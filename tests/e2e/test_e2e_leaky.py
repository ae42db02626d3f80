"""The buildah-built "leaky" image, scanned through the CLI in each of its four export forms.

Every planted secret must be reported exactly where planted.json says: rule, path, line, layer,
status, the layer that removed it and the history step that added it, the same whichever way the
image was exported. Nothing else may be reported, and nothing secret may be printed unless asked.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import pytest
from expected import (
    assert_no_findings,
    assert_reported_once_per_place,
    brief,
    is_explained,
    leaked_fragments,
    location,
    the_finding,
)
from plant import Planted

from layerleak.detect import knownkeys

if TYPE_CHECKING:
    from conftest import Built, CliRun, Layerleak

pytestmark = pytest.mark.builder

FORMS = ["docker-archive", "docker-archive-gz", "oci-archive", "oci-zstd"]

# Every secret planted in the leaky image, as "kind@where"; test ids and planted.json must agree.
LEAKY_SECRETS = [
    "aws-access-key-id@/root/.aws/credentials",  # deleted by a later RUN rm
    "aws-secret-access-key@/root/.aws/credentials",
    "github-pat-classic@/app/config.env",  # overwritten by a later RUN echo >
    "slack-bot-token@/app/settings.py",  # still present
    "generic-password@/app/db.ini",  # still present
    "private-key@/root/.ssh/id_rsa",  # deleted with its directory (rm -rf)
    "generic-password@API_TOKEN",  # config Env
    "github-pat-classic@label:deploy.token",  # config label
    "generic-password@history",  # build arg shown in the RUN step's created_by
]


def secret_id(planted: Planted) -> str:
    where = planted.path or (planted.key if planted.source == "config" else planted.source)
    return f"{planted.kind}@{where}"


def planted_secret(leaky: Built, which: str) -> Planted:
    (planted,) = [p for p in leaky.fixtures["leaky"].secrets if secret_id(p) == which]
    return planted


def scan(layerleak: Layerleak, leaky: Built, form: str, *flags: str) -> CliRun:
    return layerleak("scan", leaky.target("leaky", form), "--format", "json", *flags)


def findings_of(run: CliRun) -> list[dict[str, Any]]:
    findings = run.report["findings"]
    assert isinstance(findings, list)
    return findings


def test_planted_table_matches_the_build(leaky_image: Built) -> None:
    assert sorted(secret_id(p) for p in leaky_image.fixtures["leaky"].secrets) == sorted(LEAKY_SECRETS)


@pytest.mark.parametrize("which", LEAKY_SECRETS)
@pytest.mark.parametrize("form", FORMS)
def test_reports_each_planted_secret(layerleak: Layerleak, leaky_image: Built, form: str, which: str) -> None:
    run = scan(layerleak, leaky_image, form)
    assert run.returncode == 1, run.describe()
    planted = planted_secret(leaky_image, which)
    finding = the_finding(planted, findings_of(run))
    if planted.source == "layer":
        assert planted.layer_index is not None
        diff_id = leaky_image.fixtures["leaky"].expect["diff_ids"][planted.layer_index]
        assert finding["layer_digest"] == diff_id, brief(finding)
    assert finding["redacted"] is True


@pytest.mark.parametrize("form", FORMS[1:])
def test_every_form_reports_the_same_findings(layerleak: Layerleak, leaky_image: Built, form: str) -> None:
    reference = findings_of(scan(layerleak, leaky_image, FORMS[0]))
    other = findings_of(scan(layerleak, leaky_image, form))
    assert sorted(map(repr, map(location, other))) == sorted(map(repr, map(location, reference)))
    fingerprints = {location(f): f["fingerprint"] for f in reference}
    for finding in other:
        assert finding["fingerprint"] == fingerprints[location(finding)], brief(finding)


@pytest.mark.parametrize("form", FORMS)
def test_lists_layers_with_their_history_step(layerleak: Layerleak, leaky_image: Built, form: str) -> None:
    fixture = leaky_image.fixtures["leaky"]
    (target,) = scan(layerleak, leaky_image, form).report["targets"]
    assert target["image_id"] == fixture.expect["image_id"]
    # one warning, not an error: its private key was checked without badkeys' blocklist (the
    # layerleak fixture runs in a fresh HOME, where no blocklist was downloaded)
    assert target["errors"] == [{"level": "warning", "message": knownkeys.MISSING}]
    layers = target["layers"]
    assert [layer["index"] for layer in layers] == list(range(fixture.layer_count or 0))
    assert [layer["digest"] for layer in layers] == fixture.expect["diff_ids"]
    for index, fragment in fixture.expect["layer_created_by"].items():
        assert fragment in layers[int(index)]["created_by"], layers[int(index)]


@pytest.mark.parametrize("form", FORMS)
def test_placeholders_are_not_reported(layerleak: Layerleak, leaky_image: Built, form: str) -> None:
    fixture = leaky_image.fixtures["leaky"]
    findings = findings_of(scan(layerleak, leaky_image, form, "--show-secrets"))
    at_example = [f for f in findings if f["path"] == fixture.expect["placeholder_path"]]
    assert_no_findings(at_example, "placeholders reported")
    placeholders = set(fixture.expect["placeholder_values"])
    assert_no_findings([f for f in findings if f["secret"] in placeholders], "placeholders reported")


@pytest.mark.parametrize("form", FORMS)
def test_secrets_are_redacted_by_default(layerleak: Layerleak, leaky_image: Built, form: str) -> None:
    run = scan(layerleak, leaky_image, form)
    assert run.report["secrets_shown"] is False
    for planted in leaky_image.fixtures["leaky"].secrets:
        for fragment in leaked_fragments(planted.value):
            assert fragment not in run.stdout, f"{secret_id(planted)} leaked into the report"
            assert fragment not in run.stderr, f"{secret_id(planted)} leaked onto stderr"
    for finding in findings_of(run):
        assert isinstance(finding["secret"], str) and finding["secret"], brief(finding)


@pytest.mark.parametrize("which", LEAKY_SECRETS)
def test_show_secrets_gives_the_whole_value(layerleak: Layerleak, leaky_image: Built, which: str) -> None:
    planted = planted_secret(leaky_image, which)
    run = scan(layerleak, leaky_image, FORMS[0], "--show-secrets")
    assert run.report["secrets_shown"] is True
    finding = the_finding(planted, findings_of(run))
    assert finding["secret"].strip() == planted.value.strip()
    assert finding["redacted"] is False
    fingerprint = "layerleak:v1:" + finding["rule_id"] + ":" + finding["secret"]
    assert finding["fingerprint"] == hashlib.sha256(fingerprint.encode()).hexdigest()[:32]


@pytest.mark.parametrize("form", FORMS)
def test_reports_nothing_that_was_not_planted(layerleak: Layerleak, leaky_image: Built, form: str) -> None:
    values = [p.value for p in leaky_image.fixtures["leaky"].secrets]
    findings = findings_of(scan(layerleak, leaky_image, form, "--show-secrets"))
    unexplained = [f for f in findings if not is_explained(f["secret"], values)]
    assert_no_findings(unexplained, "reported, but not planted")


@pytest.mark.parametrize("form", FORMS[:1])
def test_each_secret_is_reported_once_per_place(layerleak: Layerleak, leaky_image: Built, form: str) -> None:
    """A generic rule must not report again what a specific rule found at the same spot."""
    findings = findings_of(scan(layerleak, leaky_image, form, "--show-secrets"))
    assert_reported_once_per_place(findings)
