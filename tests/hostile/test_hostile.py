"""The hostile-image campaign (issue 14), run as a user runs the scanner: one process per case.

``fixtures/hostile.py`` writes every case; each must end as its :class:`~hostile.Case` says:
the exit code, a stderr line naming the layer or file at fault, the secret planted before the
hostile part still reported, no traceback, no raw control character on the terminal, and the
process within its time and memory limits. The time limit is a hang detector (60 s for inputs
that take about a second), not a speed test; peak memory is the child's ``ru_maxrss`` from
``wait4``, which covers its worker processes too.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import hostile
from hostile import SECRET_RULE, Case

CASES_DIR_ENV = "LAYERLEAK_HOSTILE_DIR"  # reuse cases written by `python fixtures/hostile.py DIR`
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float
    killed: bool

    def describe(self, case: Case) -> str:
        return (
            f"case {case.name} ({case.category}): exit {self.returncode}, {self.seconds:.1f} s, "
            f"{self.peak_mb:.0f} MB{' (killed at the time limit)' if self.killed else ''}\n"
            f"stderr: {self.stderr[-3000:]}\nstdout: {self.stdout[:1500]}"
        )


def _built() -> tuple[Path, list[Case]]:
    reuse = os.environ.get(CASES_DIR_ENV)
    if reuse and (Path(reuse) / "cases.json").exists():
        raw = json.loads((Path(reuse) / "cases.json").read_text())
        return Path(reuse), [
            Case(**{**c, "exit_codes": tuple(c["exit_codes"]), "args": tuple(c["args"])}) for c in raw
        ]
    outdir = Path(tempfile.mkdtemp(prefix="layerleak-hostile-"))
    atexit.register(shutil.rmtree, outdir, True)
    return outdir, hostile.build(outdir)


OUTDIR, CASES = _built()


def run(case: Case, home: Path) -> Outcome:
    kind, _, rest = case.target.partition(":")
    target = f"{kind}:{OUTDIR / rest}"
    argv = [
        sys.executable,
        "-m",
        "layerleak",
        "scan",
        target,
        "--format",
        case.fmt,
        "--no-cache",
        "--no-progress",
        *case.args,
    ]
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "NO_COLOR": "1"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        killed = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > case.time_limit:
                proc.kill()
                killed = True
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Outcome(
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            seconds,
            usage.ru_maxrss / 1024,
            killed,
        )


def fingerprint(secret: str) -> str:
    return hashlib.sha256(f"layerleak:v1:{SECRET_RULE}:{secret}".encode()).hexdigest()[:32]


def test_the_campaign_is_large_and_covers_every_category() -> None:
    assert len(CASES) >= 80
    categories = {c.category for c in CASES}
    assert categories >= {
        "compression-bomb",
        "zip-bomb",
        "tar-header",
        "names",
        "links",
        "manifest-config-index",
        "digest-mismatch",
        "truncation",
        "flood",
        "redos",
        "pyc-utf16",
    }
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case(case: Case, tmp_path: Path) -> None:
    outcome = run(case, tmp_path)
    about = outcome.describe(case)
    assert not outcome.killed, f"hung: {about}"
    assert outcome.peak_mb < case.memory_mb, f"memory: {about}"
    assert "Traceback" not in outcome.stderr, about
    assert outcome.returncode in case.exit_codes, about
    lines = [line for line in outcome.stderr.splitlines() if line]
    assert all(line.startswith("layerleak: ") for line in lines), f"stray stderr: {about}"
    assert not CONTROL.search(outcome.stderr), f"raw control character on stderr: {about}"
    if case.error is not None:
        assert any(re.search(case.error, line) for line in lines), f"no line matches {case.error!r}: {about}"
    if outcome.returncode == 2:
        assert any(line.startswith("layerleak: error: ") for line in lines), about
    if case.fmt == "table":
        assert not CONTROL.search(outcome.stdout.replace("\n", "")), (
            f"raw control character in table: {about}"
        )
        if case.secret is not None:
            assert SECRET_RULE in outcome.stdout, f"planted secret not reported: {about}"
        return
    report = json.loads(outcome.stdout)
    assert report["version"] == 1
    if case.secret is not None:
        prints = {f["fingerprint"] for f in report["findings"]}
        assert fingerprint(case.secret) in prints, f"planted secret not reported: {about}"
    assert case.secret is None or case.secret not in outcome.stdout + outcome.stderr  # redacted
