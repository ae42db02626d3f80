"""Scanning images in a registry: a real docker-registry (CNCF distribution) on 127.0.0.1.

- A TLS registry (CA made by the test) with htpasswd auth holds the leaky image gzip-compressed,
  the same image with zstd layers, and a two-platform index, all pushed with ``skopeo copy``.
  Findings must equal those of the saved docker-archive (or OCI layout) of the same image.
- A token-auth registry with a bearer-token service of our own runs the ``Bearer`` path.
- A plain-HTTP anonymous registry on loopback holds copies whose blobs the tests corrupt.
- A tiny static registry of our own answers 503/429 first and redirects blobs, for retries.
Bad input goes through the CLI: exit 2, one line naming the image and the cause, no traceback.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import handmade
import pytest

import services
from layerleak.detect.examples import expand
from layerleak.errors import UsageError
from layerleak.sources.registry import Reference, is_loopback, parse_reference
from layerleak.sources.registry_auth import parse_challenge
from services import Registry, Run, ServiceUnavailable, finding_keys, layerleak, user_env

if TYPE_CHECKING:
    from conftest import Built

pytestmark = [pytest.mark.service, pytest.mark.builder]

ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"


def _unavailable(reason: str) -> None:
    message = f"{'=' * 20} REGISTRY NOT STARTED {'=' * 20}\n{reason}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def push(registry: Registry, source: str, dest: str, *flags: str) -> None:
    services.run(
        "skopeo",
        "copy",
        "--quiet",
        *flags,
        *registry.skopeo_dest(),
        source,
        f"docker://{registry.host}/{dest}",
    )


@dataclass(frozen=True, slots=True)
class Pushed:
    registry: Registry
    leaky: Built
    handmade: Built

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        assert self.registry.tls is not None
        return user_env(home, REQUESTS_CA_BUNDLE=str(self.registry.tls.ca_cert), **extra)

    def target(self, ref: str) -> str:
        return f"docker://{self.registry.host}/{ref}"

    def scan(self, home: Path, *args: str, env: dict[str, str] | None = None) -> Run:
        """Scan with --username and the password on stdin."""
        assert self.registry.username and self.registry.password
        return layerleak(
            "scan",
            "--no-progress",
            "--format",
            "json",
            "--username",
            self.registry.username,
            "--password-stdin",
            *args,
            env=env or self.env(home),
            stdin=self.registry.password + "\n",
        )


@pytest.fixture(scope="session")
def tls_registry(
    tmp_path_factory: pytest.TempPathFactory, leaky_image: Built, handmade_images: Built
) -> Iterator[Pushed]:
    try:
        with services.start_registry(tmp_path_factory.mktemp("tls-registry"), tls=True, auth=True) as reg:
            archive = f"docker-archive:{leaky_image.path('leaky', 'docker-archive')}"
            # zstd first: skopeo would swap in gzip blobs of the same layers already pushed.
            push(reg, f"oci:{leaky_image.path('leaky', 'oci-zstd')}:leaky:latest", "leaky:zstd")
            push(reg, archive, "leaky:latest")
            multi = handmade_images.path("multiplatform")
            push(reg, f"oci:{multi}:latest", "multi:latest", "--all")
            yield Pushed(reg, leaky_image, handmade_images)
    except ServiceUnavailable as exc:
        _unavailable(str(exc))


@pytest.fixture(scope="session")
def saved_tar_findings(
    leaky_image: Built, tmp_path_factory: pytest.TempPathFactory
) -> set[tuple[object, ...]]:
    home = tmp_path_factory.mktemp("home-saved")
    run = layerleak(
        "scan",
        "--no-progress",
        "--format",
        "json",
        f"docker-archive:{leaky_image.path('leaky', 'docker-archive')}",
        env=user_env(home),
    )
    assert run.returncode == 1, run.describe()
    keys = finding_keys(run.report)
    assert len(keys) >= 8, "the leaky image should yield its planted findings"
    return keys


def assert_one_error_line(run: Run, *words: str) -> str:
    assert run.returncode == 2, run.describe()
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("layerleak: error:")]
    assert len(lines) == 1, run.describe()
    for word in words:
        assert word in lines[0], run.describe()
    return lines[0]


def images_of(run: Run) -> list[dict[str, Any]]:
    targets = run.report["targets"]
    assert isinstance(targets, list)
    return [t for t in targets if t["image"] is not None]


# --- the happy paths --------------------------------------------------------------------------


def test_registry_basic_auth_over_tls_matches_saved_tar(
    tls_registry: Pushed, saved_tar_findings: set[tuple[object, ...]], tmp_path: Path
) -> None:
    run = tls_registry.scan(tmp_path, tls_registry.target("leaky:latest"))
    assert run.returncode == 1, run.describe()
    assert finding_keys(run.report) == saved_tar_findings
    assert tls_registry.registry.password not in run.stdout + run.stderr


def test_zstd_layers_give_the_same_findings(
    tls_registry: Pushed, saved_tar_findings: set[tuple[object, ...]], tmp_path: Path
) -> None:
    run = tls_registry.scan(tmp_path, tls_registry.target("leaky:zstd"))
    assert run.returncode == 1, run.describe()
    (image,) = images_of(run)
    assert {layer["media_type"] for layer in image["layers"]} == {ZSTD_LAYER}
    assert finding_keys(run.report) == saved_tar_findings


def test_multi_platform_index_scans_every_platform_or_the_one_asked(
    tls_registry: Pushed, tmp_path: Path
) -> None:
    layout = tls_registry.handmade.path("multiplatform")
    saved = layerleak(
        "scan", "--no-progress", "--format", "json", f"oci:{layout}:latest", env=user_env(tmp_path)
    )
    assert saved.returncode == 1, saved.describe()

    run = tls_registry.scan(tmp_path, tls_registry.target("multi:latest"))
    assert run.returncode == 1, run.describe()
    assert sorted(i["platform"] for i in images_of(run)) == ["linux/amd64", "linux/arm64/v8"]
    assert finding_keys(run.report) == finding_keys(saved.report)

    arm = tls_registry.scan(tmp_path, "--platform", "linux/arm64", tls_registry.target("multi:latest"))
    assert arm.returncode == 1, arm.describe()
    assert [i["platform"] for i in images_of(arm)] == ["linux/arm64/v8"]
    assert finding_keys(arm.report) < finding_keys(run.report)


def test_by_digest(tls_registry: Pushed, saved_tar_findings: set[tuple[object, ...]], tmp_path: Path) -> None:
    reg = tls_registry.registry
    inspect = services.run(
        "skopeo",
        "inspect",
        "--raw",
        f"--cert-dir={reg.cert_dir}",
        f"--creds={reg.username}:{reg.password}",
        f"docker://{reg.host}/leaky:latest",
    )
    digest = "sha256:" + hashlib.sha256(inspect.encode()).hexdigest()
    run = tls_registry.scan(tmp_path, tls_registry.target(f"leaky@{digest}"))
    assert run.returncode == 1, run.describe()
    assert finding_keys(run.report) == saved_tar_findings


def _docker_config(home: Path, config: dict[str, Any]) -> None:
    (home / ".docker").mkdir(parents=True, exist_ok=True)
    (home / ".docker" / "config.json").write_text(json.dumps(config))


def _plain_scan(pushed: Pushed, env: dict[str, str], ref: str = "leaky:latest") -> Run:
    return layerleak("scan", "--no-progress", "--format", "json", pushed.target(ref), env=env)


def test_credentials_from_docker_config_auths(
    tls_registry: Pushed, saved_tar_findings: set[tuple[object, ...]], tmp_path: Path
) -> None:
    reg = tls_registry.registry
    token = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    _docker_config(tmp_path, {"auths": {reg.host: {"auth": token}}})
    run = _plain_scan(tls_registry, tls_registry.env(tmp_path))
    assert run.returncode == 1, run.describe()
    assert finding_keys(run.report) == saved_tar_findings


def test_credentials_from_a_credential_helper(
    tls_registry: Pushed, saved_tar_findings: set[tuple[object, ...]], tmp_path: Path
) -> None:
    """credHelpers names docker-credential-<name>, run with ``get`` and the host on stdin."""
    reg = tls_registry.registry
    bindir = tmp_path / "bin"
    bindir.mkdir()
    answer = json.dumps({"ServerURL": reg.host, "Username": reg.username, "Secret": reg.password})
    helper = bindir / "docker-credential-layerleaktest"
    helper.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] || exit 1\nread host\n[ "$host" = "{reg.host}" ] || '
        "{ echo 'credentials not found in native keychain'; exit 1; }\n"
        f"echo '{answer}'\n"
    )
    helper.chmod(0o755)
    _docker_config(tmp_path, {"credHelpers": {reg.host: "layerleaktest"}})
    env = tls_registry.env(tmp_path, PATH=f"{bindir}:{os.environ['PATH']}")
    run = _plain_scan(tls_registry, env)
    assert run.returncode == 1, run.describe()
    assert finding_keys(run.report) == saved_tar_findings


def test_credentials_from_environment(tls_registry: Pushed, tmp_path: Path) -> None:
    reg = tls_registry.registry
    assert reg.username and reg.password
    env = tls_registry.env(tmp_path, LAYERLEAK_USERNAME=reg.username, LAYERLEAK_PASSWORD=reg.password)
    run = _plain_scan(tls_registry, env)
    assert run.returncode == 1, run.describe()
    assert reg.password not in run.stdout + run.stderr


def test_insecure_skips_tls_verification(tls_registry: Pushed, tmp_path: Path) -> None:
    env = user_env(tmp_path)  # the test CA is not trusted here
    untrusted = tls_registry.scan(tmp_path, tls_registry.target("leaky:latest"), env=env)
    assert_one_error_line(untrusted, tls_registry.target("leaky:latest"), "TLS", "certificate verify failed")
    run = tls_registry.scan(tmp_path, "--insecure", tls_registry.target("leaky:latest"), env=env)
    assert run.returncode == 1, run.describe()


# --- bad input --------------------------------------------------------------------------------


def test_wrong_password(tls_registry: Pushed, tmp_path: Path) -> None:
    reg = tls_registry.registry
    assert reg.username
    run = layerleak(
        "scan",
        "--no-progress",
        "--username",
        reg.username,
        "--password-stdin",
        tls_registry.target("leaky:latest"),
        env=tls_registry.env(tmp_path),
        stdin="not-it\n",
    )
    assert_one_error_line(run, tls_registry.target("leaky:latest"), "authentication failed")


def test_no_credentials(tls_registry: Pushed, tmp_path: Path) -> None:
    run = _plain_scan(tls_registry, tls_registry.env(tmp_path))
    assert_one_error_line(run, tls_registry.target("leaky:latest"), "requires authentication")


def test_unknown_image_fails_alone(tls_registry: Pushed, tmp_path: Path) -> None:
    """The unknown image gets one error line; the image that exists is still reported."""
    run = tls_registry.scan(tmp_path, tls_registry.target("leaky:latest"), tls_registry.target("leaky:nope"))
    assert_one_error_line(run, tls_registry.target("leaky:nope"), "no image leaky:nope")
    assert [i["target"] for i in images_of(run)] == [tls_registry.target("leaky:latest")]
    assert len(run.report["findings"]) >= 8  # type: ignore[arg-type]


def test_registry_down(tmp_path: Path) -> None:
    host = f"127.0.0.1:{services.free_port()}"  # nothing listens there
    run = layerleak("scan", "--no-progress", f"docker://{host}/leaky:latest", env=user_env(tmp_path))
    assert_one_error_line(run, f"docker://{host}/leaky:latest", "cannot reach registry")


@contextmanager
def plain_registry(workdir: Path, source: str, ref: str) -> Iterator[Registry]:
    """Anonymous, plain HTTP on loopback, holding one image whose blobs a test may damage."""
    try:
        with services.start_registry(workdir, tls=False, auth=False) as reg:
            push(reg, source, ref)
            yield reg
    except ServiceUnavailable as exc:
        _unavailable(str(exc))


def _layer_blob(reg: Registry, ref: str, index: int) -> tuple[str, Path]:
    raw = services.run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reg.host}/{ref}")
    digest = json.loads(raw)["layers"][index]["digest"]
    return digest, reg.blob_path(digest)


def test_digest_mismatch_is_a_layer_error(
    leaky_image: Built, saved_tar_findings: set[tuple[object, ...]], tmp_path: Path
) -> None:
    archive = f"docker-archive:{leaky_image.path('leaky', 'docker-archive')}"
    with plain_registry(tmp_path / "registry", archive, "mismatch:latest") as reg:
        digest, blob = _layer_blob(reg, "mismatch:latest", 2)  # the AWS credentials layer
        data = bytearray(blob.read_bytes())
        assert data[:2] == b"\x1f\x8b"
        data[4:8] = bytes(b ^ 0xFF for b in data[4:8])  # the gzip header's MTIME: only the digest tells
        blob.write_bytes(bytes(data))
        target = f"docker://{reg.host}/mismatch:latest"
        run = layerleak("scan", "--no-progress", "--format", "json", target, env=user_env(tmp_path))
    assert_one_error_line(run, target, "layer 2", "digest mismatch", digest)
    # Every other layer is still scanned and reported.
    others = {k for k in saved_tar_findings if k[4] not in (None, 2)}
    assert others and others <= finding_keys(run.report)


def test_truncated_blob_is_a_layer_error(leaky_image: Built, tmp_path: Path) -> None:
    layout = f"oci:{leaky_image.path('leaky', 'oci-zstd')}:leaky:latest"
    with plain_registry(tmp_path / "registry", layout, "truncated:latest") as reg:
        _, blob = _layer_blob(reg, "truncated:latest", 4)  # /app/ files
        data = blob.read_bytes()
        blob.write_bytes(data[: len(data) // 2])
        target = f"docker://{reg.host}/truncated:latest"
        run = layerleak("scan", "--no-progress", "--format", "json", target, env=user_env(tmp_path))
    assert_one_error_line(run, target, "layer 4", "truncated")
    assert any(f["layer_index"] == 2 for f in run.report["findings"])  # type: ignore[attr-defined]


# --- bearer tokens ----------------------------------------------------------------------------


def test_bearer_token_challenge(
    tmp_path: Path, leaky_image: Built, saved_tar_findings: set[tuple[object, ...]]
) -> None:
    try:
        with (
            services.start_token_service(tmp_path / "token") as (tokens, settings),
            services.start_registry(tmp_path / "registry", tls=False, auth=False, token=settings) as reg,
        ):
            creds = f"--dest-creds={tokens.username}:{tokens.password}"
            services.run(
                "skopeo",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                creds,
                f"docker-archive:{leaky_image.path('leaky', 'docker-archive')}",
                f"docker://{reg.host}/team/leaky:latest",
            )
            tokens.requests.clear()
            target = f"docker://{reg.host}/team/leaky:latest"
            run = layerleak(
                "scan",
                "--no-progress",
                "--format",
                "json",
                "--username",
                tokens.username,
                "--password-stdin",
                target,
                env=user_env(tmp_path),
                stdin=tokens.password,
            )
            assert run.returncode == 1, run.describe()
            assert finding_keys(run.report) == saved_tar_findings
            assert tokens.requests[0] == {"scope": "repository:team/leaky:pull", "service": tokens.service}

            wrong = layerleak(
                "scan",
                "--no-progress",
                "--username",
                tokens.username,
                "--password-stdin",
                target,
                env=user_env(tmp_path),
                stdin="nope",
            )
            assert_one_error_line(wrong, target, "authentication failed")
    except ServiceUnavailable as exc:
        _unavailable(str(exc))


# --- retries and redirects, against a tiny registry of our own ---------------------------------


class _StaticRegistry(http.server.ThreadingHTTPServer):
    """Serves one OCI layout as repository ``img``: fails the first requests, redirects blobs."""

    def __init__(self, layout: Path, failures: list[int], hold: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _StaticHandler)
        self.layout = layout
        self.failures = failures  # statuses to answer first, one per request
        self.seen: list[str] = []
        self.hold = hold  # seconds each blob's answer waits before it is sent
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0  # blob downloads answered at once

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that stops reading a blob it has judged (a digest mismatch) is no news


class _StaticHandler(http.server.BaseHTTPRequestHandler):
    server: _StaticRegistry

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.seen.append(self.path)
        if self.server.failures:
            status = self.server.failures.pop(0)
            self.send_response(status)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        layout = self.server.layout
        if self.path == "/v2/":
            return self._send(b"{}", "application/json")
        if self.path.startswith("/v2/img/manifests/"):
            ref = self.path.rsplit("/", 1)[1]
            desc = json.loads((layout / "index.json").read_text())["manifests"][0]  # any tag
            if ref.startswith("sha256:") and ref != desc["digest"]:
                return self._send(b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', "application/json", 404)
            body = (layout / "blobs/sha256" / desc["digest"].split(":")[1]).read_bytes()
            return self._send(body, desc["mediaType"])
        if self.path.startswith("/v2/img/blobs/"):
            self.send_response(307)
            self.send_header("Location", "/storage/" + self.path.rsplit(":", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/storage/"):
            blob = layout / "blobs/sha256" / self.path.rsplit("/", 1)[1]
            with self.server.lock:
                self.server.in_flight += 1
                self.server.most_in_flight = max(self.server.most_in_flight, self.server.in_flight)
            try:
                time.sleep(self.server.hold)
                return self._send(blob.read_bytes(), "application/octet-stream")
            finally:
                with self.server.lock:
                    self.server.in_flight -= 1
        self._send(b"", "text/plain", 404)

    def _send(self, body: bytes, media: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_retries_on_429_and_5xx_and_follows_blob_redirects(leaky_image: Built, tmp_path: Path) -> None:
    layout = leaky_image.path("leaky", "oci-zstd")
    server = _StaticRegistry(layout, [503, 429, 502])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        saved = layerleak(
            "scan", "--no-progress", "--format", "json", f"oci:{layout}:leaky:latest", env=user_env(tmp_path)
        )
        run = layerleak(
            "scan", "--no-progress", "--format", "json", f"docker://{host}/img:latest", env=user_env(tmp_path)
        )
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode == 1, run.describe()
    assert finding_keys(run.report) == finding_keys(saved.report)
    assert sum(p.startswith("/storage/") for p in server.seen) >= 10  # every layer via the redirect


def test_layers_stream_several_at_once_with_the_same_results(leaky_image: Built, tmp_path: Path) -> None:
    """With two jobs, two workers each stream a layer blob at the same time (the registry holds
    each answer a moment, so downloads that overlap are seen overlapping); the report is the
    one-at-a-time path's, layer summaries included."""
    layout = leaky_image.path("leaky", "oci-zstd")
    server = _StaticRegistry(layout, [], hold=0.4)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    runs: dict[str, tuple[Run, int]] = {}
    try:
        target = f"docker://127.0.0.1:{server.server_address[1]}/img:latest"
        for jobs in ("1", "2"):
            server.most_in_flight = 0
            run = layerleak("scan", "--no-progress", "--no-cache", "--format", "json", "-j", jobs, target,
                            env=user_env(tmp_path / f"home-{jobs}"))
            runs[jobs] = (run, server.most_in_flight)
    finally:
        server.shutdown()
        server.server_close()
    (one, one_at_once), (two, two_at_once) = runs["1"], runs["2"]
    assert one.returncode == two.returncode == 1, one.describe() + two.describe()
    assert one_at_once == 1  # what the counter sees of one download at a time
    assert two_at_once == 2
    assert two.report["findings"] == one.report["findings"]
    assert [t["layers"] for t in images_of(two)] == [t["layers"] for t in images_of(one)]
    assert [t["errors"] for t in images_of(two)] == [t["errors"] for t in images_of(one)]


def _big_gzip_layout(root: Path, damaged: bool) -> Path:
    """An OCI layout of two gzip layers: one of 40 MB (random bytes do not compress, so its blob
    is over the size inflated on a second thread) holding a token, and a small one."""
    rng = random.Random(7)
    token = expand("GITHUB_TOKEN=ghp_{{alnum:36}}\n", rng).encode()
    noise = handmade.file("data/noise.bin", os.urandom(40 << 20))
    big = handmade.layer_tar([handmade.directory("data"), noise, handmade.file("data/env", token)])
    small = handmade.layer_tar([handmade.directory("app"), handmade.file("app/.env", token)])
    blobs = [handmade.Blob(handmade.gzipped(layer), handmade.MT_OCI_LAYER_GZIP) for layer in (big, small)]
    config = handmade.image_config([big, small], [{"created_by": "COPY data"}, {"created_by": "COPY app"}])
    manifest = handmade.oci_manifest(config, blobs)
    index = {"schemaVersion": 2, "manifests": [manifest.descriptor(annotations={
        "org.opencontainers.image.ref.name": "latest"})]}
    files = handmade.oci_layout_files(index, [config, manifest, *blobs])
    if damaged:  # the gzip header's MTIME: the blob still inflates, only its digest tells
        name = f"blobs/sha256/{blobs[0].hex}"
        data = bytearray(files[name])
        data[4:8] = bytes(b ^ 0xFF for b in data[4:8])
        files[name] = bytes(data)
    handmade.write_dir(root, files)
    return root


@pytest.mark.parametrize("damaged", [False, True])
def test_a_big_gzip_blob_inflated_on_a_thread_gives_the_same_report(tmp_path: Path, damaged: bool) -> None:
    """Two jobs inflate a big gzip blob on a second thread of its worker; the report is the
    one-at-a-time path's, and a blob that fails its digest check is reported as that path
    reports it (fetched again and scanned without the thread)."""
    layout = _big_gzip_layout(tmp_path / "layout", damaged)
    manifest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    big = json.loads((layout / "blobs/sha256" / manifest.split(":")[1]).read_text())["layers"][0]["digest"]
    server = _StaticRegistry(layout, [])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    runs: dict[str, Run] = {}
    fetched: dict[str, int] = {}  # downloads of the big blob
    try:
        target = f"docker://127.0.0.1:{server.server_address[1]}/img:latest"
        for jobs in ("1", "2"):
            server.seen.clear()
            runs[jobs] = layerleak("scan", "--no-progress", "--no-cache", "--format", "json", "-j", jobs,
                                   "--min-confidence", "low", target, env=user_env(tmp_path / f"home-{jobs}"))
            fetched[jobs] = server.seen.count("/storage/" + big.split(":")[1])
    finally:
        server.shutdown()
        server.server_close()
    one, two = runs["1"], runs["2"]
    assert two.report["findings"] == one.report["findings"], two.describe()
    assert [t["layers"] for t in images_of(two)] == [t["layers"] for t in images_of(one)]
    if damaged:
        line = assert_one_error_line(two, target, "layer 0", "digest mismatch")
        assert line == assert_one_error_line(one, target)
        assert {f["layer_index"] for f in two.report["findings"]} == {1}  # type: ignore[attr-defined]
        assert fetched == {"1": 1, "2": 2}  # the threaded attempt failed, then the plain path read it
    else:
        assert two.returncode == one.returncode == 1, two.describe()
        assert {f["layer_index"] for f in two.report["findings"]} == {0, 1}  # type: ignore[attr-defined]
        assert fetched == {"1": 1, "2": 1}


# --- pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/leaky", Reference("127.0.0.1:5000", "leaky", None, None)),
        ("localhost/a/b:v1.2", Reference("localhost", "a/b", "v1.2", None)),
        (
            "reg.example:443/team/app@sha256:" + "a" * 64,
            Reference("reg.example:443", "team/app", None, "sha256:" + "a" * 64),
        ),
        ("reg.example/app:t@sha256:" + "b" * 64, Reference("reg.example", "app", "t", "sha256:" + "b" * 64)),
    ],
)
def test_parse_reference(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    "text", ["leaky:latest", "alpine", "127.0.0.1:5000/", "reg.example/UPPER", "h.x/a@sha256:12"]
)
def test_parse_reference_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_reference(text)


def test_parse_challenge() -> None:
    header = 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'
    challenge = parse_challenge(header)
    assert challenge is not None and challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
    }
    basic = parse_challenge('Basic realm="layerleak-test"')
    assert basic is not None and basic.scheme == "basic" and basic.params == {"realm": "layerleak-test"}
    assert parse_challenge("Negotiate") is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("localhost", True),
        ("[::1]:5000", True),
        ("10.0.0.1:5000", False),
        ("reg.example", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
