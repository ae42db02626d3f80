"""Ctrl-C and SIGTERM in the middle of a real scan: exit 130 or 143 with one line, no traceback,
no worker left running, and no half-written ``-o`` file (a file that was there stays as it was).

The image is big enough (about 200 MB of text in four layers) that the scan is still running when
the signal is sent; each test waits for a sign that it is mid-scan (worker processes forked, or
the progress bar drawn) instead of for a time, and fails loudly should the scan end first.
"""

from __future__ import annotations

import contextlib
import io
import os
import pty
import select
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import handmade
import pytest
from handmade import LegacyImage, image_config

if TYPE_CHECKING:
    from conftest import Built

LAYERS = 4
LAYER_MIB = 48
WAIT_S = 120  # for the scan to get going, or to end after the signal (a bound, never asserted)
OLD_REPORT = "the report of an earlier run\n"

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")


def _text_layer(seed: int) -> bytes:
    block = os.urandom(3 << 18).hex().encode()[: 1 << 20]  # 1 MiB of hex text, no secret in it
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(LAYER_MIB):
            info = tarfile.TarInfo(f"srv/data{seed}/part{i}.txt")
            info.size = len(block)
            tar.addfile(info, io.BytesIO(block))
    return buf.getvalue()


@pytest.fixture(scope="module")
def big_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    layers = [_text_layer(i) for i in range(LAYERS)]
    config = image_config(layers, [{"created_by": f"COPY data{i} /srv/data{i}"} for i in range(LAYERS)])
    path = tmp_path_factory.mktemp("big") / "big.tar"
    handmade.write_docker_archive(path, [LegacyImage(["big:1"], layers, config)])
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(tmp_path), "LAYERLEAK_CACHE_DIR": str(tmp_path / "cache")}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):  # the process may be gone
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(what: str, proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the scan ended (exit {proc.returncode}) before {what}: make the image bigger")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no sign of {what} within {WAIT_S}s")
        time.sleep(0.05)


def _start(args: list[str], tmp_path: Path, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "layerleak", "scan", *args],
        env=_env(tmp_path), stdin=subprocess.DEVNULL, start_new_session=True, **kwargs,
    )


@pytest.mark.parametrize(
    ("signum", "code", "line", "to_group"),
    [
        (signal.SIGINT, 130, "layerleak: interrupted", True),  # Ctrl-C: the whole process group
        (signal.SIGINT, 130, "layerleak: interrupted", False),  # kill -INT: the scanner alone
        (signal.SIGTERM, 143, "layerleak: terminated", False),
        (signal.SIGTERM, 143, "layerleak: terminated", True),
    ],
)
def test_a_signal_while_workers_scan(
    big_image: Path, tmp_path: Path, signum: int, code: int, line: str, to_group: bool
) -> None:
    report = tmp_path / "report.json"
    report.write_text(OLD_REPORT)
    proc = _start(
        [str(big_image), "--no-cache", "-j", "2", "--format", "json", "-o", str(report)],
        tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    _wait_for("worker processes", proc, lambda: len(_children(proc.pid)) >= 2)
    workers = _children(proc.pid)
    if to_group:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == code, err.decode()
    assert err.decode() == line + "\n", err.decode()
    assert out == b""
    assert not [w for w in workers if _alive(w)], "a worker outlived the scan"
    assert report.read_text() == OLD_REPORT, "the earlier report was overwritten by a partial one"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_sigterm_between_targets_leaves_no_partial_jsonl(
    big_image: Path, handmade_images: Built, tmp_path: Path
) -> None:
    """jsonl is written as each target ends: the first target's record is on disk (in the
    temporary file) when the signal comes during the second; FILE must not appear at all."""
    report = tmp_path / "report.jsonl"
    proc = _start(
        [str(handmade_images.path("opaque")), str(big_image), "--no-cache", "-j", "2",
         "--format", "jsonl", "-o", str(report)],
        tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    partial = lambda: [p for p in tmp_path.iterdir() if p.name.startswith(".report.jsonl")]  # noqa: E731
    _wait_for("the second target's workers", proc, lambda: bool(partial()) and len(_children(proc.pid)) >= 2)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 143 and err.decode() == "layerleak: terminated\n", err.decode()
    assert not report.exists() and not partial()


def test_ctrl_c_while_the_progress_bar_is_drawn(big_image: Path, tmp_path: Path) -> None:
    """One process (-j 1), stderr a terminal: the bar is drawn when Ctrl-C comes."""
    parent, child = pty.openpty()
    proc = _start([str(big_image), "--no-cache", "-j", "1"], tmp_path, stdout=subprocess.PIPE, stderr=child)
    os.close(child)
    drawn = bytearray()

    def bar_drawn() -> bool:
        while select.select([parent], [], [], 0)[0]:
            try:
                chunk = os.read(parent, 65536)
            except OSError:
                return False
            if not chunk:
                return False
            drawn.extend(chunk)
        return b"sha256:" in drawn or b"layer 1" in drawn

    _wait_for("the progress bar", proc, bar_drawn)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=WAIT_S)
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:
            break
        if not chunk:
            break
        drawn.extend(chunk)
    os.close(parent)
    text = drawn.decode("utf-8", "replace")
    assert proc.returncode == 130, text[-2000:]
    assert "Traceback" not in text and text.count("layerleak: interrupted") == 1, text[-2000:]
    assert "Aborted" not in text and out == b""
