"""Fleet jobs on a loopback registry: cost against unique layers, reruns, Dask, registry vs archive.

    python bench/fleet.py [--out /work/bench-out] [--repos 50] [--filler-kb 12288] [--base-mb 120,80]
                          [--quick]

Builds (fixtures/fleet.py) ``--repos`` repositories x 3 tags sharing two base layers, each repo
with one app layer of ``--filler-kb`` KiB of random text. The base layers hold ``--base-mb`` MB of
real files: consecutive slices of the bench root file system (``OUT/rootfs.tar``, a Debian
minbase the bench images are built on), or of random text when it is not there. Pushes them with
skopeo into a plain docker-registry on 127.0.0.1, then runs ``layerleak registry``:

1. the first run (``-j 2``), and the same registry with half the repositories (cost must follow
   unique layers, not images);
2. a rerun of the finished job (must take < 5% of the first run);
3. the same job on a Dask LocalCluster of 2 workers (``--dask local -j 2``): cluster start-up and
   the layers phase apart, from the job's own summary (``startup_seconds``, ``phase_seconds``);
4. registry MB/s of uncompressed layer data vs ``scan`` of the same images as oci-archives;
5. a paper estimate: 100 nodes scanning Docker Hub's ~16M unique layers (30-50 TB) in 24 h.

Every run is timed in wall time and in CPU time (user + sys of the process and the children it
waited for, from getrusage): on a shared machine the CPU figures are the ones to compare. Prints
one table, ready for the README; nothing is asserted (numbers go in the README, not in tests).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "fixtures")]

import fleet  # noqa: E402

import services  # noqa: E402, I001


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CPU: dict[str, float] = {}  # the last run's CPU seconds, by the first argument of run()


def run(argv: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([sys.executable, "-m", "layerleak", *argv], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    CPU["last"] = _children_cpu() - cpu
    if done.returncode not in (0, 1):
        raise SystemExit(f"layerleak {' '.join(argv[:3])} failed ({done.returncode}): {done.stderr[-800:]}")
    return elapsed, json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}


def _bases(out: Path, sizes: list[int], work: Path) -> list[fleet.RealFiles]:
    rootfs = out / "rootfs.tar"
    if rootfs.is_file():
        return fleet.rootfs_slices(rootfs, sizes)
    print(f"note: {rootfs} not there: the base layers hold random text instead", file=sys.stderr)
    bases = []
    for i, size in enumerate(sizes):
        info = tarfile.TarInfo(f"usr/share/base-{i}.txt")
        data = fleet._filler(size)
        info.size = len(data)
        bases.append([(info, data)])
    return bases


def _finding_keys(report: dict[str, Any]) -> set[tuple[object, ...]]:
    """What was found, whatever the transport: (repo number, rule, fingerprint, path, status)."""
    keys = set()
    for f in report.get("findings", []):
        parts = str(f.get("target", "")).split("/")
        repo = next((p for p in parts if p.startswith("app")), "")
        keys.add((repo[:5], f.get("rule_id"), f.get("fingerprint"), f.get("path"), f.get("status")))
    return keys


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/work/bench-out"), help="where rootfs.tar is")
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--filler-kb", type=int, default=12288)
    parser.add_argument("--base-mb", default="120,80", help="MB of real files in base-a and base-b")
    parser.add_argument("--quick", action="store_true", help="skip the Dask and archive comparisons")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = [("load average (1, 5, 15 min) at start", _load())]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = services.user_env(work / "home")
        sizes = [int(float(mb) * 1e6) for mb in args.base_mb.split(",")][:2]
        fx = fleet.build_fleet(
            work / "images", repos=args.repos, filler=args.filler_kb * 1024, multi=False,
            bases=_bases(args.out, sizes, work),
        )  # fmt: skip
        with services.start_registry(work / "registry", tls=False, auth=False) as reg:
            started = time.perf_counter()
            fleet.push_all(fx, reg.host, reg.skopeo_dest())
            rows.append(("push (skopeo)", f"{time.perf_counter() - started:.1f} s"))
            job = ["registry", reg.host, "--tags", "all", "--format", "json", "--no-progress"]

            t_all, s_all = run([*job, "--db", str(work / "all.sqlite3"), "-j", "2"], env)
            c_all = CPU["last"]
            mb = s_all["bytes_scanned"] / 1e6
            rows.append((
                f"first run (-j 2): {s_all['images']} images, {s_all['layer_refs']} layer refs, "
                f"{s_all['layers_unique']} unique layers",
                f"{t_all:.1f} s wall, {c_all:.1f} s CPU; {mb:.0f} MB uncompressed, {mb / t_all:.1f} MB/s",
            ))  # fmt: skip
            half = [*job, "--repo", "app0*", "--repo", "app1*", "--repo", "app2[0-4]"]
            t_half, s_half = run([*half, "--db", str(work / "half.sqlite3"), "-j", "2"], env)
            c_half = CPU["last"]
            rows.append((
                f"half the repos: {s_half['images']} images, {s_half['layers_unique']} unique layers",
                f"{t_half:.1f} s wall, {c_half:.1f} s CPU; {s_half['bytes_scanned'] / 1e6:.0f} MB",
            ))  # fmt: skip
            extra_layers = max(1, s_all["layers_unique"] - s_half["layers_unique"])
            extra_mb = max(1e-9, (s_all["bytes_scanned"] - s_half["bytes_scanned"]) / 1e6)
            rows.append((
                f"marginal cost: {extra_layers} more unique layers, {extra_mb:.0f} MB "
                f"({s_all['images'] - s_half['images']} more images)",
                f"{(t_all - t_half) / extra_layers * 1000:.0f} ms wall, "
                f"{(c_all - c_half) / extra_layers * 1000:.0f} ms CPU per layer; "
                f"{(c_all - c_half) / extra_mb * 1000:.0f} ms CPU per MB",
            ))  # fmt: skip

            t_re, s_re = run([*job, "--db", str(work / "all.sqlite3"), "-j", "2"], env)
            c_re = CPU["last"]
            rows.append((
                f"rerun of the finished job: {s_re['images_unchanged']} images unchanged, "
                f"{s_re['layers_scanned']} layers scanned",
                f"{t_re:.2f} s wall = {100 * t_re / t_all:.1f}% of the first run; "
                f"{c_re:.2f} s CPU = {100 * c_re / c_all:.1f}%",
            ))  # fmt: skip

            if not args.quick:
                t_dask, s_dask = run(
                    [*job, "--db", str(work / "dask.sqlite3"), "--dask", "local", "-j", "2"], env
                )
                c_dask = CPU["last"]
                same = (
                    s_dask["findings"] == s_all["findings"]
                    and s_dask["layers_scanned"] == s_all["layers_scanned"]
                    and s_dask["findings_by_status"] == s_all["findings_by_status"]
                )
                rows.append((
                    f"Dask LocalCluster(2 workers), {'same' if same else 'DIFFERENT'} results",
                    f"{t_dask:.1f} s wall, {c_dask:.1f} s CPU; cluster start-up "
                    f"{s_dask['startup_seconds']:.1f} s (overlaps the walk); "
                    f"layers phase {s_dask['phase_seconds']['layers']:.1f} s",
                ))  # fmt: skip
                rows.append((
                    "-j 2 processes (the first run above)",
                    f"{t_all:.1f} s wall, {c_all:.1f} s CPU; "
                    f"layers phase {s_all['phase_seconds']['layers']:.1f} s",
                ))  # fmt: skip

                # registry vs local archives: the same ten images (latest tags), scanned by the
                # same `scan -j 2 --no-cache` both ways (each image's layers, shared or not)
                archives, refs = [], []
                for i in range(min(args.repos, 10)):
                    out = work / f"app{i:02d}.tar"
                    ref = fx.ref(f"app{i:02d}", "latest")
                    services.run("skopeo", "copy", "--quiet", f"oci:{fx.layout}:{ref}", f"oci-archive:{out}")
                    archives.append(f"oci-archive:{out}")
                    refs.append(f"docker://{reg.host}/app{i:02d}:latest")
                scan = ["scan", "--no-cache", "--no-progress", "-j", "2", "--format", "json"]
                t_arc, r_arc = run([*scan, *archives], env)
                c_arc = CPU["last"]
                t_reg, r_reg = run([*scan, *refs], env)
                c_reg = CPU["last"]
                scanned = sum(t["bytes_scanned"] for t in r_arc["targets"]) / 1e6
                same = _finding_keys(r_arc) == _finding_keys(r_reg)
                rows.append((
                    f"10 images ({scanned:.0f} MB): scan oci-archives vs scan docker:// (loopback), "
                    f"{'same' if same else 'DIFFERENT'} findings",
                    f"{scanned / t_arc:.1f} vs {scanned / t_reg:.1f} MB/s wall; registry = "
                    f"{t_reg / t_arc:.2f}x wall, {c_reg / c_arc:.2f}x CPU",
                ))  # fmt: skip

    per_core = (s_all["bytes_scanned"] / 1e6) / c_all
    layers_per_core_s = s_all["layers_scanned"] / c_all
    rows.append((
        "measured per core (first run: MB / CPU second)",
        f"{per_core:.1f} MB/s uncompressed, {layers_per_core_s:.2f} layers/s",
    ))  # fmt: skip
    # Docker Hub: ~16M unique layers, 30-50 TB (GitGuardian 2024); take 40 TB compressed, about
    # 2.5x that uncompressed, in 24 h on 100 nodes
    need = 40e12 * 2.5 / 86400 / 1e6
    cores_needed = need / per_core
    gbit = 40e12 / 86400 * 8 / 1e9
    rows.append((
        "paper: 16M layers / 40 TB (~100 TB uncompressed) in 24 h",
        f"{need:,.0f} MB/s uncompressed = {cores_needed:,.0f} cores "
        f"= {cores_needed / 100:.1f} cores/node x 100; "
        f"download {gbit:.1f} Gbit/s total ({gbit / 100 * 1000:.0f} Mbit/s/node); "
        f"Dask tasks {16e6 / 86400:.0f}/s (~1 ms each on one scheduler: fine)",
    ))  # fmt: skip
    rows.append(("load average (1, 5, 15 min) at end", _load()))
    width = max(len(k) for k, _ in rows)
    print(f"| {'measure':<{width}} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for key, value in rows:
        print(f"| {key:<{width}} | {value} |")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
