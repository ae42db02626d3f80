"""Registry credentials and authentication challenges.

Where credentials come from, first match wins: ``--username`` with ``--password-stdin``, then
``LAYERLEAK_USERNAME`` / ``LAYERLEAK_PASSWORD``, then the docker CLI's ``config.json`` (found as
the docker CLI finds it: ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``), whose
``auths`` entries and ``credHelpers`` / ``credsStore`` helpers are read by the docker SDK's own
``docker.auth`` (the same code ``docker-py`` uses to push and pull), then anonymous.

Challenges (``WWW-Authenticate``) follow RFC 7235 and the distribution token spec: ``Basic`` is
answered with the credentials, ``Bearer realm=...,service=...,scope=...`` by fetching a token
from the realm (HTTP basic auth with the credentials, or an OAuth2 refresh-token grant for an
identity token).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from layerleak.errors import RegistryError

ENV_USERNAME = "LAYERLEAK_USERNAME"
ENV_PASSWORD = "LAYERLEAK_PASSWORD"

_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password, or an identity (refresh) token. Never printed."""

    origin: str  # where they came from, for error messages: "--username", "config.json", ...
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """The first Basic or Bearer challenge in a ``WWW-Authenticate`` header."""
    for match in re.finditer(r"(?:^|,)\s*(Basic|Bearer)\b", header, re.IGNORECASE):
        rest = header[match.end() :]
        nxt = re.search(r",\s*[A-Za-z][A-Za-z0-9_-]*\s+[A-Za-z0-9_-]+\s*=", rest)
        body = rest[: nxt.start()] if nxt else rest
        params = {
            m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).replace('\\"', '"')
            for m in _PARAM.finditer(body)
        }
        return Challenge(match.group(1).lower(), params)
    return None


def find_credentials(registry: str, username: str | None, password: str | None) -> Credentials | None:
    """Credentials for ``registry`` (``host[:port]``), or None for anonymous access."""
    env_user, env_password = os.environ.get(ENV_USERNAME), os.environ.get(ENV_PASSWORD)
    user = username or env_user
    secret = password if password is not None else env_password
    if user or secret is not None:
        if not user:
            raise RegistryError(f"a registry password needs --username (or {ENV_USERNAME})")
        if secret is None:
            raise RegistryError(f"--username needs a password: --password-stdin (or {ENV_PASSWORD})")
        origin = "--password-stdin" if password is not None else ENV_PASSWORD
        return Credentials(origin, user, secret)
    return _docker_config_credentials(registry)


def _docker_config_exists() -> bool:
    """Whether the docker SDK would find a config file (the paths its ``find_config_file`` tries),
    asked without importing the SDK, which costs a fifth of a second at every start-up."""
    home = os.path.expanduser("~")
    env = os.environ.get("DOCKER_CONFIG")
    paths = [
        os.path.join(env, "config.json") if env else None,
        os.path.join(home, ".docker", "config.json"),
        os.path.join(home, ".dockercfg"),
    ]
    return any(p is not None and os.path.exists(p) for p in paths)


def _docker_config_credentials(registry: str) -> Credentials | None:
    if not _docker_config_exists():
        return None
    import docker.auth
    import docker.errors

    try:
        config = docker.auth.load_config()
        entry = config.resolve_authconfig(registry)
    except docker.errors.DockerException as exc:
        # A credential helper failed; its message names the helper, never the secret.
        raise RegistryError(f"docker config.json credentials for {registry}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read docker config.json: {exc}") from None
    if not entry:
        return None
    origin = "docker config.json"
    if entry.get("IdentityToken"):
        return Credentials(origin, entry.get("Username"), None, str(entry["IdentityToken"]))
    # config.json ``auths`` entries come back with lower-case keys, helpers' with capitalised ones.
    user = entry.get("Username") or entry.get("username")
    secret = entry.get("Password") if entry.get("Password") is not None else entry.get("password")
    if user and secret is not None:
        return Credentials(origin, str(user), str(secret))
    return None
