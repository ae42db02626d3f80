"""Benchmark layerleak on the realistic image, against the tarfile reading floor and its peers.

    python bench/bench.py [--out bench/out] [--runs 3] [--check] [--profile] [--peers /tmp/peers]

Builds the image first if it is missing (bench/build_image.sh: Debian minbase + a venv of popular
packages, 4 layers), then for docker-archive (uncompressed layers) and oci-archive (gzip layers):

- floor: Python's tarfile reading every byte of every layer (stdlib gzip for the oci layers);
- cold: ``layerleak scan --no-cache`` end to end (a fresh process, as a user runs it);
- warm: the same with a cache that already holds the image;
- with ``--check``: the straightforward path (no keyword gate, one process, no cache) once, and
  a comparison of its findings with the fast path's (they must be identical);
- with ``--profile``: the top entries of a cProfile of one single-process scan;
- peers (Kingfisher, Trivy) when their binaries are in ``--peers`` (see shared PEERS.md).

Reports wall time, MB/s and files/s (uncompressed bytes and files the scan reports), CPU time,
and peak RSS of the whole process tree (the scanner and its workers, sampled every 20 ms). The
machine's load average is printed too: the figures are only comparable within one run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
FORMATS = (("docker-archive", "realistic.docker.tar"), ("oci-archive", "realistic.oci.tar"))


@dataclass
class Run:
    label: str
    wall: float
    cpu: float
    peak_rss_mb: float
    rc: int
    stdout: str = ""


def _tree_rss_kb(root: int) -> int:
    """RSS of ``root`` and all its descendants, in kB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        pid = int(entry)
        children.setdefault(ppid, []).append(pid)
        rss[pid] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def _gate() -> str:
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return "re2"
    return "hyperscan"


GATE = _gate()  # what --gate auto picks here


def run_measured(label: str, argv: list[str], env: dict[str, str] | None = None) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss covers the largest single process; the sampler the sum over the tree.
    peak_mb = max(peak, after.ru_maxrss if after.ru_maxrss > before.ru_maxrss else 0) / 1024
    if proc.returncode not in (0, 1):
        sys.stderr.write(err.decode(errors="replace")[-2000:])
    return Run(label, wall, cpu, peak_mb, proc.returncode, out.decode(errors="replace"))


def floor(path: Path) -> tuple[float, int, int]:
    """Seconds for Python's tarfile to read every byte of every layer; (seconds, bytes, files)."""
    start = time.perf_counter()
    total = files = 0
    with tarfile.open(path, "r:") as outer:
        for member in outer.getmembers():
            if not member.isreg() or member.size < 1024:
                continue
            blob = outer.extractfile(member)
            assert blob is not None
            head = blob.peek(2)[:2] if hasattr(blob, "peek") else b""
            if head != b"\x1f\x8b" and not _is_tar(outer, member):
                continue
            mode = "r|gz" if head == b"\x1f\x8b" else "r|"
            with tarfile.open(fileobj=blob, mode=mode) as layer:  # type: ignore[call-overload]
                for entry in layer:
                    if entry.isreg():
                        f = layer.extractfile(entry)
                        while chunk := f.read(1 << 20):
                            total += len(chunk)
                        files += 1
    return time.perf_counter() - start, total, files


def _is_tar(outer: tarfile.TarFile, member: tarfile.TarInfo) -> bool:
    f = outer.extractfile(member)
    assert f is not None
    return f.read(512)[257:262] == b"ustar"


def scanned(report_text: str) -> tuple[int, int, int]:
    """(uncompressed bytes, files, findings) from a JSON report."""
    doc = json.loads(report_text)
    nbytes = nfiles = 0
    for target in doc["targets"]:  # one entry per image scanned
        for image in [target, *target.get("images", [])]:
            for layer in image.get("layers", []):
                nbytes += layer.get("bytes_scanned", 0)
                nfiles += layer.get("files_scanned", 0)
    return nbytes, nfiles, len(doc["findings"])


def finding_keys(report_text: str) -> list[str]:
    return sorted(json.dumps(f, sort_keys=True) for f in json.loads(report_text)["findings"])


STRAIGHTFORWARD = """
import sys
from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.models import ScanReport, TargetResult
from layerleak.report.json_report import render_json
from layerleak.scan import ScanOptions, scan_source
from layerleak.sources.targets import open_target
engine = Engine(load_rules(()), gate="none")
with open_target(sys.argv[1]) as source:
    images = scan_source(source, engine, ScanOptions(), jobs=1, cache=None)
report = ScanReport(targets=(TargetResult(target=sys.argv[1], images=tuple(images)),),
                    ruleset=engine.ruleset)
sys.stdout.write(render_json(report))
"""


def profile(target: str, top: int) -> str:
    from layerleak.detect.engine import Engine
    from layerleak.detect.rules import load_rules
    from layerleak.scan import ScanOptions, scan_source
    from layerleak.sources.targets import open_target

    engine = Engine(load_rules(()))
    prof = cProfile.Profile()
    with open_target(target) as source:
        prof.enable()
        scan_source(source, engine, ScanOptions(), jobs=1, cache=None)
        prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def peers(peer_dir: Path, image: Path) -> list[Run]:
    runs = []
    kingfisher, trivy = peer_dir / "kingfisher", peer_dir / "trivy"
    if kingfisher.exists():
        env = {**os.environ, "HOME": str(peer_dir / "home")}
        runs.append(run_measured("Kingfisher --no-limits", [
            str(kingfisher), "scan", "docker", "--archive", str(image), "--format", "json",
            "--no-validate", "--no-limits"], env))
    if trivy.exists():
        cache = tempfile.mkdtemp(prefix="trivy-cache-")
        runs.append(run_measured("Trivy (fresh cache)", [
            str(trivy), "image", "--input", str(image), "--scanners", "secret",
            "--image-config-scanners", "secret", "--skip-db-update", "--offline-scan",
            "--cache-dir", cache, "--format", "json", "-q"]))
        shutil.rmtree(cache, ignore_errors=True)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--runs", type=int, default=1, help="cold runs per format (best is kept)")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--check", action="store_true", help="compare with the straightforward path")
    parser.add_argument("--profile", action="store_true", help="cProfile one single-process scan")
    parser.add_argument("--peers", type=Path, default=Path("/tmp/peers"))
    parser.add_argument("--formats", default="docker-archive,oci-archive")
    args = parser.parse_args()

    if not all((args.out / name).exists() for _, name in FORMATS):
        subprocess.run(["bash", str(HERE / "build_image.sh"), str(args.out)], check=True)
    wanted = args.formats.split(",")
    print(f"# layerleak benchmark  (load average at start: {os.getloadavg()[0]:.2f}, "
          f"{os.cpu_count()} CPUs)\n")
    rows: list[str] = []
    for transport, name in FORMATS:
        if transport not in wanted:
            continue
        image = args.out / name
        target = f"{transport}:{image}"
        floor_s, floor_bytes, floor_files = floor(image)
        # Every finding, low confidence included: the straightforward path's report has them all.
        scan = [sys.executable, "-m", "layerleak", "scan", "--no-progress", "--format", "json",
                "--min-confidence", "low"]
        if args.jobs:
            scan += ["--jobs", str(args.jobs)]
        cold = min((run_measured(f"cold ({GATE} gate)", [*scan, "--no-cache", target])
                    for _ in range(args.runs)), key=lambda r: r.wall)
        others = []
        if GATE == "hyperscan":  # the default install has no Hyperscan: show that figure too
            others.append(min((run_measured("cold (re2 gate, the default install)",
                                            [*scan, "--no-cache", "--gate", "re2", target])
                               for _ in range(args.runs)), key=lambda r: r.wall))
        cache_dir = tempfile.mkdtemp(prefix="layerleak-bench-cache-")
        env = {**os.environ, "LAYERLEAK_CACHE_DIR": cache_dir}
        run_measured("fill", [*scan, target], env)
        warm = run_measured("warm", [*scan, target], env)
        shutil.rmtree(cache_dir, ignore_errors=True)
        nbytes, nfiles, nfindings = scanned(cold.stdout)
        print(f"## {transport}: {image.stat().st_size / 1e6:.0f} MB archive, "
              f"{nbytes / 1e6:.0f} MB / {nfiles} files scanned, {nfindings} findings\n")
        print("| run | wall s | MB/s | files/s | CPU s | peak RSS MB | x floor |")
        print("|---|---|---|---|---|---|---|")
        print(f"| floor: tarfile reads every byte | {floor_s:.2f} | {floor_bytes / 1e6 / floor_s:.0f}"
              f" | {floor_files / floor_s:.0f} | | | 1.0 |")
        for run in (cold, *others, warm):
            print(f"| layerleak {run.label} | {run.wall:.2f} | {nbytes / 1e6 / run.wall:.0f} | "
                  f"{nfiles / run.wall:.0f} | {run.cpu:.1f} | {run.peak_rss_mb:.0f} | "
                  f"{run.wall / floor_s:.1f} |")
        if warm.stdout and finding_keys(warm.stdout) != finding_keys(cold.stdout):
            print("\n**warm-cache findings differ from the cold scan's**")
        if args.check:
            plain = run_measured("straightforward", [sys.executable, "-c", STRAIGHTFORWARD, target])
            print(f"| straightforward path | {plain.wall:.2f} | {nbytes / 1e6 / plain.wall:.0f} | "
                  f"{nfiles / plain.wall:.0f} | {plain.cpu:.1f} | {plain.peak_rss_mb:.0f} | "
                  f"{plain.wall / floor_s:.1f} |")
            same = finding_keys(plain.stdout) == finding_keys(cold.stdout)
            rows.append(f"{transport}: findings {'IDENTICAL' if same else 'DIFFER'} "
                        "to the straightforward path")
        if transport == "docker-archive" and args.peers.is_dir():
            for run in peers(args.peers, image):
                print(f"| {run.label} | {run.wall:.2f} | {nbytes / 1e6 / run.wall:.0f} | "
                      f"{nfiles / run.wall:.0f} | {run.cpu:.1f} | {run.peak_rss_mb:.0f} | "
                      f"{run.wall / floor_s:.1f} |")
        print()
    for row in rows:
        print(row)
    if args.profile:
        transport, name = FORMATS[0]
        print("\n## Profile: one process, docker-archive, sorted by own time\n\n```")
        print(profile(f"{transport}:{args.out / name}", 15))
        print("```")
    print(f"\n(load average at end: {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
