"""Images in a registry (``docker://HOST[:PORT]/REPO[:TAG|@DIGEST]``), over the OCI distribution API.

A thin client on ``requests``: manifests (Docker v2 and OCI, manifest lists and OCI indexes,
every platform unless one is asked for), configs, and layer blobs streamed into the layer walk
through a :class:`~layerleak.sources.stream.VerifyingReader`, so a blob that is not what its
digest says becomes that layer's error. Redirects to blob storage are followed (``requests``
drops the Authorization header when the host changes). Requests travel on a
:class:`~layerleak.sources.registry_http.RegistrySession`: never ``~/.netrc``, always the proxy
variables; clients of one registry may share one (its kept-alive connections). TLS is verified against what
registry_tls.py decides, passed as ``verify=`` on every request so the environment cannot
override it; plain HTTP is used only for a loopback registry or with ``--insecure``. 429 and 5xx
answers and dropped connections are retried with backoff; TLS failures are not (they do not heal).
The first request is a probe of ``/v2/`` that is never retried, so a registry that speaks plain
HTTP, or does not listen on HTTPS, is known at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from layerleak.errors import ImageFormatError, LayerleakError, RegistryError, TargetError, UsageError
from layerleak.sources import platforms
from layerleak.sources.annotations import descriptor_texts, finish_index, with_texts
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
    names_listing,
    platform_of,
)
from layerleak.sources.registry_auth import Challenge, Credentials, find_credentials, parse_challenge
from layerleak.sources.registry_http import POOL, RegistrySession, RequestBudget
from layerleak.sources.registry_tls import Trust, TrustStore
from layerleak.sources.stream import MAX_METADATA, BlobError, FailingReader, VerifyingReader

MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
MAX_MANIFEST = 4 * 1024 * 1024  # distribution refuses larger manifests too
TIMEOUT = (15.0, 120.0)  # connect, and between two reads of a response
RETRIES = 4
MAX_DISCARD = 64 * 1024  # an unused answer's body up to this size is read, to keep the connection
MAX_TAGS_SHOWN = 20  # an unknown tag's error lists at most this many of the repository's tags

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


def new_session(budget: RequestBudget | None = None, adapter: HTTPAdapter | None = None) -> RegistrySession:
    """A session with our retry policy (429 and 5xx with ``Retry-After``, dropped connections).
    Sessions given the same ``adapter`` (:func:`retry_adapter`) share its connection pool."""
    return RegistrySession(adapter or retry_adapter(), budget)


def retry_adapter() -> HTTPAdapter:
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
        other=0,  # TLS failures and the like: retrying cannot help, and each retry backs off
    )
    return HTTPAdapter(max_retries=retry, pool_maxsize=POOL)


class RegistryClient:
    """GETs from one repository of one registry, answering auth challenges as they come."""

    def __init__(
        self,
        ref: Reference,
        creds: Credentials | None,
        trust: TrustStore,
        label: str,
        session: RegistrySession | None = None,
    ) -> None:
        """``session`` shares one session (its connection pool) and ``trust`` between clients of
        one registry, e.g. every repository of a walk; the client then closes neither."""
        self.ref = ref
        self.creds = creds
        self.trust = trust
        self.insecure = trust.insecure
        self.label = label
        self.plain_allowed = self.insecure or is_loopback(ref.host)
        self._owner = session is None
        self.session = session if session is not None else new_session()
        # The probe: one attempt says which scheme is spoken. It shares the connection pool, so
        # the connection it opens is the one the manifests and blobs then travel on (keep-alive).
        self._probe_adapter = HTTPAdapter(max_retries=0)
        self._probe_adapter.poolmanager = cast(HTTPAdapter, self.session.get_adapter("https://")).poolmanager
        if self.insecure:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._base: str | None = None
        self._authorization: str | None = None

    # --- transport ---------------------------------------------------------------------------

    def _tls(self, url: str) -> dict[str, Any]:
        """``verify=`` (explicit, so REQUESTS_CA_BUNDLE cannot replace it) and ``cert=`` for ``url``."""
        trust = self._trust(url)
        return {"verify": trust.verify, "cert": trust.cert}

    def _trust(self, url: str) -> Trust:
        host = url.split("/", 3)[2] if "://" in url else self.ref.host
        return self.trust.for_host(host)

    def _tls_failed(self, url: str, exc: BaseException) -> RegistryError:
        host, reason = url.split("/", 3)[2], _short(exc)
        return RegistryError(
            f"{self.label}: TLS failed with {host}: {reason} ({self._trust(url).advice(host, reason)})"
        )

    def _send(
        self, url: str, headers: dict[str, str], stream: bool, method: str = "GET"
    ) -> requests.Response:
        try:
            return self.session.request(
                method, url, headers=headers, stream=stream, timeout=TIMEOUT, **self._tls(url)
            )
        except requests.exceptions.SSLError as exc:
            raise self._tls_failed(url, exc) from None
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
        https, http = f"https://{self.ref.host}", f"http://{self.ref.host}"
        try:
            self._probe(f"{https}/v2/")
            self._base = https
        except requests.exceptions.SSLError as exc:
            if not self.plain_allowed or not _speaks_plain_http(exc):
                raise self._tls_failed(https, exc) from None
            self._base = http
        except requests.RequestException as exc:
            if not self.plain_allowed:
                raise RegistryError(
                    f"{self.label}: cannot reach registry {self.ref.host} ({_short(exc)})"
                ) from None
            try:  # nothing on HTTPS: is anything listening on plain HTTP?
                self._probe(f"{http}/v2/")
            except requests.RequestException:
                raise RegistryError(
                    f"{self.label}: cannot reach registry {self.ref.host} ({_short(exc)})"
                ) from None
            self._base = http
        return self._base

    def _probe(self, url: str) -> None:
        """One GET of ``url`` through the adapter that never retries (any answer will do)."""
        request = self.session.prepare_request(requests.Request("GET", url))
        tls = self._tls(url)
        settings = self.session.merge_environment_settings(url, {}, False, tls["verify"], tls["cert"])
        self._probe_adapter.send(request, timeout=TIMEOUT, **settings).close()

    def get(self, path: str, accept: str | None = None, stream: bool = False) -> requests.Response:
        """GET ``/v2/<repo>/<path>``; a 200 answer or a RegistryError."""
        url = f"{self.base()}/v2/{self.ref.repo}/{path}"
        resp = self._authorized(url, {"Accept": accept} if accept else {}, stream)
        if resp.status_code == 401:
            _discard(resp)
            raise RegistryError(f"{self.label}: {self._denied()}")
        if resp.status_code != 200:
            words = self._status_words(resp, path)
            resp.close()
            raise RegistryError(f"{self.label}: {words}")
        return resp

    def manifest_digest(self, ref: str) -> str | None:
        """The digest the registry names for manifest ``ref`` in answer to a HEAD (its
        ``Docker-Content-Digest``), or None when it names none that reads as a sha256 digest, or
        does not answer 200 (the GET that follows then reports what is wrong). A HEAD is not a
        pull: registries that count pulls against a limit count manifest GETs, not HEADs."""
        url = f"{self.base()}/v2/{self.ref.repo}/manifests/{ref}"
        resp = self._authorized(url, {"Accept": MANIFEST_ACCEPT}, False, "HEAD")
        resp.close()
        digest = resp.headers.get("Docker-Content-Digest", "").strip()
        if resp.status_code != 200 or not _SHA256.fullmatch(digest):
            return None
        return digest

    def _authorized(
        self, url: str, headers: dict[str, str], stream: bool, method: str = "GET"
    ) -> requests.Response:
        """The answer to ``method url``, after answering one auth challenge (a 401) if it came."""
        resp = self._send(url, self._with_auth(headers), stream, method)
        if resp.status_code == 401:
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            _discard(resp)
            self._authenticate(challenge)
            resp = self._send(url, self._with_auth(headers), stream, method)
        return resp

    def _with_auth(self, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, "Authorization": self._authorization} if self._authorization else headers

    def _status_words(self, resp: requests.Response, path: str) -> str:
        what = "manifest" if path.startswith("manifests/") else "blob"
        if resp.status_code == 404 and what == "manifest":
            wanted = path.split("/", 1)[1]
            sep = "@" if wanted.startswith("sha") else ":"
            words = f"no image {self.ref.repo}{sep}{wanted} in {self.ref.host} ({_registry_error(resp)})"
            return words + ("" if sep == "@" else self._tags_words())
        if resp.status_code == 404:
            return f"blob {path.split('/', 1)[1]} not found ({_registry_error(resp)})"
        if resp.status_code == 403:
            return f"access denied to {self.ref.repo} ({_registry_error(resp)})"
        if resp.status_code == 429 or resp.status_code >= 500:
            return f"registry kept failing after {RETRIES} retries ({_registry_error(resp)})"
        return f"unexpected answer to GET {what} ({_registry_error(resp)})"

    def _tags_words(self) -> str:
        """``; its tags: a, b, ...`` from the tag list, best effort (empty if it cannot be read)."""
        try:
            listing = f"tags/list?n={MAX_TAGS_SHOWN + 1}"
            with self.get(listing, accept="application/json", stream=True) as resp:
                body = _read_limited(resp, MAX_MANIFEST, f"{self.label}: tag list")
            tags = json.loads(body).get("tags") or []
        except (LayerleakError, ValueError, UnicodeDecodeError, AttributeError):
            return ""
        if not isinstance(tags, list):
            return ""
        if not tags:
            return f"; {self.ref.repo} has no tags"
        more = ", ..." if len(tags) > MAX_TAGS_SHOWN else ""
        return f"; its tags: {names_listing([str(t) for t in tags[:MAX_TAGS_SHOWN]])}{more}"

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
                resp = self.session.post(realm, data=form, timeout=TIMEOUT, **self._tls(realm))
            else:
                auth = (
                    (creds.username, creds.password) if creds and creds.username and creds.password else None
                )
                resp = self.session.get(realm, params=query, auth=auth, timeout=TIMEOUT, **self._tls(realm))
        except requests.exceptions.SSLError as exc:
            raise self._tls_failed(realm, exc) from None
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

    def after_fork(self) -> None:
        """In a forked worker: new connections. The parent's pool is kept, never used or closed
        here (closing would only close this process's copies of its sockets, but a pool reused
        by two processes would interleave their requests on one connection). Authorization and
        the scheme the probe found are kept: no new token or probe per worker."""
        self._inherited = self.session
        self.session = new_session()  # the trust store (its files) stays the parent's to close
        self._probe_adapter = HTTPAdapter(max_retries=0)
        self._probe_adapter.poolmanager = cast(HTTPAdapter, self.session.get_adapter("https://")).poolmanager

    def close(self) -> None:
        if self._owner:
            self.session.close()
            self.trust.close()


def _read_limited(resp: requests.Response, limit: int, what: str) -> bytes:
    try:
        body = resp.raw.read(limit + 1, decode_content=True)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise RegistryError(f"{what}: download failed ({_short(exc)})") from None
    if len(body) > limit:
        raise ImageFormatError(f"{what} is larger than {limit} bytes")
    return bytes(body)


def _discard(resp: requests.Response) -> None:
    """Close an answer we do not use, reading a small body first so its connection stays open."""
    with contextlib.suppress(requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        resp.raw.read(MAX_DISCARD, decode_content=False)
    resp.close()


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
    parallel_blobs = True  # each blob is its own GET: workers stream several at once

    def __init__(self, target: str, spec: str, options: SourceOptions | None = None) -> None:
        super().__init__(target)
        options = options or SourceOptions()
        self.ref = parse_reference(spec)
        self.platform = options.platform
        try:
            creds = find_credentials(self.ref.host, options.username, options.password)
        except RegistryError as exc:
            raise RegistryError(f"{target}: {exc.message}") from None
        trust = TrustStore(options.insecure, options.ca_file, options.cert_dir, self.ref.host)
        self.client = RegistryClient(self.ref, creds, trust, target)
        self._sizes: dict[str, int | None] = {}
        self._platforms_seen: list[str | None] = []  # every platform the index lists, for errors

    def images(self) -> list[ImageDesc]:
        self._platforms_seen = []
        body, media = self.client.manifest(self.ref.ref)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        images = self._walk(body, media, digest, None, 0)
        if self.platform is not None:
            seen = self._platforms_seen + [i.platform for i in images]
            images = [i for i in images if platforms.matches(i.platform, self.platform)]
            if not images:
                raise TargetError(platforms.no_platform_message(self.target, self.platform, seen))
        for image in images:
            for layer in image.layers:
                self._sizes[layer.key] = layer.size
        return images

    def _walk(
        self, body: bytes, media: str | None, digest: str, platform: str | None, depth: int
    ) -> list[ImageDesc]:
        if depth > MAX_DEPTH:
            raise ImageFormatError(f"{self.target}: image index nesting is too deep")
        doc = json_object(body, f"{self.target}: manifest {digest}")
        media = doc.get("mediaType") or media
        name = str(self.ref)
        if media in INDEX_TYPES or (media is None and "manifests" in doc):
            out: list[ImageDesc] = []
            for child in doc.get("manifests") or []:
                if not isinstance(child, dict) or not isinstance(child.get("digest"), str):
                    raise ImageFormatError(f"{self.target}: index {digest} has a descriptor without digest")
                if is_attestation(child):
                    continue  # read for the images it describes, by finish_index below
                child_platform = platform_of(child.get("platform"))
                if child_platform is not None:
                    self._platforms_seen.append(child_platform)
                if self.platform and child_platform and not platforms.matches(child_platform, self.platform):
                    continue
                child_body, child_media = self.client.manifest(child["digest"])
                media_type = child.get("mediaType") or child_media
                found = self._walk(child_body, media_type, child["digest"], child_platform, depth + 1)
                out.extend(with_texts(found, descriptor_texts(child)))
            return finish_index(out, doc, lambda d: self.client.manifest(d)[0], self.client.small_blob)
        if media in MANIFEST_TYPES or (media is None and "layers" in doc):
            return [image_from_manifest(self._read, doc, digest, name, platform)]
        if doc.get("schemaVersion") == 1:
            raise ImageFormatError(f"{self.target}: schema 1 manifests are not supported")
        return []  # an artifact (signature, SBOM, ...): nothing to scan

    def _read(self, path: str) -> bytes | None:
        return blob_reader(self.client)(path)

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
                reader = VerifyingReader(BlobBody(resp, digest), digest, self._sizes.get(key))
                yield key, cast(IO[bytes], reader)

    def after_fork(self) -> None:
        self.client.after_fork()

    def close(self) -> None:
        self.client.close()


class BlobBody:
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


def blob_reader(client: RegistryClient) -> Callable[[str], bytes | None]:
    """layout.py's reader over a registry: ``blobs/<alg>/<hex>`` -> the blob's bytes (configs),
    checked against its digest."""

    def read(path: str) -> bytes | None:
        parts = path.split("/")
        if len(parts) != 3 or parts[0] != "blobs":
            return None
        return client.small_blob(f"{parts[1]}:{parts[2]}")

    return read


def json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ImageFormatError(f"{what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ImageFormatError(f"{what} is not a JSON object")
    return doc
