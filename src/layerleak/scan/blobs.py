"""One registry layer blob, downloaded and scanned in one go: the unit of work of a fleet job.

A :class:`BlobTask` names a blob by the repository that holds it and its digest. :func:`scan_blob`
streams it through a :class:`~layerleak.sources.stream.VerifyingReader` into the layer walk (never
written to disk; memory is the walk's own bound), so the layer's content key, its verified blob
digest, is what it *is*. Hits are sealed before the result leaves the function: a worker process
or a Dask worker never sends a plaintext secret back.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, cast

from layerleak.errors import LayerleakError
from layerleak.sources.registry_auth import Credentials

if TYPE_CHECKING:  # the scanning half is imported by the task that scans (a rerun never does)
    from layerleak.detect.engine import Engine
    from layerleak.layers.walk import FileHit, LayerScan
    from layerleak.sources.registry import RegistryClient
    from layerleak.sources.registry_http import RegistrySession


def content_key(blob_digest: str) -> str:
    """The results database's key for a registry layer: its blob digest, which every download
    verifies. (When the walk hashes the uncompressed stream, the verified diff_id will be.)"""
    return f"blob:{blob_digest}"


@dataclass(frozen=True, slots=True)
class BlobTask:
    key: str  # content key
    host: str
    repo: str  # a repository that holds the blob
    digest: str
    size: int | None
    insecure: bool = False
    ca_file: str | None = None
    cert_dir: str | None = None
    base: str | None = None  # the registry's base URL, as enumeration found it
    # Local runners pass the job's credentials; a remote Dask worker finds its own (env, docker
    # config) when this is None, so no password travels to the scheduler.
    creds: Credentials | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class LayerOutcome:
    key: str
    scan: LayerScan | None  # hits sealed; None when the blob could not be fetched at all
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.scan is not None and self.scan.error is None


_local = threading.local()


def _client(task: BlobTask) -> RegistryClient:
    """One client per (thread, registry, repository): auth is answered once, then reused. Every
    repository of one registry shares the thread's session for it (kept-alive connections) and
    one trust store."""
    from layerleak.sources.catalog import RepoClient
    from layerleak.sources.registry import new_session
    from layerleak.sources.registry_auth import find_credentials
    from layerleak.sources.registry_tls import TrustStore

    clients: dict[tuple[str, str], RegistryClient] = getattr(_local, "clients", None) or {}
    hosts: dict[tuple[str, bool, str | None, str | None], tuple[RegistrySession, TrustStore]] = (
        getattr(_local, "hosts", None) or {}
    )
    _local.clients, _local.hosts = clients, hosts
    client = clients.get((task.host, task.repo))
    if client is None:
        creds = task.creds if task.creds is not None else find_credentials(task.host, None, None)
        where = (task.host, task.insecure, task.ca_file, task.cert_dir)
        if where not in hosts:
            hosts[where] = (new_session(), TrustStore(task.insecure, task.ca_file, task.cert_dir, task.host))
        session, trust = hosts[where]
        client = RepoClient(task.host, task.repo, creds, trust, task.base, session)
        clients[(task.host, task.repo)] = client
    return client


def scan_blob(task: BlobTask, engine: Engine) -> LayerOutcome:
    from layerleak.layers.walk import scan_layer
    from layerleak.sources.registry import BlobBody
    from layerleak.sources.stream import VerifyingReader

    label = f"{task.host}/{task.repo}@{task.digest}"
    try:
        resp = _client(task).get(f"blobs/{task.digest}", stream=True)
    except LayerleakError as exc:
        return LayerOutcome(task.key, None, exc.diagnostics())
    with resp:
        reader = VerifyingReader(BlobBody(resp, task.digest), task.digest, task.size)
        scan = scan_layer(task.key, cast(IO[bytes], reader), engine)
    scan.hits = [_sealed(h) for h in scan.hits]
    return LayerOutcome(task.key, scan, None if scan.error is None else f"{label}: {scan.error}")


def _sealed(hit: FileHit) -> FileHit:
    from layerleak.store.sealed import SealedMatch, seal

    if isinstance(hit.match, SealedMatch):
        return hit
    return dataclasses.replace(hit, match=seal(hit.match))
