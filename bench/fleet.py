"""Fleet jobs on a loopback registry: cost against unique layers, reruns, Dask, registry vs archive.

    python bench/fleet.py [--repos 50] [--filler-kb 1024] [--quick]

Builds (fixtures/fleet.py) ``--repos`` repositories x 3 tags sharing two base layers, each repo
with one app layer of ``--filler-kb`` KiB of random text, pushes them with skopeo into a plain
docker-registry on 127.0.0.1, then times ``layerleak registry``:

1. the first run (``-j 2``), and the same registry with half the repositories (cost must follow
   unique layers, not images);
2. a rerun of the finished job (must take < 5% of the first run's layer work);
3. the same job on a Dask LocalCluster of 2 workers (``--dask local -j 2``);
4. registry MB/s of uncompressed layer data vs ``scan`` of the same images as oci-archives;
5. a paper estimate: 100 nodes scanning Docker Hub's ~16M unique layers (30-50 TB) in 24 h.

Prints one table; nothing is asserted (numbers go in the README, not in tests).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "fixtures")]

import fleet  # noqa: E402

import services  # noqa: E402, I001


def run(argv: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "layerleak", *argv], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"layerleak {' '.join(argv[:3])} failed ({done.returncode}): {done.stderr[-800:]}")
    return elapsed, json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--filler-kb", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="skip the Dask and archive comparisons")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = services.user_env(work / "home")
        fx = fleet.build_fleet(work / "images", repos=args.repos, filler=args.filler_kb * 1024, multi=False)
        with services.start_registry(work / "registry", tls=False, auth=False) as reg:
            started = time.perf_counter()
            fleet.push_all(fx, reg.host, reg.skopeo_dest())
            rows.append(("push (skopeo)", f"{time.perf_counter() - started:.1f} s"))
            job = ["registry", reg.host, "--tags", "all", "--format", "json", "--no-progress"]

            t_all, s_all = run([*job, "--db", str(work / "all.sqlite3"), "-j", "2"], env)
            mb = s_all["bytes_scanned"] / 1e6
            rows.append((
                f"first run: {s_all['images']} images, {s_all['layer_refs']} layer refs, "
                f"{s_all['layers_unique']} unique", f"{t_all:.1f} s, {mb:.0f} MB, {mb / t_all:.1f} MB/s",
            ))  # fmt: skip
            half = [*job, "--repo", "app0*", "--repo", "app1*", "--repo", "app2[0-4]"]
            t_half, s_half = run([*half, "--db", str(work / "half.sqlite3"), "-j", "2"], env)
            rows.append((
                f"half the repos: {s_half['images']} images, {s_half['layers_unique']} unique",
                f"{t_half:.1f} s, {s_half['bytes_scanned'] / 1e6:.0f} MB",
            ))  # fmt: skip
            per_layer = (t_all - t_half) / max(1, s_all["layers_unique"] - s_half["layers_unique"])
            rows.append(("marginal cost per unique layer", f"{per_layer * 1000:.0f} ms"))

            t_re, s_re = run([*job, "--db", str(work / "all.sqlite3"), "-j", "2"], env)
            rows.append((
                f"rerun (finished job): scanned {s_re['layers_scanned']}, "
                f"unchanged {s_re['images_unchanged']}",
                f"{t_re:.2f} s = {100 * t_re / t_all:.1f}% of the first run",
            ))  # fmt: skip

            if not args.quick:
                t_dask, s_dask = run(
                    [*job, "--db", str(work / "dask.sqlite3"), "--dask", "local", "-j", "2"], env
                )
                same = (
                    s_dask["findings"] == s_all["findings"]
                    and s_dask["layers_scanned"] == s_all["layers_scanned"]
                )
                rows.append(
                    (
                        "Dask LocalCluster(2 workers)",
                        f"{t_dask:.1f} s ({'same' if same else 'DIFFERENT'} results)",
                    )
                )
                rows.append(("-j 2 processes (first run above)", f"{t_all:.1f} s"))

                # registry vs local archives: the same ten images (latest tags), both ways
                archives = []
                for i in range(min(args.repos, 10)):
                    out = work / f"app{i:02d}.tar"
                    ref = fx.ref(f"app{i:02d}", "latest")
                    services.run("skopeo", "copy", "--quiet", f"oci:{fx.layout}:{ref}", f"oci-archive:{out}")
                    archives.append(f"oci-archive:{out}")
                t_arc, _ = run(
                    ["scan", "--no-cache", "--no-progress", "-j", "2", "--format", "json", *archives], env
                )
                ten = ["registry", reg.host, "--repo", "app0[0-9]", "--tags", "latest", "--format", "json",
                       "--no-progress", "--db", str(work / "ten.sqlite3"), "-j", "2"]  # fmt: skip
                t_reg, s_reg = run(ten, env)
                ten_mb = s_reg["bytes_scanned"] / 1e6
                rows.append((
                    f"10 images: oci-archives (scan -j 2) vs registry "
                    f"({s_reg['layers_unique']} layers, {ten_mb:.0f} MB)",
                    f"{ten_mb / t_arc:.1f} MB/s vs {ten_mb / t_reg:.1f} MB/s "
                    f"(registry = {t_reg / t_arc:.2f}x)",
                ))  # fmt: skip

    cores = 2
    per_core = (s_all["bytes_scanned"] / 1e6) / t_all / cores
    layers_per_core_s = s_all["layers_scanned"] / t_all / cores
    rows.append(("measured per core", f"{per_core:.1f} MB/s uncompressed, {layers_per_core_s:.1f} layers/s"))
    # Docker Hub: ~16M unique layers, 30-50 TB (GitGuardian 2024); take 40 TB compressed, about
    # 2.5x that uncompressed, in 24 h on 100 nodes
    need = 40e12 * 2.5 / 86400 / 1e6
    cores_needed = need / per_core
    gbit = 40e12 / 86400 * 8 / 1e9
    rows.append((
        "paper: 16M layers / 40 TB (~100 TB uncompressed) in 24 h",
        f"{need:,.0f} MB/s uncompressed = {cores_needed:,.0f} cores "
        f"= {cores_needed / 100:.0f} cores/node x 100; "
        f"download {gbit:.1f} Gbit/s total ({gbit / 100 * 1000:.0f} Mbit/s/node); "
        f"Dask tasks {16e6 / 86400:.0f}/s (~1 ms each on one scheduler: fine)",
    ))  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
