"""Scanning images in a Docker Engine API daemon: podman's API service, started by the tests.

The buildah-built leaky image is loaded into the service's own vfs storage; the scan goes through
``DOCKER_HOST=unix://SOCK layerleak scan docker-daemon:NAME`` exactly as a user would, and must
report what the saved docker-archive of the same image reports.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import services
from services import Podman, ServiceUnavailable, finding_keys, layerleak, user_env

if TYPE_CHECKING:
    from conftest import Built

pytestmark = [pytest.mark.service, pytest.mark.builder]

NAME = "localhost/leaky:latest"


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory, leaky_image: Built) -> Iterator[Podman]:
    try:
        with services.start_podman(tmp_path_factory.mktemp("podman")) as service:
            service.cli("load", "--quiet", "--input", str(leaky_image.path("leaky", "docker-archive")))
            yield service
    except ServiceUnavailable as exc:
        message = f"{'=' * 20} PODMAN API NOT STARTED {'=' * 20}\n{exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def scan(podman: Podman, home: Path, *args: str) -> services.Run:
    env = user_env(home, DOCKER_HOST=podman.docker_host)
    return layerleak("scan", "--no-progress", "--format", "json", *args, env=env)


def test_daemon_matches_saved_tar(podman: Podman, leaky_image: Built, tmp_path: Path) -> None:
    saved = layerleak(
        "scan", "--no-progress", "--format", "json",
        f"docker-archive:{leaky_image.path('leaky', 'docker-archive')}", env=user_env(tmp_path),
    )  # fmt: skip
    assert saved.returncode == 1, saved.describe()
    run = scan(podman, tmp_path, f"docker-daemon:{NAME}")
    assert run.returncode == 1, run.describe()
    assert len(finding_keys(saved.report)) >= 8
    assert finding_keys(run.report) == finding_keys(saved.report)
    (image,) = run.report["targets"]  # type: ignore[misc]
    assert image["image"] == NAME
    assert image["image_id"] == leaky_image.fixtures["leaky"].expect["image_id"]


def test_daemon_by_image_id(podman: Podman, leaky_image: Built, tmp_path: Path) -> None:
    image_id = leaky_image.fixtures["leaky"].expect["image_id"]
    run = scan(podman, tmp_path, f"docker-daemon:{image_id}")
    assert run.returncode == 1, run.describe()
    assert len(run.report["findings"]) >= 8  # type: ignore[arg-type]


def _one_error_line(run: services.Run, *words: str) -> None:
    assert run.returncode == 2, run.describe()
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("layerleak: error:")]
    assert len(lines) == 1, run.describe()
    for word in words:
        assert word in lines[0], run.describe()


def test_unknown_image(podman: Podman, tmp_path: Path) -> None:
    run = scan(podman, tmp_path, "docker-daemon:localhost/nope:latest")
    _one_error_line(run, "docker-daemon:localhost/nope:latest", "no image")


def test_daemon_down(tmp_path: Path) -> None:
    env = user_env(tmp_path, DOCKER_HOST=f"unix://{tmp_path}/no.sock")
    run = layerleak("scan", "--no-progress", "docker-daemon:leaky:latest", env=env)
    _one_error_line(run, "docker-daemon:leaky:latest", "cannot reach the Docker daemon", "no.sock")
