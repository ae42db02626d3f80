"""Images in a Docker Engine API daemon (``docker-daemon:NAME[:TAG]`` or an image id).

Talks to the daemon through the docker SDK, which honours ``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``
and ``DOCKER_CERT_PATH`` as the docker CLI does (podman's API service works too). The image is
fetched with the daemon's save endpoint and streamed, chunk by chunk, into the same layer walk as
a compressed archive: nothing is held whole in memory or written to disk.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import IO, Any

import docker
import docker.errors
import requests

from layerleak.errors import RegistryError, TargetError
from layerleak.sources.interface import ImageDesc, ImageSource
from layerleak.sources.stream import ChunkStream, TarStreamSource

CONNECT_TIMEOUT = 60  # seconds for each API call; the save stream may take longer in total


def _reason(exc: BaseException) -> str:
    """The most telling cause in an exception chain, in a few words."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _stream_error(exc: Exception) -> OSError:
    return OSError(f"the daemon's save stream broke: {_reason(exc)}")


class DaemonSource(ImageSource):
    streaming = True

    def __init__(self, target: str, name: str) -> None:
        super().__init__(target)
        if not name:
            raise TargetError(f"{target}: give an image name, NAME[:TAG], or an image id")
        self.name = name
        host = os.environ.get("DOCKER_HOST") or "the default socket"
        try:
            self._client: Any = docker.from_env(timeout=CONNECT_TIMEOUT)
        except docker.errors.DockerException as exc:
            raise RegistryError(
                f"{target}: cannot reach the Docker daemon at {host} ({_reason(exc)})"
            ) from None
        try:
            self._client.api.inspect_image(name)
        except docker.errors.ImageNotFound:
            self.close()
            raise TargetError(f"{target}: no image {name!r} in the Docker daemon at {host}") from None
        except (docker.errors.DockerException, requests.RequestException) as exc:
            self.close()
            raise RegistryError(f"{target}: the Docker daemon failed ({_reason(exc)})") from None
        self._archive: TarStreamSource | None = None

    def images(self) -> list[ImageDesc]:
        if self._archive is None:
            raise TargetError(f"{self.target}: the image stream has not been read")
        return self._archive.images()

    def blobs(self, keys: set[str] | None) -> Iterator[tuple[str, IO[bytes]]]:
        try:
            chunks = self._client.api.get_image(self.name)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise RegistryError(
                f"{self.target}: the Docker daemon could not save the image ({_reason(exc)})"
            ) from None
        stream = io.BufferedReader(ChunkStream(chunks, _stream_error), buffer_size=1 << 20)
        self._archive = TarStreamSource(self.target, stream, "docker", None, self.target)
        yield from self._archive.blobs(None)

    def close(self) -> None:
        self._client.close()
