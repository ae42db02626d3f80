"""What registry requests take from the environment: never ``~/.netrc``, always the proxy variables.

A real docker-registry (anonymous, plain HTTP on 127.0.0.1) holds a hand-made two-platform image.
In front of it runs a tiny recording HTTP server of our own: as a *reverse* proxy it forwards
every request to the registry and answers blob GETs with a redirect to a second recorder on
``localhost`` (the way registries send blobs to object storage, on another host); as a *forward*
proxy (``HTTP_PROXY``) it forwards absolute-URI requests. Each recorder keeps every request's
headers, which is what the assertions read.

``HOME`` is a temporary directory holding a real ``.netrc`` with entries for ``127.0.0.1`` and
``localhost``: ``requests`` sends those as Basic auth on every request that has no
Authorization of its own, unless the session ignores the environment (shown first, in-process,
so the tests could fail).
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import requests

import services
from services import Registry, ServiceUnavailable, layerleak, user_env

if TYPE_CHECKING:
    from conftest import Built

pytestmark = [pytest.mark.service]

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
              "all_proxy", "no_proxy")  # fmt: skip


@dataclass
class Recorder:
    """Every request one recording server saw: (method, target, headers)."""

    port: int
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def authorized(self) -> list[str]:
        return [target for _, target, headers in self.seen if "authorization" in headers]


@contextmanager
def recorder(upstream: str, redirect_blobs: str | None = None) -> Iterator[Recorder]:
    """A loopback HTTP server that records each request, then forwards it: an absolute-URI
    request (forward proxy) to its own URL, any other to ``upstream`` (reverse proxy), except
    blob GETs, which are redirected to ``redirect_blobs`` when given."""
    rec = Recorder(services.free_port())

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self._forward("HEAD")

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._forward("GET")

        def _forward(self, method: str) -> None:
            rec.seen.append((method, self.path, {k.lower(): v for k, v in self.headers.items()}))
            target = self.path if self.path.startswith("http://") else upstream + self.path
            if redirect_blobs and not self.path.startswith("http://") and "/blobs/" in self.path:
                self.send_response(307)
                self.send_header("Location", redirect_blobs + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            parts = urlsplit(target)
            conn = http.client.HTTPConnection(parts.netloc, timeout=30)
            try:
                hop = ("host", "proxy-connection")
                keep = {k: v for k, v in self.headers.items() if k.lower() not in hop}
                conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), headers=keep)
                resp = conn.getresponse()
                body = resp.read()
            finally:
                conn.close()
            self.send_response(resp.status)
            for name, value in resp.getheaders():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", rec.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True, slots=True)
class Setup:
    registry: Registry
    home: Path
    password: str  # in .netrc: must never reach a request

    def env(self, **extra: str) -> dict[str, str]:
        env = user_env(self.home, **extra)
        for name in PROXY_VARS:
            if name not in extra:
                env.pop(name, None)
        return env


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, handmade_images: Built) -> Iterator[Setup]:
    work = tmp_path_factory.mktemp("netrc")
    home = work / "home"
    home.mkdir()
    password = secrets.token_urlsafe(12)
    netrc = home / ".netrc"
    netrc.write_text(
        f"machine 127.0.0.1 login netrc-user password {password}\n"
        f"machine localhost login netrc-user password {password}\n"
    )
    netrc.chmod(0o600)
    try:
        with services.start_registry(work / "registry", tls=False, auth=False) as reg:
            services.run("skopeo", "copy", "--quiet", "--all", *reg.skopeo_dest(),
                         f"oci:{handmade_images.path('multiplatform')}:latest",
                         f"docker://{reg.host}/multi:latest")  # fmt: skip
            services.run("skopeo", "copy", "--quiet", "--override-arch", "amd64", *reg.skopeo_dest(),
                         f"oci:{handmade_images.path('multiplatform')}:latest",
                         f"docker://{reg.host}/single:latest")  # fmt: skip: one platform's manifest
            yield Setup(reg, home, password)
    except ServiceUnavailable as exc:
        message = f"{'=' * 20} REGISTRY NOT STARTED {'=' * 20}\n{exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@contextmanager
def fronted(setup: Setup) -> Iterator[tuple[Recorder, Recorder]]:
    """The registry behind a recorder on 127.0.0.1 whose blobs redirect to one on localhost."""
    upstream = f"http://{setup.registry.host}"
    with recorder(upstream) as storage, recorder(upstream, f"http://localhost:{storage.port}") as front:
        yield front, storage


def test_plain_requests_would_send_the_netrc_entry(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """The .netrc is real and effective: a default requests session sends it, to both hosts."""
    monkeypatch.setenv("HOME", str(setup.home))
    monkeypatch.delenv("NETRC", raising=False)
    with fronted(setup) as (front, storage):
        requests.get(f"http://127.0.0.1:{front.port}/v2/", timeout=30).close()
        requests.get(f"http://localhost:{storage.port}/v2/", timeout=30).close()
    assert front.authorized() == ["/v2/"] and storage.authorized() == ["/v2/"]


@pytest.mark.parametrize("command", ["scan", "registry"])
def test_no_netrc_credentials_on_anonymous_requests_nor_redirects(setup: Setup, command: str) -> None:
    with fronted(setup) as (front, storage):
        host = f"127.0.0.1:{front.port}"
        if command == "scan":
            run = layerleak("scan", "--no-progress", "--no-cache", "--format", "json",
                            f"docker://{host}/multi:latest", env=setup.env())  # fmt: skip
        else:
            run = layerleak("registry", host, "--no-progress", "--format", "json",
                            "--db", str(setup.home / "jobs.sqlite3"), "-j", "1", env=setup.env())  # fmt: skip
    assert run.returncode in (0, 1), run.describe()
    fronted_paths = [target for _, target, _ in front.seen]
    assert any("/manifests/" in p for p in fronted_paths), fronted_paths
    assert any("/blobs/" in p for _, p, _ in storage.seen), "no blob went through the redirect"
    assert front.authorized() == [] and storage.authorized() == []
    assert setup.password not in run.stdout + run.stderr


def test_proxy_variables_are_honoured_and_no_proxy_too(setup: Setup) -> None:
    target = f"docker://{setup.registry.host}/multi:latest"
    with recorder(f"http://{setup.registry.host}") as proxy:
        via = setup.env(HTTP_PROXY=f"http://127.0.0.1:{proxy.port}")
        run = layerleak("scan", "--no-progress", "--no-cache", "--format", "json", target, env=via)
        assert run.returncode in (0, 1), run.describe()
        proxied = [t for _, t, _ in proxy.seen]
        assert any(t.startswith(f"http://{setup.registry.host}/v2/") and "/blobs/" in t for t in proxied)
        assert proxy.authorized() == []  # the netrc entry for 127.0.0.1 is not sent to the proxy either
        before = len(proxy.seen)
        bypass = setup.env(HTTP_PROXY=f"http://127.0.0.1:{proxy.port}", NO_PROXY="127.0.0.1")
        run = layerleak("scan", "--no-progress", "--no-cache", "--format", "json", target, env=bypass)
        assert run.returncode in (0, 1), run.describe()
        assert len(proxy.seen) == before


def test_a_rerun_asks_for_an_unchanged_single_platform_tag_with_a_head(setup: Setup, tmp_path: Path) -> None:
    """A registry job run again reads each unchanged single-platform tag's digest from a HEAD
    (not a pull where pulls are counted) and GETs no manifest of it; a multi-platform tag's index
    is still read (its platforms are what the results database records), but not their manifests."""
    db = str(tmp_path / "jobs.sqlite3")
    with fronted(setup) as (front, _storage):
        host = f"127.0.0.1:{front.port}"
        argv = ("registry", host, "--no-progress", "--format", "json", "--db", db, "-j", "1")
        first = layerleak(*argv, env=setup.env())
        assert first.returncode in (0, 1), first.describe()
        assert ("HEAD", "/v2/single/manifests/latest") not in [(m, t) for m, t, _ in front.seen]
        front.seen.clear()
        again = layerleak(*argv, "--tags", "latest", env=setup.env())
    assert again.returncode == first.returncode, again.describe()
    summary = json.loads(again.stdout)
    assert summary["images_unchanged"] == summary["images"] >= 3  # single, and multi's platforms
    seen = [(method, target) for method, target, _ in front.seen]
    assert ("HEAD", "/v2/single/manifests/latest") in seen
    manifest_gets = [t for m, t in seen if m == "GET" and "/manifests/" in t]
    assert manifest_gets == ["/v2/multi/manifests/latest"], seen
    assert not [t for m, t in seen if "/blobs/" in t]  # nothing downloaded
