"""Every --format as a user runs it: SARIF that validates, JSON Lines, a table that fits COLUMNS
or is never cut in a pipe, and colours only when asked or on a terminal without NO_COLOR."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "report"))
from test_consumers import validate  # noqa: E402

if TYPE_CHECKING:
    from conftest import Built, Layerleak

SGR = re.compile(r"\x1b\[[0-9;]*m")


def run_env(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    base.update(HOME=str(home), XDG_CACHE_HOME=str(home / "cache"), **env)
    return subprocess.run([sys.executable, "-m", "layerleak", *args], env=base, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300)


def test_sarif_from_the_cli_validates(layerleak: Layerleak, handmade_images: Built) -> None:
    run = layerleak("scan", handmade_images.target("multi"), "--format", "sarif")
    assert run.returncode == 1, run.describe()
    doc = json.loads(run.stdout)
    validate(doc)
    results = doc["runs"][0]["results"]
    assert len(results) == 2
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris == {"srv/deploy.env"}
    images = {r["locations"][0]["logicalLocations"][0]["name"] for r in results}
    assert images == {"multi-a:1.0", "multi-b:2.0"}
    for secret in handmade_images.fixtures["multi"].secrets:
        assert secret.value not in run.stdout
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert all(float(r["properties"]["security-severity"]) > 0 for r in rules)


def test_jsonl_from_the_cli(layerleak: Layerleak, handmade_images: Built, tmp_path: Path) -> None:
    out = tmp_path / "findings.jsonl"
    run = layerleak("scan", handmade_images.target("multi"), handmade_images.target("opaque"),
                    "--format", "jsonl", "-o", str(out))
    assert run.returncode == 1, run.describe()
    lines = out.read_text().splitlines()
    findings = [json.loads(line) for line in lines]
    assert len(findings) == 3
    report = layerleak("scan", handmade_images.target("multi"), handmade_images.target("opaque"),
                       "--format", "json").report
    assert findings == report["findings"]


def test_table_fits_columns_and_is_whole_in_a_pipe(handmade_images: Built, tmp_path: Path) -> None:
    target = handmade_images.target("docker25")
    narrow = run_env(["scan", target, "--no-cache"], tmp_path, COLUMNS="60", NO_COLOR="1")
    assert narrow.returncode == 1, narrow.stderr
    assert all(len(line) <= 60 for line in narrow.stdout.splitlines()), narrow.stdout
    assert "Rotate every one: a deleted file is still in the image." in narrow.stdout
    piped = run_env(["scan", target, "--no-cache"], tmp_path)
    assert "…" not in piped.stdout.replace(piped.stdout.split("\n")[1], "")  # only the image ID line
    assert not SGR.search(piped.stdout), "no colour in a pipe"


@pytest.mark.parametrize(("args", "env", "coloured"), [
    (["--color", "always"], {}, True),
    (["--color", "always"], {"NO_COLOR": "1"}, True),  # the flag beats the environment
    (["--color", "never"], {}, False),
    ([], {}, False),  # auto, and stdout is a pipe
])
def test_color_choice(handmade_images: Built, tmp_path: Path, args: list[str], env: dict[str, str],
                      coloured: bool) -> None:
    run = run_env(["scan", handmade_images.target("opaque"), "--no-cache", *args], tmp_path, **env)
    assert bool(SGR.search(run.stdout)) is coloured


def test_format_choice_lists_every_renderer(layerleak: Layerleak) -> None:
    run = layerleak("scan", "--help")
    for name in ("table", "json", "jsonl", "sarif", "html"):
        assert name in run.stdout


def _on_terminal(args: list[str], home: Path, **env: str) -> str:
    """stdout as a terminal (a pseudo-terminal 70 columns wide) sees it."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 70, 0, 0))
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    base.update(HOME=str(home), XDG_CACHE_HOME=str(home / "cache"), **env)
    proc = subprocess.Popen([sys.executable, "-m", "layerleak", *args], env=base, stdout=slave,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=300)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def test_on_a_terminal_auto_colours_and_fits_unless_no_color(handmade_images: Built, tmp_path: Path) -> None:
    args = ["scan", handmade_images.target("opaque"), "--no-cache", "--no-progress"]
    shown = _on_terminal(args, tmp_path)
    assert SGR.search(shown), "auto colours on a terminal"
    assert all(len(SGR.sub("", line)) <= 70 for line in shown.splitlines()), shown
    assert not SGR.search(_on_terminal(args, tmp_path, NO_COLOR="1")), "NO_COLOR turns auto off"
