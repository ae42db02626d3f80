"""BuildKit attestations and OCI annotations: hand-assembled layouts following BuildKit's documented
attestation storage format (fixtures/attested.py), scanned as an OCI layout and from a real
docker-registry the test pushes them to over the distribution API."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attested
import handmade
import pytest

import services
from layerleak.models import SourceKind
from layerleak.sources.attestations import predicate_texts
from services import ServiceUnavailable, layerleak, user_env

if TYPE_CHECKING:
    from conftest import Layerleak


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, attested.Layout]:
    out = tmp_path_factory.mktemp("attested")
    return {
        "leaky": attested.build(out, "leaky", leaky=True),
        "harmless": attested.build(out, "harmless", leaky=False),
    }


def _scan(layerleak: Layerleak, target: str) -> dict[str, Any]:
    run = layerleak("scan", target, "--format", "json", "--show-secrets", "--no-progress", "--no-cache")
    assert run.returncode in (0, 1), run.describe()
    return run.report


def _found(report: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {
        (f["rule_id"], f["secret"], f["source"], f["key"])
        for f in report["findings"]
        if f["source"] in ("annotation", "attestation")
    }


def _expected(layout: attested.Layout) -> set[tuple[str, str, str, str]]:
    return {(e.rule_id, e.secret, e.source, e.key) for e in layout.expected}


def test_layout_attestations_and_annotations(
    layerleak: Layerleak, layouts: dict[str, attested.Layout]
) -> None:
    leaky = layouts["leaky"]
    report = _scan(layerleak, f"oci:{leaky.path}")
    assert _found(report) == _expected(leaky)
    assert len(leaky.expected) == 6
    # the image itself is still one image: the attestation manifest is not scanned as an image
    assert [t["platform"] for t in report["targets"]] == ["linux/amd64"]
    assert not any(e["level"] == "error" for e in report["targets"][0]["errors"])


def test_harmless_provenance_and_sbom_give_nothing(
    layerleak: Layerleak, layouts: dict[str, attested.Layout]
) -> None:
    report = _scan(layerleak, f"oci:{layouts['harmless'].path}")
    assert report["findings"] == []


def test_redacted_by_default(layerleak: Layerleak, layouts: dict[str, attested.Layout]) -> None:
    run = layerleak("scan", f"oci:{layouts['leaky'].path}", "--format", "json", "--no-progress", "--no-cache")
    assert run.returncode == 1
    for e in layouts["leaky"].expected:
        assert e.secret not in run.stdout and e.secret not in run.stderr


def test_missing_statement_is_a_warning(
    tmp_path: Path, layerleak: Layerleak, layouts: dict[str, attested.Layout]
) -> None:
    broken = attested.build(tmp_path, "broken", leaky=True)
    statement = next(b for b in broken.blobs if b.media_type == attested.IN_TOTO)
    (broken.path / "blobs/sha256" / statement.hex).unlink()
    run = layerleak("scan", f"oci:{broken.path}", "--format", "json", "--no-progress", "--no-cache")
    assert run.returncode == 1, run.describe()  # findings, and the image is still read
    errors = run.report["targets"][0]["errors"]
    assert [e["level"] for e in errors] == ["warning"]
    assert "attestation manifest" in errors[0]["message"]
    assert {f["source"] for f in run.report["findings"]} == {"annotation"}  # the rest is still scanned


def test_statement_texts_name_predicate_and_path() -> None:
    statement = {
        "predicateType": attested.SLSA_V02,
        "predicate": {"invocation": {"parameters": {"args": {"build-arg:API_TOKEN": "abcdefgh"}}}},
    }
    [text] = list(predicate_texts(statement))
    assert text.source is SourceKind.ATTESTATION
    assert text.key == f"{attested.SLSA_V02} predicate.invocation.parameters.args.build-arg:API_TOKEN"
    assert text.text == "API_TOKEN=abcdefgh"


# --- the same through a registry ----------------------------------------------------------------


def _put(url: str, data: bytes, content_type: str) -> None:
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": content_type})
    urllib.request.urlopen(request, timeout=30).close()


def _upload(base: str, repo: str, layout: attested.Layout, tag: str) -> None:
    """Blobs, then manifests by digest, then the index under ``tag``: the bytes as assembled."""
    for blob in layout.blobs:
        start = urllib.request.Request(f"{base}/v2/{repo}/blobs/uploads/", data=b"", method="POST")
        with urllib.request.urlopen(start, timeout=30) as resp:
            location = resp.headers["Location"]
        if location.startswith("/"):
            location = base + location
        sep = "&" if "?" in location else "?"
        _put(f"{location}{sep}digest={blob.digest}", blob.data, "application/octet-stream")
    for manifest in layout.manifests:
        _put(f"{base}/v2/{repo}/manifests/{manifest.digest}", manifest.data, manifest.media_type)
    _put(f"{base}/v2/{repo}/manifests/{tag}", layout.index.data, layout.index.media_type)


@pytest.mark.service
def test_registry_attestations_and_annotations(
    tmp_path: Path, layouts: dict[str, attested.Layout]
) -> None:
    try:
        registry_cm = services.start_registry(tmp_path / "registry", tls=False, auth=False)
        registry = registry_cm.__enter__()
    except ServiceUnavailable as exc:
        message = f"{'=' * 20} REGISTRY NOT STARTED {'=' * 20}\n{exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        base = f"http://{registry.host}"
        for name, layout in layouts.items():
            _upload(base, f"team/{name}", layout, "v1")
        env = user_env(tmp_path / "home")
        leaky = layerleak("scan", "--no-progress", "--format", "json", "--show-secrets", "--no-cache",
                          f"docker://{registry.host}/team/leaky:v1", env=env)
        assert leaky.returncode == 1, leaky.describe()
        report: dict[str, Any] = json.loads(leaky.stdout)
        assert _found(report) == _expected(layouts["leaky"])
        harmless = layerleak("scan", "--no-progress", "--format", "json", "--no-cache",
                             f"docker://{registry.host}/team/harmless:v1", env=env)
        assert harmless.returncode == 0, harmless.describe()
        # with --platform, the attestation of the image still comes along
        picked = layerleak("scan", "--no-progress", "--format", "json", "--show-secrets", "--no-cache",
                           "--platform", "linux/amd64", f"docker://{registry.host}/team/leaky:v1", env=env)
        assert _found(json.loads(picked.stdout)) == _expected(layouts["leaky"])
    finally:
        registry_cm.__exit__(None, None, None)


def test_docker25_archive_carries_them_too(
    tmp_path: Path, layerleak: Layerleak, layouts: dict[str, attested.Layout]
) -> None:
    """A Docker >= 25 ``docker save``: the OCI layout plus a manifest.json into its blobs."""
    leaky = layouts["leaky"]
    image_manifest = json.loads(leaky.manifests[0].data)
    entry = {
        "Config": f"blobs/sha256/{image_manifest['config']['digest'].split(':')[1]}",
        "RepoTags": ["app:1"],
        "Layers": [f"blobs/sha256/{layer['digest'].split(':')[1]}" for layer in image_manifest["layers"]],
    }
    root = leaky.path
    files = {f.relative_to(root).as_posix(): f.read_bytes() for f in root.rglob("*") if f.is_file()}
    files["manifest.json"] = json.dumps([entry]).encode()
    archive = tmp_path / "docker25.tar"
    handmade.write_tar(archive, files)
    report = _scan(layerleak, f"docker-archive:{archive}")
    assert report["targets"][0]["image"] == "app:1"  # read through manifest.json ...
    assert _found(report) == _expected(leaky)  # ... with the OCI side's annotations and attestations
