"""Which certificates a registry connection trusts, decided by us and not by the environment.

``requests`` replaces a session's ``verify`` with ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``
whenever the value it is given is ``True`` or unset, which silently undid ``--insecure`` and
certs.d CAs. So every request is sent with an explicit ``verify=`` from :meth:`TrustStore.for_host`,
chosen in this order, first match wins:

1. ``--insecure``: no verification (and plain HTTP allowed, see registry.py).
2. ``--ca-file PATH``: that PEM file's CAs.
3. ``--cert-dir DIR``: the ``*.crt`` files in DIR (skopeo's option of that name).
4. The containers / docker convention ``certs.d/HOST[:PORT]/*.crt``, looked up in
   ``$XDG_CONFIG_HOME/containers/certs.d`` (else ``~/.config/...``), ``/etc/containers/certs.d``
   and ``/etc/docker/certs.d``, the first holding a directory for the host
   (``LAYERLEAK_CERTS_D``, a ``:``-separated list of roots, replaces that list).
5. ``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``, then the default CA bundle (certifi).

The CAs of 2-4 are added to the bundle that 5 would use (as docker and podman add certs.d CAs to
the system pool), so a registry that redirects blob downloads to public object storage still
works. That combined bundle is written once per client to a private (0700) temporary directory.

A client certificate for registries that ask for one (mutual TLS) is, whatever the CA choice,
a ``NAME.cert`` with its ``NAME.key`` in ``--cert-dir`` (for the registry's own host), else in the
host's certs.d directory: the docker convention is ``client.cert`` and ``client.key``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass

from requests.utils import DEFAULT_CA_BUNDLE_PATH

from layerleak.errors import UsageError

CERTS_D_ENV = "LAYERLEAK_CERTS_D"
BUNDLE_ENVS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
MAX_CA_FILE = 4 * 1024 * 1024


def certs_d_roots() -> list[str]:
    override = os.environ.get(CERTS_D_ENV)
    if override is not None:
        return [p for p in override.split(os.pathsep) if p]
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return [
        os.path.join(config_home, "containers", "certs.d"),
        "/etc/containers/certs.d",
        "/etc/docker/certs.d",
    ]


def _crt_files(folder: str, suffix: str = ".crt") -> list[str]:
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if n.endswith(suffix)]


def client_pair(folder: str) -> tuple[str, str] | None:
    """The first ``NAME.cert`` and its ``NAME.key`` in ``folder`` (a key is required)."""
    for cert in _crt_files(folder, ".cert"):
        key = cert.removesuffix(".cert") + ".key"
        if not os.path.isfile(key):
            raise UsageError(f"client certificate {cert} has no key {os.path.basename(key)} beside it")
        return cert, key
    return None


def certs_d_dir(host: str) -> str | None:
    """The certs.d directory for ``host`` (``HOST[:PORT]`` as written in the reference), if any."""
    for root in certs_d_roots():
        folder = os.path.join(root, host)
        if os.path.isdir(folder):
            return folder
    return None


def env_bundle() -> tuple[str, str] | None:
    """(variable, path) of the CA bundle the environment names, as requests would pick it."""
    for name in BUNDLE_ENVS:
        value = os.environ.get(name)
        if value:
            return name, value
    return None


@dataclass(frozen=True, slots=True)
class Trust:
    """What one host's connections verify against, and the words that say so in an error."""

    verify: bool | str  # False, or a CA bundle file (never True: the environment would win)
    origin: str  # "--insecure", "--ca-file /x.pem", "certs.d /etc/docker/certs.d/h:5000", ...
    explicit: bool  # chosen on the command line or in certs.d (not the environment's default)
    cert: tuple[str, str] | None = None  # client certificate and key, for mutual TLS

    def advice(self, host: str, reason: str = "certificate verify failed") -> str:
        """What to try after a TLS failure (``reason``, OpenSSL's words), worded from what is
        configured."""
        words = reason.lower()
        if "alert" in words and "certificate" in words:  # the server refused our certificate
            if self.cert is not None:
                return f"{host} refused the client certificate {self.cert[0]}"
            return (
                f"{host} asks for a client certificate: put client.cert and client.key in "
                f"certs.d/{host}/, or in a --cert-dir DIR"
            )
        if self.verify is False:
            return "certificate checks are off (--insecure): the TLS handshake itself failed"
        if "verify failed" not in words:
            return f"the TLS handshake failed; certificates are checked with {self.origin}"
        if self.explicit:
            return (
                f"verified with the CAs of {self.origin} and the default bundle: is that the CA "
                f"that signed {host}'s certificate?"
            )
        return (
            f"verified with {self.origin}: trust {host}'s CA with --ca-file PATH or "
            f"certs.d/{host}/ca.crt, or turn verification off with --insecure"
        )


def _read_pem(path: str, origin: str) -> bytes:
    """A PEM file's bytes; ``origin`` says in an error where the file was named."""
    where = path if origin.endswith(path) else f"{path} (from {origin})"
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CA_FILE + 1)
    except OSError as exc:
        raise UsageError(f"CA file {where}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_CA_FILE or b"-----BEGIN CERTIFICATE-----" not in data:
        raise UsageError(f"CA file {where}: not a PEM certificate file (at most {MAX_CA_FILE} bytes)")
    return data


class TrustStore:
    """Trust for each host a client talks to (the registry, its token realm, blob storage)."""

    def __init__(
        self,
        insecure: bool,
        ca_file: str | None = None,
        cert_dir: str | None = None,
        registry_host: str | None = None,
    ) -> None:
        self.insecure = insecure
        self.ca_file = ca_file
        self.cert_dir = cert_dir
        self.registry_host = registry_host  # --cert-dir's client certificate goes to this host only
        self._hosts: dict[str, Trust] = {}
        self._tmp: str | None = None
        if cert_dir is not None and not _crt_files(cert_dir) and not _crt_files(cert_dir, ".cert"):
            raise UsageError(f"--cert-dir {cert_dir}: no *.crt (CA) or *.cert (client) file in it")

    def for_host(self, host: str) -> Trust:
        trust = self._hosts.get(host)
        if trust is None:
            trust = self._decide(host)
            pair = self._client_cert(host)
            if pair is not None:
                trust = Trust(trust.verify, trust.origin, trust.explicit, pair)
            self._hosts[host] = trust
        return trust

    def _client_cert(self, host: str) -> tuple[str, str] | None:
        if self.cert_dir is not None and host == self.registry_host:
            pair = client_pair(self.cert_dir)
            if pair is not None:
                return pair
        folder = certs_d_dir(host)
        return client_pair(folder) if folder is not None else None

    def _decide(self, host: str) -> Trust:
        if self.insecure:
            return Trust(False, "--insecure", True)
        if self.ca_file is not None:
            return self._with_cas([self.ca_file], f"--ca-file {self.ca_file}")
        if self.cert_dir is not None and (files := _crt_files(self.cert_dir)):
            return self._with_cas(files, f"--cert-dir {self.cert_dir}")
        folder = certs_d_dir(host)
        if folder is not None and (files := _crt_files(folder)):
            return self._with_cas(files, f"certs.d {folder}")
        return self._default()

    def _default(self) -> Trust:
        named = env_bundle()
        if named is not None:
            return Trust(named[1], f"{named[0]}={named[1]}", False)
        return Trust(DEFAULT_CA_BUNDLE_PATH, "the default CA bundle", False)

    def _with_cas(self, files: list[str], origin: str) -> Trust:
        named = env_bundle()
        if named is not None and os.path.isfile(named[1]):
            parts = [_read_pem(named[1], named[0])]
        else:  # unset, or a directory of hashed CA names (which cannot be merged): the default
            parts = [_read_pem(DEFAULT_CA_BUNDLE_PATH, "the default CA bundle")]
        parts += [_read_pem(f, origin) for f in files]
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="layerleak-ca-")  # 0700
        bundle = os.path.join(self._tmp, f"bundle-{len(os.listdir(self._tmp))}.pem")
        fd = os.open(bundle, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(b"\n".join(parts) + b"\n")
        return Trust(bundle, origin, True)

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._hosts.clear()
