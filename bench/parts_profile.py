"""Where a cold scan's worker time goes, by stage: every layer part of an image scanned in this one
process (as the workers would scan them), under a profiler, its time summed into stages.

    python bench/parts_profile.py /work/bench-out/node.docker.tar [--sampler py-spy] [--top 15]

The parts are the ones a 2-job scan hands its workers (``scan.layers._tasks``); the parent's
own work (start-up, the split, merging, the report) is not in it. ``cpu`` is the CPU seconds of
scanning every part without a profiler. The stage table is from cProfile (``tottime`` per
function, which inflates Python-heavy stages) or, with ``--sampler py-spy`` when py-spy is
installed (a development tool, not a dependency), from sampling, which does not. The stages:

- decoders: the value decoders (``entries/decoders.py`` but its views: the passes, the tap)
- engine: ``detect/engine.py`` and RE2 calls made from it; hyperscan: the keyword gate's scan
- tar: tarfile and ``layers/targuard``; inflate: gzip, zip, zlib; pyc: ``.pyc`` string views
- glue: the rest (the walk, the content pipeline, classification, provenance, public keys)

docs/performance.md quotes its tables, before and after each change.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time


def _tasks(path: str) -> tuple[list[object], object]:
    from layerleak.detect.engine import Engine
    from layerleak.detect.rules import load_rules
    from layerleak.scan import layers
    from layerleak.sources.archive import TarArchiveSource

    source = TarArchiveSource(path, path, None, None)
    located = {}
    for image in source.images():
        for ref in image.layers:
            loc = source.locate(ref.key)
            if loc is not None:
                located[ref.key] = loc
    engine = Engine(load_rules()).prepare()
    return list(layers._tasks(located, layers.LayerPlan(jobs=2))), engine


def _run(tasks: list[object], engine: object) -> int:
    from layerleak.scan.layers import scan_part

    return sum(len(scan_part(t, engine).hits) for t in tasks)  # type: ignore[arg-type]


def _stage(filename: str, name: str, chain: str) -> str:
    where = f"{filename}:{name} {chain}"
    if "pyc" in name or "_record_starts" in name or "_is_text" in name:
        return "pyc"
    if "decoders.py" in filename and "view" not in name and name != "scan_leaf":
        return "decoders"  # the value decoders: their passes, the tap that feeds them
    if "gate.py" in filename or "hyperscan" in where.lower():
        return "hyperscan"
    if "engine.py" in filename or "literals.py" in filename or "filters.py" in filename:
        return "engine"
    if "re2" in filename or "re2._re2" in name:
        return "decoders" if "decoders" in chain else "engine"
    if "tarfile.py" in filename or "targuard.py" in filename:
        return "tar"
    if any(m in filename for m in ("gzip.py", "zipfile", "zlib", "igzip")) or "decompress" in name:
        return "inflate"
    return "glue"


def _cprofile_stages(tasks: list[object], engine: object) -> collections.Counter[str]:
    prof = cProfile.Profile()
    prof.enable()
    _run(tasks, engine)
    prof.disable()
    stats = pstats.Stats(prof)
    out: collections.Counter[str] = collections.Counter()
    for (filename, _line, name), (_cc, _nc, tottime, _ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
        chain = " ".join(f"{c[0]}:{c[2]}" for c in callers)
        out[_stage(filename, name, chain)] += tottime
    return out


def _pyspy_stages(path: str) -> collections.Counter[str]:
    out: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.txt")
        subprocess.run(["py-spy", "record", "-r", "200", "-f", "raw", "-o", raw, "--", sys.executable,
                        __file__, path, "--only-run"], check=True, capture_output=True)
        with open(raw) as f:
            for line in f:
                stack, count = line.rsplit(" ", 1)
                frames = stack.split(";")
                if not any("scan_part" in fr for fr in frames):
                    continue  # start-up, the split: not the workers' time
                leaf = frames[-1]
                name, _, rest = leaf.partition(" (")
                filename = rest.rsplit(":", 1)[0]
                out[_stage(filename, name.split(".")[-1], stack)] += int(count) / 200
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image", help="a docker-archive file")
    parser.add_argument("--sampler", choices=("cprofile", "py-spy"), default="cprofile")
    parser.add_argument("--only-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tasks, engine = _tasks(args.image)
    if args.only_run:
        _run(tasks, engine)
        return 0
    started = time.process_time()
    hits = _run(tasks, engine)
    cpu = time.process_time() - started
    if args.sampler == "py-spy":
        if shutil.which("py-spy") is None:
            print("py-spy is not installed (pip install py-spy)", file=sys.stderr)
            return 2
        stages = _pyspy_stages(args.image)
    else:
        stages = _cprofile_stages(tasks, engine)
    total = sum(stages.values()) or 1.0
    print(f"{os.path.basename(args.image)}: {len(tasks)} parts, {hits} hits, cpu {cpu:.2f} s (no profiler)")
    print("| stage | share | CPU s (scaled to the run without profiler) |")
    print("|---|---|---|")
    for stage, seconds in stages.most_common():
        print(f"| {stage} | {100 * seconds / total:.1f}% | {cpu * seconds / total:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
