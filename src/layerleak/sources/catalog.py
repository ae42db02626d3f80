"""Every image in a registry: ``/v2/_catalog``, each repository's ``tags/list``, every platform.

Both lists are paged as the distribution spec says: ``?n=`` asks for a page size, and the answer's
``Link: <...>; rel="next"`` header names the next page (RFC 5988). Only the path and query of
that link are followed, on the registry itself: a link to another host is never sent our
credentials. Every request counts against a :class:`RequestBudget` (Docker Hub counts manifest
requests against its pull limits); 429 and 5xx answers are retried honouring ``Retry-After`` by the
client underneath (:class:`~layerleak.sources.registry.RegistryClient`, same auth as ``scan``).

Enumeration yields one item at a time: an image to scan (:class:`Found`, with its manifest and
config read), an image the results database already holds complete (:class:`Unchanged`: its
config is not even fetched), or a problem (:class:`Problem`: one line; the walk goes on).
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from layerleak.errors import LayerleakError, RegistryError, UsageError
from layerleak.sources import platforms
from layerleak.sources.attestations import is_attestation
from layerleak.sources.interface import ImageDesc
from layerleak.sources.layout import INDEX_TYPES, MANIFEST_TYPES, image_from_manifest, platform_of
from layerleak.sources.registry import (
    _HOST,
    Reference,
    RegistryClient,
    _registry_error,
    blob_reader,
    json_object,
    new_session,
    retry_adapter,
)
from layerleak.sources.registry_auth import Challenge, Credentials, find_credentials
from layerleak.sources.registry_http import BudgetExceeded, RegistrySession, RequestBudget
from layerleak.sources.registry_tls import TrustStore

__all__ = ["BudgetExceeded", "Catalog", "CatalogOptions", "Found", "Item", "Problem", "RequestBudget",
           "TagPolicy", "Unchanged"]  # fmt: skip

PAGE = 100  # entries asked for per page of _catalog and tags/list
READERS = 8  # repositories read at once (tag lists and manifests are small, latency-bound GETs)
MAX_PAGES = 100_000  # a registry that pages forever is cut here


class RepoClient(RegistryClient):
    """A :class:`RegistryClient` for one repository that can be told the registry's base URL
    (``https://host`` or ``http://host``) found by an earlier client, so that thousands of
    repositories cost one probe, not one each."""

    def __init__(
        self,
        host: str,
        repo: str,
        creds: Credentials | None,
        trust: TrustStore,
        base: str | None = None,
        session: RegistrySession | None = None,
    ) -> None:
        label = f"{host}/{repo}" if repo else host
        super().__init__(Reference(host, repo, None, None), creds, trust, label, session)
        if base is not None:
            self.use_base(base)

    def use_base(self, base: str) -> None:
        self._base = base


class CatalogClient(RepoClient):
    """A :class:`RepoClient` on the walk's shared session (whose requests count against the
    job's budget), with registry-wide GETs. ``basic`` is shared by the walk's clients: a Basic
    Authorization one client answered a challenge with is sent by the next ones at once (Basic
    credentials are registry-wide; a bearer token is scoped to one repository and is not)."""

    def __init__(
        self,
        host: str,
        repo: str,
        creds: Credentials | None,
        trust: TrustStore,
        base: str | None = None,
        session: RegistrySession | None = None,
        basic: list[str] | None = None,
    ) -> None:
        super().__init__(host, repo, creds, trust, base, session)
        self._basic = basic if basic is not None else []
        if self._basic:
            self._authorization = self._basic[0]

    def _authenticate(self, challenge: Challenge | None) -> None:
        super()._authenticate(challenge)
        if challenge is not None and challenge.scheme == "basic" and self._authorization and not self._basic:
            self._basic.append(self._authorization)

    def get_v2(self, path: str) -> requests.Response:
        """GET ``/v2/<path>`` (``_catalog?n=..``, or a ``Link`` target's path and query)."""
        url = f"{self.base()}/v2/{path}"
        resp = self._authorized(url, {"Accept": "application/json"}, False)
        if resp.status_code == 401:
            resp.close()
            raise RegistryError(f"{self.label}: {self._denied()}")
        if resp.status_code != 200:
            what = "the catalog" if path.startswith("_catalog") else "the tag list"
            if resp.status_code == 404:
                words = f"{what} is not there ({_registry_error(resp)})"
            else:
                words = f"cannot list {what} ({_registry_error(resp)})"
            resp.close()
            raise RegistryError(f"{self.label}: {words}")
        return resp


def _next_path(resp: requests.Response) -> str | None:
    """The ``rel="next"`` link's path and query, relative to ``/v2/``; None at the last page."""
    link = resp.links.get("next", {}).get("url")
    if not link:
        return None
    parts = urlsplit(link)
    path = parts.path
    if not path.startswith("/v2/"):
        return None
    return path[len("/v2/") :] + (f"?{parts.query}" if parts.query else "")


def _pages(client: CatalogClient, first: str, field: str) -> Iterator[str]:
    path: str | None = first
    for _ in range(MAX_PAGES):
        if path is None:
            return
        resp = client.get_v2(path)
        with resp:
            try:
                body = resp.json()
            except ValueError:
                raise RegistryError(f"{client.label}: {field} page is not JSON") from None
            names = body.get(field) if isinstance(body, dict) else None
            if names is None:
                names = []
            if not isinstance(names, list):
                raise RegistryError(f"{client.label}: {field} page has no {field} list")
            for name in names:
                if isinstance(name, str):
                    yield name
            path = _next_path(resp)


@dataclass(frozen=True, slots=True)
class TagPolicy:
    """``--tags``: ``latest``, ``all``, or a number N (``latest`` first, then the others newest
    name first: reverse lexical order, which puts 1.10 after 1.9 but is what a tag list offers
    without a manifest request per tag)."""

    mode: str = "latest"
    count: int = 0

    @classmethod
    def parse(cls, text: str) -> TagPolicy:
        if text in ("latest", "all"):
            return cls(text)
        if text.isdigit() and int(text) > 0:
            return cls("count", int(text))
        raise UsageError(f"--tags {text!r}: expected latest, all or a positive number")

    def pick(self, tags: Sequence[str]) -> list[str]:
        unique = sorted(set(tags))
        if self.mode == "all":
            return unique
        ordered = (["latest"] if "latest" in unique else []) + sorted(
            (t for t in unique if t != "latest"), reverse=True
        )
        if self.mode == "latest":
            return ordered[:1] if ordered[:1] == ["latest"] else []
        return ordered[: self.count]


@dataclass(frozen=True, slots=True)
class Found:
    image: ImageDesc
    registry: str
    repo: str
    tag: str
    digest: str  # the image's own manifest digest
    platform: str | None  # as the index names it (None for a single-platform tag)


@dataclass(frozen=True, slots=True)
class Unchanged:
    name: str
    digest: str


@dataclass(frozen=True, slots=True)
class Problem:
    message: str
    fatal: bool = True  # could not be scanned (exit 2); False for a note


Item = Found | Unchanged | Problem
SkipCheck = Callable[[str, str], bool]  # (name, manifest digest) -> already recorded complete


@dataclass(frozen=True, slots=True)
class CatalogOptions:
    repos: tuple[str, ...] = ()  # --repo globs; none: every repository
    tags: TagPolicy = TagPolicy()
    platform: str | None = None
    insecure: bool = False
    max_requests: int | None = None
    ca_file: str | None = None
    cert_dir: str | None = None
    page: int = PAGE  # entries asked for per page (the registry may send fewer)


def parse_host(text: str) -> str:
    host = text.removeprefix("docker://").rstrip("/")
    if not _HOST.fullmatch(host):
        raise UsageError(f"{text}: expected a registry HOST[:PORT]")
    return host


class Catalog:
    """One registry, walked with one set of credentials, one request budget and one connection
    pool (kept-alive connections shared by every repository), ``readers`` repositories at a time."""

    def __init__(
        self,
        host: str,
        options: CatalogOptions,
        username: str | None = None,
        password: str | None = None,
        readers: int = READERS,
    ) -> None:
        self.host = parse_host(host)
        self.options = options
        # a request budget is spent in catalog order, one repository at a time: the images found
        # before it runs out are the first ones, and a rerun with a larger budget goes further
        self.readers = 1 if options.max_requests is not None else max(1, readers)
        self.budget = RequestBudget(options.max_requests)
        self.creds = find_credentials(self.host, username, password)
        self.trust = TrustStore(options.insecure, options.ca_file, options.cert_dir, self.host)
        # One connection pool for the walk; one session on it per reader thread (a requests
        # Session's own state is not meant to be shared between threads).
        self._adapter = retry_adapter()
        self._local = threading.local()
        self._sessions: list[RegistrySession] = []
        self._lock = threading.Lock()
        self._basic: list[str] = []  # the Basic Authorization, once a client was challenged for it
        self.repositories = 0
        self._single: Callable[[str], bool] | None = None
        self.base_url: str | None = None  # https://host or http://host, once a client found it

    def client(self, repo: str) -> CatalogClient:
        client = CatalogClient(
            self.host, repo, self.creds, self.trust, self.base_url, self.session(), self._basic
        )
        if self.base_url is None:
            self.base_url = client.base()
        return client

    def session(self) -> RegistrySession:
        """This thread's session, on the walk's shared connection pool and request budget."""
        session: RegistrySession | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = new_session(self.budget, self._adapter)
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        for session in self._sessions:
            session.close()
        self._adapter.close()
        self.trust.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def repos(self) -> Iterator[str]:
        client = self.client("")
        for repo in _pages(client, f"_catalog?n={self.options.page}", "repositories"):
            if not self.options.repos or any(fnmatch.fnmatchcase(repo, g) for g in self.options.repos):
                yield repo

    def walk(
        self, skip: SkipCheck | None = None, single: Callable[[str], bool] | None = None
    ) -> Iterator[Item]:
        """Every selected image of every selected repository, in catalog order; problems as
        items, never raised. Up to ``readers`` repositories are read at once (tag list and
        manifests; a window of ``2 * readers`` repositories read ahead), all on one session.
        ``single(name)``: a tag recorded before as one image (not an index), whose digest a HEAD
        asks for first: ``skip`` may then answer without a manifest GET."""
        self._single = single
        try:
            repos = list(self.repos())
        except LayerleakError as exc:
            yield Problem(f"{self.host}: {exc.diagnostics().removeprefix(self.host + ': ')}")
            return
        source = iter(repos)
        with ThreadPoolExecutor(self.readers, thread_name_prefix="layerleak-catalog") as pool:
            window: list[Future[tuple[list[Item], bool]]] = []

            def top_up() -> None:
                while len(window) < 2 * self.readers:
                    repo = next(source, None)
                    if repo is None:
                        return
                    window.append(pool.submit(self._read_repo, repo, skip))

            top_up()
            while window:
                items, spent = window.pop(0).result()
                self.repositories += 1
                yield from items
                if spent:  # the budget is spent: what is in flight stops at its next request
                    for fut in window:
                        fut.cancel()
                    return
                top_up()

    def _read_repo(self, repo: str, skip: SkipCheck | None) -> tuple[list[Item], bool]:
        """One repository's items, and whether the request budget ran out while reading it."""
        items: list[Item] = []
        try:
            for item in self._repo(self.client(repo), repo, skip):
                items.append(item)
        except BudgetExceeded as exc:
            return [*items, Problem(exc.diagnostics())], True
        except LayerleakError as exc:
            items.append(Problem(exc.diagnostics()))
        return items, False

    def _repo(self, client: CatalogClient, repo: str, skip: SkipCheck | None) -> Iterator[Item]:
        tags = self.options.tags.pick(list(_pages(client, f"{repo}/tags/list?n={self.options.page}", "tags")))
        if not tags:
            yield Problem(
                f"{self.host}/{repo}: no tag selected by --tags {self.options.tags.mode}", fatal=False
            )
        for tag in tags:
            name = f"{self.host}/{repo}:{tag}"
            try:
                if skip is not None and self._single is not None and self._single(name):
                    # recorded as one image: a HEAD tells whether it still is that one
                    claimed = client.manifest_digest(tag)
                    if claimed is not None and skip(name, claimed):
                        yield Unchanged(name, claimed)
                        continue
                body, media = client.manifest(tag)
                digest = "sha256:" + hashlib.sha256(body).hexdigest()
                yield from self._manifest(client, repo, tag, name, body, media, digest, None, skip)
            except BudgetExceeded:
                raise
            except LayerleakError as exc:
                message = exc.diagnostics()
                yield Problem(message if name in message or repo in message else f"{name}: {message}")

    def _manifest(
        self,
        client: CatalogClient,
        repo: str,
        tag: str,
        name: str,
        body: bytes,
        media: str | None,
        digest: str,
        platform: str | None,
        skip: SkipCheck | None,
    ) -> Iterator[Item]:
        doc = json_object(body, f"{name}: manifest {digest}")
        media = doc.get("mediaType") or media
        if media in INDEX_TYPES or (media is None and "manifests" in doc):
            if platform is not None:
                return  # an index inside an index's platform entry: not an image
            for child in doc.get("manifests") or []:
                if not isinstance(child, dict) or not isinstance(child.get("digest"), str):
                    yield Problem(f"{name}: index {digest} has a descriptor without digest")
                    continue
                if is_attestation(child):
                    continue
                child_platform = platform_of(child.get("platform"))
                wanted = self.options.platform
                if wanted and child_platform and not platforms.matches(child_platform, wanted):
                    continue
                if skip is not None and skip(name, child["digest"]):
                    yield Unchanged(name, child["digest"])
                    continue
                child_body, child_media = client.manifest(child["digest"])
                yield from self._manifest(
                    client,
                    repo,
                    tag,
                    name,
                    child_body,
                    child.get("mediaType") or child_media,
                    child["digest"],
                    child_platform or "",
                    skip,
                )
            return
        if media in MANIFEST_TYPES or (media is None and "layers" in doc):
            if skip is not None and skip(name, digest):
                yield Unchanged(name, digest)
                return
            image = image_from_manifest(blob_reader(client), doc, digest, name, platform or None)
            if self.options.platform and not platforms.matches(image.platform, self.options.platform):
                return
            yield Found(image, self.host, repo, tag, digest, platform or None)
            return
        if doc.get("schemaVersion") == 1:
            yield Problem(f"{name}: schema 1 manifests are not supported")
        # else an artifact (signature, SBOM): nothing to scan
