"""Session-wide test setup: the fixture images, built once, and the CLI as a user runs it.

The hand-written archives need nothing but Python. The buildah-built "leaky" image needs buildah,
busybox-static and openssl; without them its tests are skipped with the reason in the summary,
except under CI (``CI`` set), where a fixture that cannot be built is an error, never a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import pytest

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"
sys.path.insert(0, str(FIXTURES_DIR))

import build_images  # noqa: E402
import handmade  # noqa: E402
from handmade import Fixture  # noqa: E402

CLI_TIMEOUT_S = 300

# A tiny rule set for unit tests of the walk and the engine, independent of signatures/.
TOKEN_RULE = '''
[[rule]]
id = "test-token"
title = "Test token"
severity = "high"
keywords = ["tkn_"]
regex = \'\'\'(?P<secret>tkn_[A-Za-z0-9]{20})\'\'\'
'''
TOKEN = "tkn_Q7wE9rT2yU4iO6pA8sD1"  # an obvious fake, in the test rule's own format


@dataclass(frozen=True, slots=True)
class Built:
    """Fixtures written into ``outdir``, with what was planted in them."""

    outdir: Path
    fixtures: dict[str, Fixture]

    def path(self, name: str, form: str | None = None) -> Path:
        fixture = self.fixtures[name]
        chosen = fixture.forms[form] if form else next(iter(fixture.forms.values()))
        return self.outdir / chosen.path

    def target(self, name: str, form: str | None = None, *, ref: bool = True) -> str:
        """The scanner's ``transport:path[:ref]`` spelling of one form of a fixture."""
        fixture = self.fixtures[name]
        chosen = fixture.forms[form] if form else next(iter(fixture.forms.values()))
        text = f"{chosen.transport}:{self.outdir / chosen.path}"
        return f"{text}:{chosen.ref}" if ref and chosen.ref else text


def _fail_or_skip(reason: str) -> NoReturn:
    banner = "=" * 20
    message = f"{banner} FIXTURE IMAGES NOT BUILT {banner}\n{reason}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def handmade_images(tmp_path_factory: pytest.TempPathFactory) -> Built:
    outdir = tmp_path_factory.mktemp("handmade")
    fixtures = handmade.build_handmade(outdir)
    build_images.verify_handmade(outdir, fixtures)
    build_images.write_planted(outdir, fixtures)
    return Built(outdir, fixtures)


@pytest.fixture(scope="session")
def leaky_image(tmp_path_factory: pytest.TempPathFactory) -> Built:
    outdir = tmp_path_factory.mktemp("leaky")
    started = time.monotonic()
    try:
        fixture = build_images.build_leaky(outdir)
    except build_images.BuildError as error:
        problem = f"buildah fixture build failed: {error}"
    except (OSError, subprocess.CalledProcessError) as error:
        stderr = getattr(error, "stderr", "") or ""
        problem = f"buildah fixture build failed: {error}\n{stderr[-2000:]}"
    else:
        problem = ""
    if problem:
        _fail_or_skip(problem)
    build_images.write_planted(outdir, {"leaky": fixture})
    print(f"\nleaky fixture image built in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return Built(outdir, {"leaky": fixture})


@dataclass(frozen=True, slots=True)
class CliRun:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        """stdout parsed as the JSON report; a clear failure if it is not JSON."""
        try:
            parsed = json.loads(self.stdout)
        except json.JSONDecodeError as error:
            pytest.fail(
                f"`layerleak {' '.join(self.argv)}` did not print JSON ({error}); exit "
                f"{self.returncode}\nstdout: {self.stdout[:1000]}\nstderr: {self.stderr[-2000:]}",
                pytrace=False,
            )
        assert isinstance(parsed, dict)
        return parsed

    def describe(self) -> str:
        return f"`layerleak {' '.join(self.argv)}` exited {self.returncode}\nstderr: {self.stderr[-2000:]}"


Layerleak = Callable[..., CliRun]


@pytest.fixture(scope="session")
def layerleak(tmp_path_factory: pytest.TempPathFactory) -> Layerleak:
    """Run ``python -m layerleak ARGS...`` as a user would; identical calls run once per session.

    HOME and the XDG directories point into a temporary directory, so no user cache or
    config is read or written.
    """
    home = tmp_path_factory.mktemp("home")
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }

    @cache
    def run(*args: str) -> CliRun:
        done = subprocess.run(
            [sys.executable, "-m", "layerleak", *args],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=CLI_TIMEOUT_S,
        )
        return CliRun(args, done.returncode, done.stdout, done.stderr)

    return run
