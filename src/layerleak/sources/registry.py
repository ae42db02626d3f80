"""Images in a registry (``docker://HOST[:PORT]/REPO[:TAG|@DIGEST]``), over the OCI distribution API.

A thin client on ``requests``: manifests (Docker v2 and OCI, manifest lists and OCI indexes,
every platform unless one is asked for), configs, and layer blobs streamed into the layer walk
through a :class:`~layerleak.sources.stream.VerifyingReader`, so a blob that is not what its
digest says becomes that layer's error. Redirects to blob storage are followed (``requests``
drops the Authorization header when the host changes). TLS is verified; plain HTTP is used only
for a loopback registry or with ``--insecure``. 429 and 5xx answers are retried with backoff.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from layerleak import __version__
from layerleak.errors import ImageFormatError, RegistryError, UsageError
from layerleak.sources.annotations import finish_index
from layerleak.sources.attestations import is_attestation
from layerleak.sources.interface import ImageDesc, ImageSource, SourceOptions
from layerleak.sources.layout import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_DEPTH,
    OCI_INDEX,
    OCI_MANIFEST,
    image_from_manifest,
    platform_matches,
    platform_of,
)
from layerleak.sources.registry_auth import Challenge, Credentials, find_credentials, parse_challenge
from layerleak.sources.stream import MAX_METADATA, BlobError, FailingReader, VerifyingReader

MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
MAX_MANIFEST = 4 * 1024 * 1024  # distribution refuses larger manifests too
TIMEOUT = (15.0, 120.0)  # connect, and between two reads of a response
RETRIES = 4
CERT_DIRS = ("/etc/docker/certs.d", "/etc/containers/certs.d", "~/.config/containers/certs.d")

# github.com/distribution/reference, simplified: lower-case path components, tag, digest.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})")
_HOST = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class Reference:
    host: str  # host[:port], as given
    repo: str
    tag: str | None
    digest: str | None

    @property
    def ref(self) -> str:
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        name = f"{self.host}/{self.repo}"
        if self.tag or not self.digest:
            name += f":{self.tag or 'latest'}"
        return name + (f"@{self.digest}" if self.digest else "")


def parse_reference(text: str) -> Reference:
    """``HOST[:PORT]/REPO[:TAG][@DIGEST]``: the host is required (no default registry)."""
    name, _, digest = text.partition("@")
    host, slash, path = name.partition("/")
    usage = f"docker://{text}: expected docker://HOST[:PORT]/REPO[:TAG|@DIGEST]"
    if not slash or not path or not _HOST.fullmatch(host):
        raise UsageError(usage)
    if "." not in host and ":" not in host and host != "localhost":
        raise UsageError(f"docker://{text}: name the registry host first, e.g. docker://HOST/{name}")
    repo, tag = path, None
    if ":" in path.rsplit("/", 1)[-1]:
        repo, _, tag = path.rpartition(":")
        if not _TAG.fullmatch(tag):
            raise UsageError(f"docker://{text}: invalid tag {tag!r}")
    if not _REPO.fullmatch(repo):
        raise UsageError(f"docker://{text}: invalid repository name {repo!r} (lower case, a-z0-9._-/)")
    if digest and not _DIGEST.fullmatch(digest):
        raise UsageError(f"docker://{text}: invalid digest {digest!r}")
    return Reference(host, repo, tag, digest or None)


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _cert_file(host: str) -> str | None:
    """A CA for this registry in the docker / containers ``certs.d`` convention, if any."""
    for base in CERT_DIRS:
        folder = os.path.join(os.path.expanduser(base), host)
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                if name.endswith(".crt"):
                    return os.path.join(folder, name)
    return None


def _registry_error(resp: requests.Response) -> str:
    """The registry's own words (distribution error codes), else the HTTP status."""
    try:
        errors = resp.json().get("errors") or []
        words = "; ".join(
            f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors if isinstance(e, dict)
        )
    except (ValueError, AttributeError, requests.RequestException):
        words = ""
    return f"HTTP {resp.status_code}" + (f" ({words})" if words else "")


class RegistryClient:
    """GETs from one repository of one registry, answering auth challenges as they come."""

    def __init__(self, ref: Reference, creds: Credentials | None, insecure: bool, label: str) -> None:
        self.ref = ref
        self.creds = creds
        self.insecure = insecure
        self.label = label
        self.plain_allowed = insecure or is_loopback(ref.host)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"layerleak/{__version__}"
        retry = Retry(
            total=RETRIES,
            connect=2,
            read=2,
            status=RETRIES,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD", "POST"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        if insecure:
            self.session.verify = False
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        elif (ca := _cert_file(ref.host)) is not None:
            self.session.verify = ca
        self._base: str | None = None
        self._authorization: str | None = None

    # --- transport ---------------------------------------------------------------------------

    def _send(self, url: str, headers: dict[str, str], stream: bool) -> requests.Response:
        try:
            return self.session.get(url, headers=headers, stream=stream, timeout=TIMEOUT)
        except requests.exceptions.SSLError as exc:
            raise RegistryError(f"{self.label}: TLS failed with {self.ref.host}: {_short(exc)}") from None
        except requests.exceptions.RetryError:
            raise RegistryError(
                f"{self.label}: {self.ref.host} kept failing after {RETRIES} retries"
            ) from None
        except requests.RequestException as exc:
            raise RegistryError(
                f"{self.label}: cannot reach registry {self.ref.host} ({_short(exc)})"
            ) from None

    def base(self) -> str:
        """``https://host`` or, where allowed and HTTPS is not spoken there, ``http://host``."""
        if self._base is not None:
            return self._base
        https = f"https://{self.ref.host}"
        try:
            self.session.get(f"{https}/v2/", timeout=TIMEOUT).close()
            self._base = https
        except requests.exceptions.SSLError as exc:
            if not self.plain_allowed or not _speaks_plain_http(exc):
                raise RegistryError(
                    f"{self.label}: TLS failed with {self.ref.host}: {_short(exc)} "
                    "(trust its CA, or --insecure)"
                ) from None
            self._base = f"http://{self.ref.host}"
        except requests.RequestException as exc:
            if not self.plain_allowed:
                raise RegistryError(
                    f"{self.label}: cannot reach registry {self.ref.host} ({_short(exc)})"
                ) from None
            self._base = f"http://{self.ref.host}"
        return self._base

    def get(self, path: str, accept: str | None = None, stream: bool = False) -> requests.Response:
        """GET ``/v2/<repo>/<path>``; a 200 answer or a RegistryError."""
        url = f"{self.base()}/v2/{self.ref.repo}/{path}"
        headers = {"Accept": accept} if accept else {}
        resp = self._send(url, self._with_auth(headers), stream)
        if resp.status_code == 401:
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            resp.close()
            self._authenticate(challenge)
            resp = self._send(url, self._with_auth(headers), stream)
            if resp.status_code == 401:
                resp.close()
                raise RegistryError(f"{self.label}: {self._denied()}")
        if resp.status_code != 200:
            words = self._status_words(resp, path)
            resp.close()
            raise RegistryError(f"{self.label}: {words}")
        return resp

    def _with_auth(self, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, "Authorization": self._authorization} if self._authorization else headers

    def _status_words(self, resp: requests.Response, path: str) -> str:
        what = "manifest" if path.startswith("manifests/") else "blob"
        if resp.status_code == 404 and what == "manifest":
            wanted = path.split("/", 1)[1]
            sep = "@" if wanted.startswith("sha") else ":"
            return f"no image {self.ref.repo}{sep}{wanted} in {self.ref.host} ({_registry_error(resp)})"
        if resp.status_code == 404:
            return f"blob {path.split('/', 1)[1]} not found ({_registry_error(resp)})"
        if resp.status_code == 403:
            return f"access denied to {self.ref.repo} ({_registry_error(resp)})"
        if resp.status_code == 429 or resp.status_code >= 500:
            return f"registry kept failing after {RETRIES} retries ({_registry_error(resp)})"
        return f"unexpected answer to GET {what} ({_registry_error(resp)})"

    def _denied(self) -> str:
        if self.creds is None:
            return (
                f"{self.ref.host} requires authentication: use --username with --password-stdin, "
                "LAYERLEAK_USERNAME/LAYERLEAK_PASSWORD, or docker login"
            )
        return f"authentication failed for {self.ref.host} (credentials from {self.creds.origin} refused)"

    # --- auth --------------------------------------------------------------------------------

    def _authenticate(self, challenge: Challenge | None) -> None:
        if challenge is None:
            raise RegistryError(f"{self.label}: {self.ref.host} answered 401 without a usable challenge")
        if challenge.scheme == "basic":
            if self.creds is None or self.creds.username is None or self.creds.password is None:
                raise RegistryError(f"{self.label}: {self._denied()}")
            self._require_secure_channel(self.base())
            basic = requests.auth._basic_auth_str(self.creds.username, self.creds.password)
            self._authorization = basic
            return
        self._authorization = f"Bearer {self._fetch_token(challenge.params)}"

    def _require_secure_channel(self, url: str) -> None:
        if url.startswith("http://") and not self.plain_allowed:
            raise RegistryError(f"{self.label}: refusing to send credentials over plain HTTP to {url}")

    def _fetch_token(self, params: dict[str, str]) -> str:
        realm = params.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise RegistryError(f"{self.label}: bearer challenge from {self.ref.host} has no realm")
        realm_host = realm.split("/", 3)[2]
        if realm.startswith("http://") and not (self.insecure or is_loopback(realm_host)):
            raise RegistryError(f"{self.label}: refusing a plain-HTTP token realm {realm}")
        scope = params.get("scope") or f"repository:{self.ref.repo}:pull"
        query = {"scope": scope, **({"service": params["service"]} if "service" in params else {})}
        creds = self.creds
        try:
            if creds is not None and creds.identity_token:
                form = {
                    **query,
                    "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token,
                    "client_id": "layerleak",
                }
                resp = self.session.post(realm, data=form, timeout=TIMEOUT)
            else:
                auth = (
                    (creds.username, creds.password) if creds and creds.username and creds.password else None
                )
                resp = self.session.get(realm, params=query, auth=auth, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise RegistryError(f"{self.label}: cannot get a token from {realm} ({_short(exc)})") from None
        if resp.status_code in (401, 403):
            raise RegistryError(f"{self.label}: {self._denied()}")
        if resp.status_code != 200:
            raise RegistryError(f"{self.label}: token service {realm} answered {_registry_error(resp)}")
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{self.label}: token service {realm} gave no token")
        return token

    # --- content -----------------------------------------------------------------------------

    def manifest(self, ref: str) -> tuple[bytes, str | None]:
        resp = self.get(f"manifests/{ref}", accept=MANIFEST_ACCEPT, stream=True)
        with resp:
            body = _read_limited(resp, MAX_MANIFEST, f"{self.label}: manifest {ref}")
            media = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
        if ref.startswith("sha"):
            _check_digest(body, ref, f"{self.label}: manifest")
        return body, media

    def small_blob(self, digest: str) -> bytes:
        with self.get(f"blobs/{digest}", stream=True) as resp:
            body = _read_limited(resp, MAX_METADATA, f"{self.label}: blob {digest}")
        _check_digest(body, digest, f"{self.label}: blob")
        return body

    def close(self) -> None:
        self.session.close()


def _read_limited(resp: requests.Response, limit: int, what: str) -> bytes:
    try:
        body = resp.raw.read(limit + 1, decode_content=True)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise RegistryError(f"{what}: download failed ({_short(exc)})") from None
    if len(body) > limit:
        raise ImageFormatError(f"{what} is larger than {limit} bytes")
    return bytes(body)


def _check_digest(body: bytes, digest: str, what: str) -> None:
    algo, _, expected = digest.partition(":")
    if algo not in ("sha256", "sha512") or hashlib.new(algo, body).hexdigest() != expected:
        raise ImageFormatError(f"{what} {digest} does not match its digest")


def _speaks_plain_http(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "wrong version number" in text or "record layer failure" in text or "http request" in text


def _short(exc: BaseException) -> str:
    """A transport error in a few words (requests nests urllib3's in long reprs)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror and not isinstance(seen, requests.RequestException):
            return seen.strerror
        nxt = seen.__cause__ or seen.__context__
        if nxt is None and seen.args and isinstance(seen.args[0], BaseException):
            nxt = seen.args[0]
        seen = nxt
    text = str(exc)
    for marker in ("Caused by ", "reason: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    text = re.sub(r"<urllib3[^>]*>: ", "", text).strip("()'\" ")
    return text[:200] or type(exc).__name__


class RegistrySource(ImageSource):
    """Every image (one per platform) that a registry reference names."""

    verifies_blobs = True

    def __init__(self, target: str, spec: str, options: SourceOptions | None = None) -> None:
        super().__init__(target)
        options = options or SourceOptions()
        self.ref = parse_reference(spec)
        self.platform = options.platform
        try:
            creds = find_credentials(self.ref.host, options.username, options.password)
        except RegistryError as exc:
            raise RegistryError(f"{target}: {exc.message}") from None
        self.client = RegistryClient(self.ref, creds, options.insecure, target)
        self._sizes: dict[str, int | None] = {}

    def images(self) -> list[ImageDesc]:
        body, media = self.client.manifest(self.ref.ref)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        images = self._walk(body, media, digest, None, 0)
        for image in images:
            for layer in image.layers:
                self._sizes[layer.key] = layer.size
        return images

    def _walk(
        self, body: bytes, media: str | None, digest: str, platform: str | None, depth: int
    ) -> list[ImageDesc]:
        if depth > MAX_DEPTH:
            raise ImageFormatError(f"{self.target}: image index nesting is too deep")
        doc = _json(body, f"{self.target}: manifest {digest}")
        media = doc.get("mediaType") or media
        name = str(self.ref)
        if media in INDEX_TYPES or (media is None and "manifests" in doc):
            children: list[tuple[dict[str, Any], list[ImageDesc]]] = []
            for child in doc.get("manifests") or []:
                if not isinstance(child, dict) or not isinstance(child.get("digest"), str):
                    raise ImageFormatError(f"{self.target}: index {digest} has a descriptor without digest")
                if is_attestation(child):
                    continue  # read for the images it describes, by finish_index below
                child_platform = platform_of(child.get("platform"))
                if self.platform and child_platform and not platform_matches(child_platform, self.platform):
                    continue
                child_body, child_media = self.client.manifest(child["digest"])
                media_type = child.get("mediaType") or child_media
                found = self._walk(child_body, media_type, child["digest"], child_platform, depth + 1)
                children.append((child, found))
            return finish_index(children, doc, lambda d: self.client.manifest(d)[0], self.client.small_blob)
        if media in MANIFEST_TYPES or (media is None and "layers" in doc):
            return [image_from_manifest(self._read, doc, digest, name, platform)]
        if doc.get("schemaVersion") == 1:
            raise ImageFormatError(f"{self.target}: schema 1 manifests are not supported")
        return []  # an artifact (signature, SBOM, ...): nothing to scan

    def _read(self, path: str) -> bytes | None:
        """layout.py's reader: ``blobs/<alg>/<hex>`` -> the blob's bytes (configs)."""
        parts = path.split("/")
        if len(parts) != 3 or parts[0] != "blobs":
            return None
        return self.client.small_blob(f"{parts[1]}:{parts[2]}")

    def blobs(self, keys: set[str] | None) -> Iterator[tuple[str, IO[bytes]]]:
        for key in sorted(keys or ()):
            parts = key.split("/")
            if len(parts) != 3 or parts[0] != "blobs":
                continue
            digest = f"{parts[1]}:{parts[2]}"
            try:
                resp = self.client.get(f"blobs/{digest}", stream=True)
            except RegistryError as exc:
                # That layer's error; the other layers are still scanned.
                failing = FailingReader(exc.message.removeprefix(f"{self.target}: "))
                yield key, cast(IO[bytes], failing)
                continue
            with resp:
                reader = VerifyingReader(_RawReader(resp, digest), digest, self._sizes.get(key))
                yield key, cast(IO[bytes], reader)

    def close(self) -> None:
        self.client.close()


class _RawReader:
    """A blob response body as a plain stream; transport failures become BlobError."""

    def __init__(self, resp: requests.Response, digest: str) -> None:
        self._resp = resp
        self._digest = digest
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._resp.raw.read(None if n < 0 else n, decode_content=False)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise BlobError(
                f"blob {self._digest} download failed after {self.count} bytes ({_short(exc)})"
            ) from None
        self.count += len(data)
        return bytes(data)

    def close(self) -> None:
        self._resp.close()


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ImageFormatError(f"{what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ImageFormatError(f"{what} is not a JSON object")
    return doc
