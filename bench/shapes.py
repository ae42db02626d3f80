"""Benchmark layerleak on four image shapes, each against the tarfile floor and the three peers.

    python bench/shapes.py [--out bench/out] [--shapes python,node,java,gobin] [--peers /tmp/peers]
                           [--no-straightforward] [--timeout 600]

The shapes (each built once by its script, with buildah, into ``--out``; docker-archive):

- python: Debian minbase + a venv of popular packages (bench/build_image.sh): mid-sized files;
- node:   Debian + Debian's nodejs + ``npm install`` of popular SDKs (bench/build_node_image.sh,
          bench/node/package.json): many small files;
- java:   Debian + a JRE + Debian's Java libraries (bench/build_java_image.sh): many jars;
- gobin:  Debian + Debian's packaged Go tools (bench/build_gobin_image.sh): big binaries.

For each shape, in ONE run, one after the other on the same machine:

- floor: Python's tarfile reading every byte of every layer (bench.py's ``floor``);
- layerleak cold (``--no-cache``), then a cache fill and a warm rescan (a fresh process each,
  start-up included);
- the straightforward path (``--gate none -j 1 --no-cache``) and a comparison of every finding
  (low confidence included) with the cold scan's: they must be identical;
- Betterleaks, Kingfisher and Trivy when their binaries are in ``--peers`` (../shared/PEERS.md).

Wall time, CPU time and peak RSS of the whole process tree (sampled every 20 ms) per run; the
machine's load average at the start and end of each shape. Timings on a shared machine are
noisy: compare the ratios within one run, not seconds across runs.

The interpreter writes bytecode here (PYTHONDONTWRITEBYTECODE is dropped for the runs, and one
``--version`` run compiles it first), as an installed package has it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import Run, finding_keys, floor, run_measured, scanned  # noqa: E402

# shape -> (archive name, build script, what it is)
SHAPES: dict[str, tuple[str, str, str]] = {
    "python": ("realistic.docker.tar", "build_image.sh", "Debian + Python venv (mid-sized files)"),
    "node": ("node.docker.tar", "build_node_image.sh",
             "Debian + node_modules of popular SDKs (many small files)"),
    "java": ("java.docker.tar", "build_java_image.sh", "Debian + JRE + Debian's Java libraries (many jars)"),
    "gobin": ("gobin.docker.tar", "build_gobin_image.sh", "Debian + packaged Go tools (big binaries)"),
}


@dataclass
class ShapeResult:
    shape: str
    archive_mb: float
    files: int
    scanned_mb: float
    findings: int
    floor_s: float
    runs: dict[str, Run]
    identical: bool | None  # cold vs straightforward; None when not checked
    warm_same: bool
    load_start: float
    load_end: float


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def _timed(timeout: int, argv: list[str]) -> list[str]:
    return ["timeout", str(timeout), *argv]


def peer_runs(peer_dir: Path, image: Path, timeout: int, workdir: Path, names: set[str]) -> list[Run]:
    runs: list[Run] = []
    home = str(peer_dir / "home")
    betterleaks = peer_dir / "betterleaks"
    if betterleaks.exists() and "betterleaks" in names:
        report = workdir / "betterleaks.json"
        runs.append(run_measured("Betterleaks 2.0", _timed(timeout, [
            str(betterleaks), "fs", str(image), "--max-archive-depth", "8", "-s", "-o", str(report)]),
            {**os.environ, "HOME": home}))
        runs[-1].stdout = str(_count_json(report))
    kingfisher = peer_dir / "kingfisher"
    if kingfisher.exists() and "kingfisher" in names:
        run = run_measured("Kingfisher 2.14 --no-limits", _timed(timeout, [
            str(kingfisher), "scan", "docker", "--archive", str(image), "--format", "json",
            "--no-validate", "--no-limits"]), {**os.environ, "HOME": home})
        run.stdout = ""
        runs.append(run)
    trivy = peer_dir / "trivy"
    if trivy.exists() and "trivy" in names:
        cache = tempfile.mkdtemp(prefix="trivy-cache-")
        run = run_measured("Trivy 0.59 (fresh cache)", _timed(timeout, [
            str(trivy), "image", "--input", str(image), "--scanners", "secret",
            "--image-config-scanners", "secret", "--skip-db-update", "--offline-scan",
            "--cache-dir", cache, "--format", "json", "-q"]))
        run.stdout = ""
        runs.append(run)
        shutil.rmtree(cache, ignore_errors=True)
    return runs


def _count_json(path: Path) -> int | str:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return "?"
    return len(doc) if isinstance(doc, list) else "?"


def bench_shape(shape: str, image: Path, args: argparse.Namespace) -> ShapeResult:
    load_start = os.getloadavg()[0]
    floor_s, _floor_bytes, _floor_files = floor(image)
    scan = [sys.executable, "-m", "layerleak", "scan", "--no-progress", "--format", "json",
            "--min-confidence", "low"]
    target = f"docker-archive:{image}"
    runs: dict[str, Run] = {}
    runs["cold"] = run_measured("layerleak cold (--no-cache)",
                                _timed(args.timeout, [*scan, "--no-cache", target]), _env())
    cache_dir = tempfile.mkdtemp(prefix="layerleak-shapes-cache-")
    env = _env(LAYERLEAK_CACHE_DIR=cache_dir)
    run_measured("fill", _timed(args.timeout, [*scan, target]), env)
    runs["warm"] = run_measured("layerleak warm (cache hit)", _timed(args.timeout, [*scan, target]), env)
    shutil.rmtree(cache_dir, ignore_errors=True)
    identical = None
    if not args.no_straightforward:
        runs["plain"] = run_measured("straightforward (--gate none -j 1)", _timed(
            args.timeout, [*scan, "--no-cache", "--gate", "none", "-j", "1", target]), _env())
        identical = _same(runs["plain"], runs["cold"])
    with tempfile.TemporaryDirectory(prefix="shapes-peers-") as work:
        if args.peers.is_dir():
            names = set(args.peer_names.split(","))
            for run in peer_runs(args.peers, image, args.timeout, Path(work), names):
                runs[run.label] = run
    nbytes, nfiles, nfindings = scanned(runs["cold"].stdout) if runs["cold"].rc in (0, 1) else (0, 0, 0)
    return ShapeResult(
        shape=shape, archive_mb=image.stat().st_size / 1e6, files=nfiles, scanned_mb=nbytes / 1e6,
        findings=nfindings, floor_s=floor_s, runs=runs, identical=identical,
        warm_same=_same(runs["warm"], runs["cold"]) is True, load_start=load_start,
        load_end=os.getloadavg()[0],
    )


def _same(a: Run, b: Run) -> bool | None:
    if a.rc not in (0, 1) or b.rc not in (0, 1):
        return None
    return finding_keys(a.stdout) == finding_keys(b.stdout)


def _cell(run: Run | None, floor_s: float) -> str:
    if run is None:
        return "-"
    if run.rc == 124:
        return "timed out"
    if run.rc not in (0, 1) and not run.label.startswith(("Betterleaks", "Kingfisher", "Trivy")):
        return f"failed ({run.rc})"
    return f"{run.wall:.1f} s ({run.wall / floor_s:.1f}x)"


def print_tables(results: list[ShapeResult]) -> None:
    print("| image shape | floor | layerleak cold | warm | straightforward | Betterleaks | Kingfisher "
          "| Trivy | cold peak RSS | findings identical |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        by = {label.split()[0]: run for label, run in r.runs.items()}
        print(f"| {SHAPES[r.shape][2]}: {r.archive_mb:.0f} MB, {r.files} files | {r.floor_s:.1f} s "
              f"| {_cell(r.runs.get('cold'), r.floor_s)} | {r.runs['warm'].wall:.2f} s "
              f"| {_cell(r.runs.get('plain'), r.floor_s)} | {_cell(by.get('Betterleaks'), r.floor_s)} "
              f"| {_cell(by.get('Kingfisher'), r.floor_s)} | {_cell(by.get('Trivy'), r.floor_s)} "
              f"| {r.runs['cold'].peak_rss_mb:.0f} MB "
              f"| {'-' if r.identical is None else 'yes' if r.identical else '**NO**'} |")
    print()
    for r in results:
        print(f"### {r.shape}: {r.archive_mb:.0f} MB docker-archive, {r.scanned_mb:.0f} MB / {r.files} files "
              f"scanned, {r.findings} findings at --min-confidence low; load average "
              f"{r.load_start:.1f} -> {r.load_end:.1f}\n")
        print("| run | wall s | CPU s | peak RSS MB (tree) | x floor | exit |")
        print("|---|---|---|---|---|---|")
        print(f"| floor: tarfile reads every byte | {r.floor_s:.2f} | | | 1.0 | |")
        for run in r.runs.values():
            print(f"| {run.label} | {run.wall:.2f} | {run.cpu:.1f} | {run.peak_rss_mb:.0f} "
                  f"| {run.wall / r.floor_s:.1f} | {run.rc} |")
        if not r.warm_same:
            print("\n**the warm rescan's findings differ from the cold scan's**")
        print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--peers", type=Path, default=Path("/tmp/peers"))
    parser.add_argument("--no-straightforward", action="store_true",
                        help="skip the straightforward path (and the findings check)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per run")
    parser.add_argument("--peer-names", default="betterleaks,kingfisher,trivy",
                        help="which peers to run (Kingfisher and Trivy take minutes per shape here)")
    args = parser.parse_args()
    wanted = [s for s in args.shapes.split(",") if s]
    for shape in wanted:
        if shape not in SHAPES:
            parser.error(f"unknown shape {shape!r} (one of {', '.join(SHAPES)})")
    subprocess.run([sys.executable, "-m", "layerleak", "--version"], env=_env(), check=True,
                   stdout=subprocess.DEVNULL)  # bytecode written once, before any timing
    print(f"# layerleak on four image shapes  ({os.cpu_count()} CPUs, load average at start "
          f"{os.getloadavg()[0]:.2f})\n")
    results = []
    for shape in wanted:
        name, script, _what = SHAPES[shape]
        image = args.out / name
        if not image.exists():
            subprocess.run(["bash", str(HERE / script), str(args.out)], check=True)
        results.append(bench_shape(shape, image, args))
        print_tables(results[-1:])  # each shape as it ends: a run cut short keeps what it measured
        sys.stdout.flush()
    print("## All shapes\n")
    print_tables(results)
    print(f"(load average at end: {os.getloadavg()[0]:.2f})")
    return 0 if all(r.identical is not False and r.warm_same for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
