"""TLS choices that beat the environment, the plain-HTTP fallback, and platforms, against a real
docker-registry on 127.0.0.1.

Every TLS test runs with BOTH ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE`` set to a bundle that
does not trust the registry's CA (a second CA made here), as in a CI image: ``requests`` used to
let those variables replace ``--insecure`` and certs.d CAs. The registry is anonymous and holds
hand-made images only (no buildah needed).

The fallback tests count connection attempts from urllib3's own debug log ("Starting new HTTPS
connection") and check that no retry happened ("Retrying"): no timing in tests.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_platforms import two_platform_layout

import services
from layerleak.errors import RegistryError
from layerleak.sources.interface import SourceOptions
from layerleak.sources.registry import RegistrySource
from layerleak.sources.registry_tls import Trust
from services import Registry, Run, ServiceUnavailable, Tls, layerleak, user_env

if TYPE_CHECKING:
    from conftest import Built

pytestmark = [pytest.mark.service]


def _unavailable(reason: str) -> None:
    message = f"{'=' * 20} REGISTRY NOT STARTED {'=' * 20}\n{reason}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _push(reg: Registry, source: str, dest: str) -> None:
    services.run(
        "skopeo", "copy", "--quiet", "--all", *reg.skopeo_dest(), source, f"docker://{reg.host}/{dest}"
    )


@dataclass(frozen=True, slots=True)
class TlsRegistry:
    registry: Registry
    tls: Tls
    other: Tls  # a CA that did not sign the registry's certificate

    def target(self, ref: str = "multi:latest") -> str:
        return f"docker://{self.registry.host}/{ref}"

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        wrong = str(self.other.ca_cert)
        return user_env(home, REQUESTS_CA_BUNDLE=wrong, CURL_CA_BUNDLE=wrong, **extra)

    def scan(self, home: Path, *args: str, env: dict[str, str] | None = None) -> Run:
        return layerleak("scan", "--no-progress", "--format", "json", *args, env=env or self.env(home))


@pytest.fixture(scope="session")
def tls_anon(tmp_path_factory: pytest.TempPathFactory, handmade_images: Built) -> Iterator[TlsRegistry]:
    work = tmp_path_factory.mktemp("tls-anon")
    try:
        other = services.make_tls(work / "other-ca")
        with services.start_registry(work / "registry", tls=True, auth=False) as reg:
            assert reg.tls is not None
            _push(reg, f"oci:{handmade_images.path('multiplatform')}:latest", "multi:latest")
            two_platform_layout(work / "novariant", nested=True)
            _push(reg, f"oci:{work / 'novariant'}:latest", "novariant:latest")
            _push(reg, f"oci:{work / 'novariant'}:latest", "novariant:v2")
            yield TlsRegistry(reg, reg.tls, other)
    except ServiceUnavailable as exc:
        _unavailable(str(exc))


def _platforms(run: Run) -> list[str]:
    targets = run.report["targets"]
    assert isinstance(targets, list)
    return sorted(t["platform"] for t in targets if t["image"] is not None)


def _one_error(run: Run) -> str:
    assert run.returncode == 2, run.describe()
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("layerleak: error:")]
    assert len(lines) == 1, run.describe()
    return lines[0]


# --- explicit TLS choices win over REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE -------------------------


def test_environment_bundle_alone_is_refused_and_named(tls_anon: TlsRegistry, tmp_path: Path) -> None:
    line = _one_error(tls_anon.scan(tmp_path, tls_anon.target()))
    assert "TLS failed" in line and "certificate verify failed" in line
    assert f"REQUESTS_CA_BUNDLE={tls_anon.other.ca_cert}" in line
    assert "--ca-file" in line  # it says how to trust the registry's CA


def _certs_d(root: Path, host: str, ca: Path) -> None:
    (root / host).mkdir(parents=True)
    shutil.copy(ca, root / host / "ca.crt")


@pytest.mark.parametrize("choice", ["--insecure", "--ca-file", "--cert-dir", "certs.d", "docker certs.d"])
def test_explicit_choice_beats_the_environment(tls_anon: TlsRegistry, tmp_path: Path, choice: str) -> None:
    host, ca = tls_anon.registry.host, tls_anon.tls.ca_cert
    env = tls_anon.env(tmp_path)
    args: list[str] = []
    if choice == "--insecure":
        args = ["--insecure"]
    elif choice == "--ca-file":
        args = ["--ca-file", str(ca)]
    elif choice == "--cert-dir":
        assert tls_anon.registry.cert_dir is not None
        args = ["--cert-dir", str(tls_anon.registry.cert_dir)]  # holds ca.crt, as for skopeo
    elif choice == "certs.d":  # rootless podman's place: $XDG_CONFIG_HOME/containers/certs.d/HOST
        _certs_d(Path(env["XDG_CONFIG_HOME"]) / "containers" / "certs.d", host, ca)
    else:  # /etc/docker/certs.d, moved by LAYERLEAK_CERTS_D so the test need not write /etc
        _certs_d(tmp_path / "etc-docker-certs.d", host, ca)
        env["LAYERLEAK_CERTS_D"] = str(tmp_path / "etc-docker-certs.d")
    run = tls_anon.scan(tmp_path, *args, tls_anon.target(), env=env)
    assert run.returncode == 1, run.describe()
    assert _platforms(run) == ["linux/amd64", "linux/arm64/v8"]


def test_wrong_ca_file_error_names_it_and_not_insecure(tls_anon: TlsRegistry, tmp_path: Path) -> None:
    wrong = tls_anon.other.ca_cert
    line = _one_error(tls_anon.scan(tmp_path, "--ca-file", str(wrong), tls_anon.target()))
    assert "certificate verify failed" in line
    assert f"--ca-file {wrong}" in line
    assert "--insecure" not in line


def test_explicit_ca_does_not_drop_the_environment_bundle(tls_anon: TlsRegistry, tmp_path: Path) -> None:
    """--ca-file adds to the bundle in use (as docker adds certs.d CAs to the system pool): with
    the registry's CA in REQUESTS_CA_BUNDLE and a foreign CA in --ca-file, the scan still works."""
    right = str(tls_anon.tls.ca_cert)
    env = user_env(tmp_path, REQUESTS_CA_BUNDLE=right, CURL_CA_BUNDLE=right)
    run = tls_anon.scan(tmp_path, "--ca-file", str(tls_anon.other.ca_cert), tls_anon.target(), env=env)
    assert run.returncode == 1, run.describe()


def test_advice_is_worded_from_what_is_configured() -> None:
    refused = Trust("/b.pem", "--ca-file /b.pem", True, ("/c/client.cert", "/c/client.key"))
    assert "refused the client certificate /c/client.cert" in refused.advice(
        "h", "sslv3 alert bad certificate"
    )
    assert "TLS handshake failed" in Trust("/b.pem", "x", True).advice("h", "unsupported protocol")
    insecure = Trust(False, "--insecure", True).advice("h:5000", "handshake failure")
    assert "--insecure" in insecure and "off" in insecure and "turn" not in insecure
    explicit = Trust("/b.pem", "certs.d /etc/docker/certs.d/h:5000", True).advice("h:5000")
    assert "certs.d /etc/docker/certs.d/h:5000" in explicit and "--insecure" not in explicit
    default = Trust("/c.pem", "the default CA bundle", False).advice("h:5000")
    assert "--ca-file" in default and "certs.d/h:5000/ca.crt" in default


# --- platforms and names, from a registry ------------------------------------------------------


def test_registry_platform_with_default_variant(tls_anon: TlsRegistry, tmp_path: Path) -> None:
    """The index says linux/arm64 (no variant); --platform linux/arm64/v8 is the same platform."""
    ca = str(tls_anon.tls.ca_cert)
    run = tls_anon.scan(
        tmp_path, "--ca-file", ca, "--platform", "linux/arm64/v8", tls_anon.target("novariant:latest")
    )
    assert run.returncode == 1, run.describe()
    assert _platforms(run) == ["linux/arm64"]


def test_registry_unknown_platform_lists_the_index(tls_anon: TlsRegistry, tmp_path: Path) -> None:
    ca = str(tls_anon.tls.ca_cert)
    run = tls_anon.scan(tmp_path, "--ca-file", ca, "--platform", "linux/riscv64", tls_anon.target())
    line = _one_error(run)
    assert "no image for platform linux/riscv64 (the image has: linux/amd64, linux/arm64/v8)" in line


def test_registry_unknown_tag_lists_the_tags(tls_anon: TlsRegistry, tmp_path: Path) -> None:
    ca = str(tls_anon.tls.ca_cert)
    line = _one_error(tls_anon.scan(tmp_path, "--ca-file", ca, tls_anon.target("novariant:v3")))
    assert "no image novariant:v3" in line
    assert "its tags: latest, v2" in line


# --- plain HTTP and refused connections fall back at once ---------------------------------------


def _attempts(caplog: pytest.LogCaptureFixture, scheme: str) -> int:
    return sum(r.getMessage().startswith(f"Starting new {scheme} connection") for r in caplog.records)


def _retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Retrying" in r.getMessage()]


def test_plain_http_registry_is_found_with_one_https_attempt(
    handmade_images: Built, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        with services.start_registry(tmp_path / "registry", tls=False, auth=False) as reg:
            _push(reg, f"oci:{handmade_images.path('multiplatform')}:latest", "multi:latest")
            target = f"docker://{reg.host}/multi:latest"
            for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
                monkeypatch.delenv(name, raising=False)
            caplog.set_level(logging.DEBUG, logger="urllib3")
            with RegistrySource(target, target.removeprefix("docker://")) as source:
                images = source.images()
                assert source.client.base() == f"http://{reg.host}"  # type: ignore[attr-defined]
            assert sorted(str(i.platform) for i in images) == ["linux/amd64", "linux/arm64/v8"]
            assert _attempts(caplog, "HTTPS") == 1
            assert _retries(caplog) == []
            run = layerleak("scan", "--no-progress", "--format", "json", target, env=user_env(tmp_path))
            assert run.returncode == 1, run.describe()
    except ServiceUnavailable as exc:
        _unavailable(str(exc))


def test_refused_port_fails_at_once(caplog: pytest.LogCaptureFixture) -> None:
    host = f"127.0.0.1:{services.free_port()}"  # nothing listens there
    caplog.set_level(logging.DEBUG, logger="urllib3")
    with RegistrySource(f"docker://{host}/x", f"{host}/x") as source, pytest.raises(RegistryError) as err:
        source.images()
    assert "cannot reach registry" in err.value.message and "refused" in err.value.message.lower()
    assert (_attempts(caplog, "HTTPS"), _attempts(caplog, "HTTP")) == (1, 1)
    assert _retries(caplog) == []


def test_one_connection_serves_the_whole_image(
    tls_anon: TlsRegistry, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe, the index, both manifests, both configs and both layers: one kept-alive
    connection (in-process, so urllib3's log shows every connection opened)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, str(tls_anon.other.ca_cert))
    caplog.set_level(logging.DEBUG, logger="urllib3")
    target = tls_anon.target()
    options = SourceOptions(ca_file=str(tls_anon.tls.ca_cert))
    with RegistrySource(target, target.removeprefix("docker://"), options) as source:
        images = source.images()
        keys = {layer.key for image in images for layer in image.layers}
        sizes = [len(stream.read()) for _, stream in source.blobs(keys)]
    assert len(images) == 2 and len(sizes) == 2 and all(sizes)
    assert _attempts(caplog, "HTTPS") == 1


def test_a_ca_file_that_is_not_pem_is_one_error(tls_anon: TlsRegistry, tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-ca.pem"
    bogus.write_text("hello\n")
    line = _one_error(tls_anon.scan(tmp_path, "--ca-file", str(bogus), tls_anon.target()))
    assert f"CA file {bogus}: not a PEM certificate file" in line


# --- mutual TLS: a client certificate from certs.d or --cert-dir -------------------------------


@pytest.fixture(scope="session")
def mtls(tmp_path_factory: pytest.TempPathFactory, handmade_images: Built) -> Iterator[TlsRegistry]:
    work = tmp_path_factory.mktemp("mtls")
    try:
        other = services.make_tls(work / "other-ca")
        with services.start_registry(work / "registry", tls=True, auth=False, client_auth=True) as reg:
            assert reg.tls is not None and reg.client_cert is not None
            _push(reg, f"oci:{handmade_images.path('multiplatform')}:latest", "multi:latest")
            yield TlsRegistry(reg, reg.tls, other)
    except ServiceUnavailable as exc:
        _unavailable(str(exc))


def test_client_certificate_required_and_not_given(mtls: TlsRegistry, tmp_path: Path) -> None:
    line = _one_error(mtls.scan(tmp_path, "--ca-file", str(mtls.tls.ca_cert), mtls.target()))
    assert "TLS failed" in line
    assert f"{mtls.registry.host} asks for a client certificate: put client.cert and client.key" in line
    assert "is that the CA" not in line  # the CA was right: the advice must not blame it


@pytest.mark.parametrize("where", ["certs.d", "--cert-dir"])
def test_client_certificate_from_certs_d_or_cert_dir(mtls: TlsRegistry, tmp_path: Path, where: str) -> None:
    env = mtls.env(tmp_path)  # both CA-bundle variables name the wrong CA
    assert mtls.registry.cert_dir is not None  # ca.crt, client.cert, client.key
    args: list[str] = []
    if where == "certs.d":
        shutil.copytree(mtls.registry.cert_dir, tmp_path / "certs.d" / mtls.registry.host)
        env["LAYERLEAK_CERTS_D"] = str(tmp_path / "certs.d")
    else:
        args = ["--cert-dir", str(mtls.registry.cert_dir)]
    run = mtls.scan(tmp_path, *args, mtls.target(), env=env)
    assert run.returncode == 1, run.describe()
    assert _platforms(run) == ["linux/amd64", "linux/arm64/v8"]


def test_client_certificate_without_its_key(mtls: TlsRegistry, tmp_path: Path) -> None:
    assert mtls.registry.cert_dir is not None
    folder = tmp_path / "certs.d" / mtls.registry.host
    folder.mkdir(parents=True)
    shutil.copy(mtls.registry.cert_dir / "client.cert", folder / "client.cert")
    env = mtls.env(tmp_path, LAYERLEAK_CERTS_D=str(tmp_path / "certs.d"))
    line = _one_error(mtls.scan(tmp_path, mtls.target(), env=env))
    assert "client.cert has no key client.key" in line


@pytest.mark.parametrize("command", ["layers", "baseline", "extract"])
def test_every_registry_command_takes_the_ca_options(
    tls_anon: TlsRegistry, tmp_path: Path, command: str
) -> None:
    ca = ["--ca-file", str(tls_anon.tls.ca_cert), "--platform", "linux/amd64"]
    out = tmp_path / "out"
    args = {
        "layers": ["layers", *ca, "--no-progress", "--format", "json", tls_anon.target()],
        "baseline": ["baseline", *ca, "--no-progress", "-o", str(out), tls_anon.target()],
        "extract": ["extract", *ca, "--layer", "0", "-o", str(out), tls_anon.target(), "/app/.env"],
    }[command]
    run = layerleak(*args, env=tls_anon.env(tmp_path))
    assert run.returncode == 0, run.describe()
    assert "TLS failed" not in run.stderr
    if command != "layers":
        assert out.stat().st_size > 0
