"""--timeout and SIGTERM, as a user meets them: a target that never delivers a byte (a FIFO
nobody writes to) beside a good one.

- With ``--timeout``, the stuck target is one error line and the good one is still reported.
- SIGTERM while stuck: exit 143, no ``-o`` file (not even a partial one), and the layer cache
  the good target wrote is intact (SQLite's integrity check) and used by the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import hostile

WAIT_S = 120  # for a busy machine: these wait on events, never on a guessed duration


def _images(tmp_path: Path) -> tuple[str, str, str]:
    token = hostile.fast_pat()
    good = tmp_path / "good.tar"
    good.write_bytes(hostile.docker_archive([hostile.secret_layer(token)]).bytes())
    fifo = tmp_path / "stuck.tar"
    os.mkfifo(fifo)
    return token, f"docker-archive:{good}", f"docker-archive:{fifo}"


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(f"layerleak:v1:{hostile.SECRET_RULE}:{secret}".encode()).hexdigest()[:32]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "LAYERLEAK_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path)}


def test_timeout_stops_a_stuck_target_and_the_next_is_scanned(tmp_path: Path) -> None:
    token, good, stuck = _images(tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "layerleak",
            "scan",
            stuck,
            good,
            "--timeout",
            "2",
            "--format",
            "json",
            "--no-progress",
            "-j",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert any("stuck.tar" in line and "--timeout" in line for line in lines), done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert _fingerprint(token) in {f["fingerprint"] for f in report["findings"]}


def _cached_layers(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM layers").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_sigterm_leaves_no_partial_output_and_an_intact_cache(tmp_path: Path) -> None:
    token, good, stuck = _images(tmp_path)
    out = tmp_path / "report.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "layerleak",
            "scan",
            good,
            stuck,
            "--format",
            "json",
            "-o",
            str(out),
            "--no-progress",
            "-j",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
    )
    db = tmp_path / "cache" / "layers.sqlite3"
    started = time.monotonic()
    while _cached_layers(db) == 0:  # the good target is scanned and cached; the FIFO blocks
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - started < WAIT_S, "the good target was never cached"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert not out.exists(), "a partial report was left behind"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report.json")] == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again = subprocess.run(
        [sys.executable, "-m", "layerleak", "scan", good, "--format", "json", "--no-progress", "-j", "1"],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
    )
    assert again.returncode == 1, again.stderr
    assert _fingerprint(token) in {f["fingerprint"] for f in json.loads(again.stdout)["findings"]}
