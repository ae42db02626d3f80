"""The HTTP session every registry request travels on: what it takes from the environment, and
what it never does.

``requests`` sessions trust the environment (``trust_env``), which means three things:

1. ``~/.netrc`` (or ``$NETRC``): an entry for a host is sent as Basic auth on *every* request
   without credentials of its own: anonymous registry GETs, a token realm's GET, and the host a
   redirect points at (blob storage). A scanner must not hand a password to whichever host an
   image's registry names, so netrc is **never read**.
2. ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` replacing ``verify``: registry_tls.py decides the
   CA bundle (that order is documented there) and passes it on every request.
3. Proxies: ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` are honoured, for the
   first URL and again for every redirect target (a registry behind NO_PROXY that redirects to
   public object storage goes through the proxy for the storage).

So :class:`RegistrySession` sets ``trust_env = False`` and adds the proxy variables back itself.
Sessions can share one adapter, hence one pool of kept-alive connections, across every repository
of a job (a walk of thousands of repositories opens a few connections, not thousands; each reader
thread has its own session on the shared pool), and may count each request against a
:class:`RequestBudget`.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from layerleak import __version__
from layerleak.errors import RegistryError

POOL = 16  # connections kept per host: the concurrent manifest readers and blob downloads


class BudgetExceeded(RegistryError):
    """The job's request budget is spent."""


class RequestBudget:
    """At most ``limit`` requests (None: no limit), shared by every client of one job."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def spend(self, url: str) -> None:
        with self._lock:
            if self.limit is not None and self.used >= self.limit:
                raise BudgetExceeded(
                    f"request budget of {self.limit} spent (--max-requests): "
                    f"stopped before {urlsplit(url).path}"
                )
            self.used += 1


def env_proxies(url: str) -> dict[str, str]:
    """The proxies the environment names for ``url`` (none when NO_PROXY covers it)."""
    return dict(get_environ_proxies(url))


class RegistrySession(requests.Session):
    """A session that never reads netrc nor the CA-bundle variables, honours the proxy ones,
    and, given a ``budget``, spends one request of it per request sent (redirects included)."""

    def __init__(self, adapter: HTTPAdapter | None = None, budget: RequestBudget | None = None) -> None:
        super().__init__()
        self.trust_env = False
        self.budget = budget
        self.headers["User-Agent"] = f"layerleak/{__version__}"
        if adapter is not None:
            self.mount("https://", adapter)
            self.mount("http://", adapter)

    def merge_environment_settings(
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        merged = dict(proxies or {})
        for scheme, proxy in env_proxies(url).items():
            merged.setdefault(scheme, proxy)
        settings: dict[str, Any] = super().merge_environment_settings(url, merged, stream, verify, cert)
        return settings

    def rebuild_proxies(self, prepared_request: requests.PreparedRequest, proxies: Any) -> dict[str, str]:
        """A redirect: the proxies for the *new* URL, from the session's own and the environment."""
        fresh = {**self.proxies, **env_proxies(prepared_request.url or "")}
        rebuilt: dict[str, str] = super().rebuild_proxies(prepared_request, fresh)
        return rebuilt

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self.budget is not None:
            self.budget.spend(request.url or "")
        return super().send(request, **kwargs)
