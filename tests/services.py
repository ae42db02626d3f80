"""Real services for the daemon and registry tests, started on loopback and stopped afterwards.

- :func:`start_podman`: podman's Docker Engine API service on a private unix socket, with a
  private vfs storage root (images are put there with ``podman load`` / buildah).
- :func:`start_registry`: Debian's ``docker-registry`` (CNCF distribution) on a free
  127.0.0.1 port, optionally behind TLS with a CA made here and with htpasswd auth.
- :func:`start_postgres`: a throwaway PostgreSQL (initdb/pg_ctl, as `nobody` when root) on a
  free 127.0.0.1 port, for the results-database tests.
- :func:`start_token_registry`: the same registry in token-auth mode, with a tiny bearer-token
  service of our own (a JWT signed by a test CA), so the ``Bearer realm=...`` path runs for real.

A service that cannot start raises :class:`ServiceUnavailable` with the tool's own words; the
tests turn that into a loud skip (or a failure under CI).
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 30


class ServiceUnavailable(RuntimeError):
    """A service could not be started here; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise ServiceUnavailable(f"missing tools: {', '.join(missing)} (apt-get install them)")


def run(*argv: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=600,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv[:3])} ...` failed ({done.returncode}): {done.stderr[-1500:]}")
    return done.stdout


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _log_tail(path: Path) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-10:])
    except OSError:
        return "(no log)"


# --- TLS material -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tls:
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path


def make_tls(workdir: Path) -> Tls:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost, made with openssl."""
    _need("openssl")
    workdir.mkdir(parents=True, exist_ok=True)
    tls = Tls(workdir / "ca.crt", workdir / "ca.key", workdir / "server.crt", workdir / "server.key")
    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=layerleak test CA",
        "-keyout",
        str(tls.ca_key),
        "-out",
        str(tls.ca_cert),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    csr = workdir / "server.csr"
    run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(tls.key),
        "-out",
        str(csr),
    )
    ext = workdir / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(tls.ca_cert),
        "-CAkey",
        str(tls.ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(tls.cert),
    )
    return tls


def make_client_cert(tls: Tls, workdir: Path) -> tuple[Path, Path]:
    """A client certificate (and its key) signed by ``tls``'s CA, for a registry's mutual TLS."""
    cert, key, csr = workdir / "client.cert", workdir / "client.key", workdir / "client.csr"
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=layerleak test client",
        "-keyout", str(key), "-out", str(csr))
    ext = workdir / "client.ext"
    ext.write_text("extendedKeyUsage=clientAuth\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(tls.ca_cert), "-CAkey", str(tls.ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return cert, key


# --- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registry:
    host: str  # 127.0.0.1:PORT
    root: Path  # the registry's storage directory
    tls: Tls | None
    username: str | None
    password: str | None
    cert_dir: Path | None  # for skopeo --dest-cert-dir: holds ca.crt (and client.cert/.key)
    client_cert: tuple[Path, Path] | None = None  # (cert, key) the registry requires (mutual TLS)

    def skopeo_dest(self) -> list[str]:
        flags = (
            ["--dest-tls-verify=true", f"--dest-cert-dir={self.cert_dir}"]
            if self.cert_dir
            else ["--dest-tls-verify=false"]
        )
        if self.username:
            flags.append(f"--dest-creds={self.username}:{self.password}")
        return flags

    def blob_path(self, digest: str) -> Path:
        hexpart = digest.split(":", 1)[1]
        return self.root / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, context: ssl.SSLContext | None) -> None:
    """Until ``url`` answers (a TLS registry that requires client certificates needs ``context``
    to carry one)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceUnavailable(f"docker-registry exited ({proc.returncode}):\n{_log_tail(log)}")
        try:
            urllib.request.urlopen(url, timeout=2, context=context).close()
            return
        except urllib.error.HTTPError:
            return  # 401 is an answer: it is up
        except OSError:
            time.sleep(0.1)
    _stop(proc)
    raise ServiceUnavailable(f"docker-registry did not answer {url} in {START_TIMEOUT_S}s:\n{_log_tail(log)}")


@contextmanager
def start_registry(
    workdir: Path, *, tls: bool, auth: bool, token: dict[str, str] | None = None, client_auth: bool = False
) -> Iterator[Registry]:
    """A docker-registry on 127.0.0.1:<free port>; ``token`` switches it to bearer-token auth;
    ``client_auth`` (with ``tls``) makes it require a client certificate signed by its CA."""
    _need("docker-registry")
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "storage"
    port = free_port()
    material = make_tls(workdir / "tls") if tls else None
    username = password = None
    lines = [
        "version: 0.1",
        "log: {level: warn, accesslog: {disabled: true}}",
        f"storage: {{filesystem: {{rootdirectory: {root}}}, delete: {{enabled: true}}}}",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        f"  secret: {secrets.token_hex(16)}",
    ]
    client = make_client_cert(material, workdir / "tls") if material and client_auth else None
    if material:
        lines += ["  tls:", f"    certificate: {material.cert}", f"    key: {material.key}"]
    if material and client:
        lines += ["    clientcas:", f"      - {material.ca_cert}"]
    if auth:
        _need("htpasswd")
        username, password = "scanner", secrets.token_urlsafe(18)
        htfile = workdir / "htpasswd"
        htfile.write_text(run("htpasswd", "-Bbn", username, password))
        lines += ["auth:", "  htpasswd:", "    realm: layerleak-test", f"    path: {htfile}"]
    elif token:
        lines += ["auth:", "  token:"] + [f"    {k}: {v}" for k, v in token.items()]
    config = workdir / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = workdir / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    cert_dir = None
    context = None
    if material:
        cert_dir = workdir / "certs"
        cert_dir.mkdir(exist_ok=True)
        shutil.copy(material.ca_cert, cert_dir / "ca.crt")
        context = ssl.create_default_context(cafile=str(material.ca_cert))
        if client:
            shutil.copy(client[0], cert_dir / "client.cert")
            shutil.copy(client[1], cert_dir / "client.key")
            context.load_cert_chain(str(client[0]), str(client[1]))
    scheme = "https" if material else "http"
    try:
        _wait_http(f"{scheme}://127.0.0.1:{port}/v2/", proc, log, context)
        yield Registry(f"127.0.0.1:{port}", root, material, username, password, cert_dir, client)
    finally:
        _stop(proc)


# --- a bearer-token service for the registry's token auth --------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class TokenService:
    realm: str
    service: str
    username: str
    password: str
    requests: list[dict[str, str]]  # query of each token request, for assertions


@contextmanager
def start_token_service(workdir: Path) -> Iterator[tuple[TokenService, dict[str, str]]]:
    """A token endpoint (plain HTTP on loopback) that issues RS256 JWTs for one user.

    Yields the service and the registry's ``auth.token`` settings that trust it.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.x509.oid import NameOID

    workdir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "layerleak test token signer")])
    now = time.time()
    import datetime

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime.fromtimestamp(now - 3600, datetime.UTC))
        .not_valid_after(datetime.datetime.fromtimestamp(now + 86400, datetime.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    bundle = workdir / "token-signer.crt"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    der = cert.public_bytes(serialization.Encoding.DER)
    service_name = "layerleak-test-registry"
    issuer = "layerleak-test-issuer"
    username, password = "tokenuser", secrets.token_urlsafe(18)
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            seen.append(query)
            header = self.headers.get("Authorization", "")
            expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
            if header != expected:
                self.send_response(401)
                self.end_headers()
                return
            access = []
            scope = query.get("scope", "")
            if scope.startswith("repository:"):
                _, repo, actions = scope.split(":", 2)
                access.append({"type": "repository", "name": repo, "actions": actions.split(",")})
            claims = {
                "iss": issuer,
                "sub": username,
                "aud": query.get("service", ""),
                "exp": int(time.time()) + 300,
                "nbf": int(time.time()) - 10,
                "iat": int(time.time()),
                "jti": secrets.token_hex(8),
                "access": access,
            }
            head = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
            signing_input = f"{_b64url(json.dumps(head).encode())}.{_b64url(json.dumps(claims).encode())}"
            signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
            body = json.dumps({"token": f"{signing_input}.{_b64url(signature)}", "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    realm = f"http://127.0.0.1:{server.server_address[1]}/token"
    try:
        yield (
            TokenService(realm, service_name, username, password, seen),
            {"realm": realm, "service": service_name, "issuer": issuer, "rootcertbundle": str(bundle)},
        )
    finally:
        server.shutdown()
        server.server_close()


# --- podman's Docker Engine API service -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Podman:
    socket: Path
    root: Path
    runroot: Path

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def cli(self, *args: str) -> str:
        return run(
            "podman",
            "--storage-driver",
            "vfs",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--events-backend",
            "file",
            *args,
        )


@contextmanager
def start_podman(workdir: Path) -> Iterator[Podman]:
    _need("podman")
    workdir.mkdir(parents=True, exist_ok=True)
    podman = Podman(workdir / "api.sock", workdir / "root", workdir / "runroot")
    log = workdir / "podman.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                "podman",
                "--storage-driver",
                "vfs",
                "--root",
                str(podman.root),
                "--runroot",
                str(podman.runroot),
                "--events-backend",
                "file",
                "system",
                "service",
                "--time=0",
                podman.docker_host,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise ServiceUnavailable(
                    f"podman system service exited ({proc.returncode}):\n{_log_tail(log)}"
                )
            if podman.socket.exists() and _ping(podman.socket):
                break
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"podman API did not answer in {START_TIMEOUT_S}s:\n{_log_tail(log)}"
                )
            time.sleep(0.1)
        yield podman
    finally:
        _stop(proc)
        with suppress(RuntimeError, OSError):
            podman.cli("rmi", "--all", "--force")


def _ping(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(path))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            head = s.recv(64)
            return head.startswith(b"HTTP/1.") and b" 200 " in head
    except OSError:
        return False


def env_without_docker() -> dict[str, str]:
    """The environment minus DOCKER_* and LAYERLEAK_* settings that would change the tests."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "LAYERLEAK_"))}


# --- running the CLI as a user would ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, object]:
        parsed = json.loads(self.stdout)
        assert isinstance(parsed, dict)
        return parsed

    def describe(self) -> str:
        return f"exit {self.returncode}\nstdout: {self.stdout[:1500]}\nstderr: {self.stderr[-2500:]}"


def layerleak(*args: str, env: dict[str, str], stdin: str | None = None) -> Run:
    """``python -m layerleak ARGS``; scans run with ``--no-cache`` so every layer is really read
    from the source under test (the layer cache would otherwise answer by diff_id)."""
    import sys

    if args and args[0] == "scan":
        args = ("scan", "--no-cache", *args[1:])
    done = subprocess.run(
        [sys.executable, "-m", "layerleak", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        timeout=300,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def finding_keys(report: dict[str, object]) -> set[tuple[object, ...]]:
    """What must be the same whichever way an image was read."""
    findings = report["findings"]
    assert isinstance(findings, list)
    return {
        (
            f["rule_id"],
            f["source"],
            f["path"],
            f["status"],
            f["layer_index"],
            f["layer_digest"],
            f["key"],
            f["fingerprint"],
        )
        for f in findings
    }


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment with its own HOME (no user docker config), plus ``extra``."""
    env = env_without_docker()
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
        NO_COLOR="1",
        COLUMNS="200",
    )
    env.pop("REQUESTS_CA_BUNDLE", None)
    env.pop("CURL_CA_BUNDLE", None)
    env.update(extra)
    return env


# --- PostgreSQL -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Postgres:
    url: str  # postgresql://USER@127.0.0.1:PORT/DB
    datadir: Path


def _pg_user() -> list[str]:
    """postgres refuses to run as root: as root, run its tools as ``nobody`` (runuser)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        raise ServiceUnavailable("running as root and runuser is missing: postgres cannot start")
    return ["runuser", "-u", "nobody", "--"]


@contextmanager
def start_postgres(workdir: Path, database: str = "layerleak") -> Iterator[Postgres]:
    """A throwaway PostgreSQL (``initdb``/``pg_ctl``) on a free 127.0.0.1 port, trust auth."""
    _need("initdb", "pg_ctl")
    base = Path(_pg_dir(workdir))
    datadir, sockdir, log = base / "data", base / "sock", base / "postgres.log"
    sockdir.mkdir()
    as_user = _pg_user()
    if as_user:
        shutil.chown(base, "nobody")
        shutil.chown(sockdir, "nobody")
    port = free_port()
    try:
        run(*as_user, "initdb", "-D", str(datadir), "-U", "layerleak", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--no-locale")  # fmt: skip
        options = f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        run(*as_user, "pg_ctl", "-D", str(datadir), "-o", options, "-l", str(log), "-w", "-t", "30", "start")
    except RuntimeError as exc:
        raise ServiceUnavailable(f"postgres did not start: {exc}\n{_log_tail(log)}") from None
    try:
        import psycopg

        with psycopg.connect(f"postgresql://layerleak@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database}")
        yield Postgres(f"postgresql://layerleak@127.0.0.1:{port}/{database}", datadir)
    finally:
        with suppress(RuntimeError, subprocess.TimeoutExpired):
            run(*as_user, "pg_ctl", "-D", str(datadir), "-w", "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _pg_dir(workdir: Path) -> str:
    """A fresh directory that ``nobody`` can enter (pytest's tmp dirs are private to root)."""
    import tempfile

    workdir.mkdir(parents=True, exist_ok=True)
    path = tempfile.mkdtemp(prefix="pg-", dir="/tmp")
    os.chmod(path, 0o755)
    return path
