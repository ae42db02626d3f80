"""Peers' findings on a saved image (not a test): Betterleaks, Kingfisher and Trivy, as
/work/shared/PEERS.md runs them, counted the way ``bench/precision.py`` counts layerleak's.

    python3 bench/peers.py --peers /tmp/peers IMAGE.docker.tar [IMAGE2 ...]

Each peer runs offline, with a timeout (``--timeout``, default 900 s: Kingfisher takes minutes on
an image of many jars); a peer that times out or fails is reported so, not counted as 0.

What is counted, per peer: every finding it reports, and those above its own ``low`` where it has
confidence levels (Betterleaks and Kingfisher do; Trivy gives a severity and no confidence, so all
its findings count as above low).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Count:
    peer: str
    total: int | None  # None: the peer did not finish
    above_low: int | None
    seconds: float
    note: str = ""

    def shown(self) -> str:
        if self.total is None:
            return f"n/a ({self.note})"
        return f"{self.above_low} of {self.total}" if self.above_low != self.total else str(self.total)


def _run(argv: list[str], cwd: Path, timeout: float, stdout: Path | None = None) -> tuple[int | None, float]:
    env = {**os.environ, "HOME": str(cwd / "home")}
    started = time.monotonic()
    try:
        with open(stdout or os.devnull, "wb") as out:
            done = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.DEVNULL,
                                  timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - started
    return done.returncode, time.monotonic() - started


def _json_documents(text: str) -> list[Any]:
    """Kingfisher prints its report as JSON documents one after the other."""
    decoder, pos, docs = json.JSONDecoder(), 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return docs
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)


def betterleaks(peers: Path, image: Path, work: Path, timeout: float) -> Count:
    out = work / "betterleaks.json"
    rc, seconds = _run([str(peers / "betterleaks"), "fs", str(image), "--max-archive-depth", "8", "-s",
                        "-o", str(out)], peers, timeout)
    if rc is None or not out.exists():
        return Count("Betterleaks", None, None, seconds, "timed out" if rc is None else f"exit {rc}")
    findings = json.loads(out.read_text()).get("findings") or []
    above = [f for f in findings if f.get("confidence") != "low"]
    return Count("Betterleaks", len(findings), len(above), seconds)


def kingfisher(peers: Path, image: Path, work: Path, timeout: float) -> Count:
    out = work / "kingfisher.json"
    rc, seconds = _run([str(peers / "kingfisher"), "scan", "docker", "--archive", str(image),
                        "--format", "json", "--no-validate", "--no-limits"], peers, timeout, stdout=out)
    if rc is None:
        return Count("Kingfisher", None, None, seconds, f"timed out after {timeout:.0f} s")
    docs = [d for d in _json_documents(out.read_text()) if isinstance(d, dict) and "findings" in d]
    if not docs:
        return Count("Kingfisher", None, None, seconds, f"exit {rc}, no report")
    findings = docs[0]["findings"]
    above = [f for f in findings if f.get("finding", {}).get("confidence") != "low"]
    return Count("Kingfisher", len(findings), len(above), seconds)


def trivy(peers: Path, image: Path, work: Path, timeout: float) -> Count:
    out = work / "trivy.json"
    cache = tempfile.mkdtemp(dir=work)  # a fresh cache: Trivy keeps layers by digest
    rc, seconds = _run([str(peers / "trivy"), "image", "--input", str(image), "--scanners", "secret",
                        "--image-config-scanners", "secret", "--skip-db-update", "--offline-scan",
                        "--cache-dir", cache, "--format", "json", "-q"], peers, timeout, stdout=out)
    if rc is None or not out.stat().st_size:
        return Count("Trivy", None, None, seconds, "timed out" if rc is None else f"exit {rc}")
    results = json.loads(out.read_text()).get("Results") or []
    n = sum(len(r.get("Secrets") or []) for r in results)
    return Count("Trivy", n, n, seconds)


PEERS = (betterleaks, kingfisher, trivy)


def count_all(peers: Path, image: Path, timeout: float = 900) -> list[Count]:
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        return [peer(peers, image, Path(tmp), timeout) for peer in PEERS]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--peers", type=Path, default=Path("/tmp/peers"))
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    for image in args.images:
        for c in count_all(args.peers, image.resolve(), args.timeout):
            print(f"{image.name}\t{c.peer}\ttotal={c.total}\tabove_low={c.above_low}\t{c.seconds:.0f}s\t{c.note}",
                  flush=True)


if __name__ == "__main__":
    main()
