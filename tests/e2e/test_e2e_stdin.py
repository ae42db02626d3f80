"""Streamed input: ``docker save x | layerleak scan -`` (or ``docker-archive:/dev/stdin``, or a
FIFO), plain or gzip'd, through real pipes. The report is the one the same archive gives as a
file; a stream that is empty, not an archive or cut short is one line and exit 2."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Built

TIMEOUT_S = 300


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(tmp_path), "LAYERLEAK_CACHE_DIR": str(tmp_path / "cache")}


def _scan(
    args: list[str], env: dict[str, str], stdin: IO[bytes] | int | None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerleak", "scan", *args, "--no-progress"],
        stdin=stdin, capture_output=True, text=True, env=env, timeout=TIMEOUT_S,
    )


def _findings(stdout: str) -> list[tuple[Any, ...]]:
    report = json.loads(stdout)
    return sorted((f["rule_id"], f["path"], f["fingerprint"], f["status"]) for f in report["findings"])


def _piped(producer: list[str], args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``producer | layerleak scan ARGS``: a real pipe between two processes."""
    feed = subprocess.Popen(producer, stdout=subprocess.PIPE)
    try:
        return _scan(args, env, feed.stdout)
    finally:
        assert feed.stdout is not None
        feed.stdout.close()
        feed.wait(TIMEOUT_S)


@pytest.mark.parametrize("name", ["opaque", "docker25", "multi"])
def test_stdin_gives_the_report_of_the_file(handmade_images: Built, tmp_path: Path, name: str) -> None:
    archive = handmade_images.path(name)
    env = _env(tmp_path)
    expected = _scan([str(archive), "--format", "json"], env, subprocess.DEVNULL)
    assert expected.returncode == 1 and _findings(expected.stdout), expected.stderr
    cat, gz, js = ["cat", str(archive)], ["gzip", "-c", str(archive)], ["--format", "json"]
    runs = {
        "- < file": _scan(["-", *js], env, archive.open("rb")),
        "docker-archive:- < file": _scan(["docker-archive:-", *js], env, archive.open("rb")),
        "cat | /dev/stdin": _piped(cat, ["docker-archive:/dev/stdin", *js], env),
        "cat | -": _piped(cat, ["-", *js], env),
        "gzip -c | -": _piped(gz, ["docker-archive:-", *js], env),
    }
    for how, run in runs.items():
        assert run.returncode == 1, f"{how}: exit {run.returncode}\n{run.stderr}"
        assert "Traceback" not in run.stderr, f"{how}: {run.stderr}"
        assert _findings(run.stdout) == _findings(expected.stdout), how


def test_a_fifo_is_streamed(handmade_images: Built, tmp_path: Path) -> None:
    archive = handmade_images.path("opaque")
    expected = _findings(_scan([str(archive), "--format", "json"], _env(tmp_path), subprocess.DEVNULL).stdout)
    for i, spelling in enumerate(["{}", "docker-archive:{}"]):
        fifo = tmp_path / f"image{i}.fifo"
        os.mkfifo(fifo)
        data = gzip.compress(archive.read_bytes()) if i else archive.read_bytes()

        def feed(path: Path = fifo, payload: bytes = data) -> None:
            with path.open("wb") as f:
                f.write(payload)

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        run = _scan([spelling.format(fifo), "--format", "json"], _env(tmp_path), subprocess.DEVNULL)
        writer.join(TIMEOUT_S)
        assert run.returncode == 1, run.stderr
        assert _findings(run.stdout) == expected


@pytest.mark.parametrize(
    ("what", "data"),
    [("empty", b""), ("not an archive", b"hello, this is no image\n" * 100), ("cut short", None)],
)
def test_a_bad_stream_is_one_line_and_exit_2(
    handmade_images: Built, tmp_path: Path, what: str, data: bytes | None
) -> None:
    if data is None:
        data = handmade_images.path("opaque").read_bytes()[:3000]
    source = tmp_path / "stream"
    source.write_bytes(data)
    for args in (["-"], ["docker-archive:/dev/stdin"]):
        run = _piped(["cat", str(source)], [*args, "--format", "json"], _env(tmp_path))
        errors = [line for line in run.stderr.splitlines() if line.startswith("layerleak: error:")]
        assert run.returncode == 2, f"{what}: exit {run.returncode}\n{run.stderr}"
        assert len(errors) == 1 and "Traceback" not in run.stderr, run.stderr
        assert json.loads(run.stdout)["targets"][0]["image"] is None  # reported, as a target that failed


def test_password_stdin_cannot_share_stdin_with_the_archive(handmade_images: Built, tmp_path: Path) -> None:
    run = _scan(["-", "--password-stdin"], _env(tmp_path), handmade_images.path("opaque").open("rb"))
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "--password-stdin" in run.stderr
