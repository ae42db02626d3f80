"""Precision benchmark (not a test): scan the realistic image and print findings by confidence and
rule. Target: nothing above ``low`` on an image that holds no secret of its own.

    bench/build_image.sh            # once: builds bench/out/realistic.docker.tar (Debian + Python)
    python3 bench/precision.py      # or: python3 bench/precision.py docker-archive:OTHER.tar

The other images of docs/precision.md, built the same way (buildah, Debian's and the language's
own package registry):

    bench/build_node_image.sh       # bench/out/node.docker.tar: npm install of 28 popular SDKs
    bench/build_java_image.sh       # bench/out/java.docker.tar: a JRE and Debian's Java libraries
    bench/build_go_image.sh         # bench/out/go.docker.tar: Go programs and Go SDK sources (Debian)

With ``--peers /tmp/peers`` (the peers' binaries, /work/shared/PEERS.md), Betterleaks, Kingfisher
and Trivy scan the same image too (``bench/peers.py``), and their counts are printed next to ours:
all their findings, and those above their own ``low``.

With ``--plant``, a copy of the image gets one extra layer of credential files with fresh fake
secrets (the same kinds the tests plant), and the run also checks that every planted secret is
found at medium confidence or above: a precision gain must never lose a planted secret.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "fixtures"))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tests" / "entries"))


def scan(target: str) -> tuple[dict[str, object], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "layerleak", "scan", target, "--format", "json", "--no-progress",
         "--min-confidence", "low", "--show-secrets"],
        capture_output=True, text=True, check=False,
    )
    if done.returncode not in (0, 1):
        sys.exit(f"scan failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout), time.monotonic() - started


def planted_copy(image: Path, outdir: Path) -> tuple[Path, list[tuple[str, str, int, str]]]:
    """The docker-archive ``image`` plus one layer of credential files on top."""
    import handmade
    from test_credfiles import _credential_image

    made, expect, _ = _credential_image(outdir)
    with tarfile.open(made) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
        top = t.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    with tarfile.open(image) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(t.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        layers = [t.extractfile(p).read() for p in manifest[0]["Layers"]]  # type: ignore[union-attr]
    history = [h for h in config.get("history", []) if not h.get("empty_layer")]
    history = history[: len(layers)] + [{"created_by": "COPY creds/ / # planted"}]
    new_config = handmade.image_config([*layers, top], [{"created_by": h.get("created_by", "")}
                                                        for h in history])
    out = outdir / "planted.tar"
    handmade.write_docker_archive(out, [handmade.LegacyImage(["bench/planted:latest"], [*layers, top],
                                                             new_config)])
    return out, [(e.rule_id, e.path, e.line, e.secret) for e in expect]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target", nargs="?", default=f"docker-archive:{HERE / 'out/realistic.docker.tar'}")
    parser.add_argument("--plant", action="store_true", help="also check planted secrets are found")
    parser.add_argument("--peers", type=Path, help="folder of the peers' binaries: count theirs too")
    parser.add_argument("--peer-timeout", type=float, default=900, help="seconds per peer")
    args = parser.parse_args()
    target, expect = args.target, []
    tmp = tempfile.TemporaryDirectory()
    if args.plant:
        image = Path(target.split(":", 1)[1])
        planted, expect = planted_copy(image, Path(tmp.name))
        target = f"docker-archive:{planted}"
    report, seconds = scan(target)
    findings = report["findings"]
    assert isinstance(findings, list)
    counts = collections.Counter((f["confidence"], f["rule_id"], f["reason"] or "") for f in findings)
    print(f"{target}: {len(findings)} findings in {seconds:.1f}s")
    for (confidence, rule, reason), n in sorted(counts.items()):
        print(f"  {confidence:<7} {rule:<32} {reason:<8} {n}")
    planted = {(e[0], e[1], e[2]): e[3] for e in expect}
    above_low = [f for f in findings if f["confidence"] != "low"
                 and (f["rule_id"], f["path"], f["line"]) not in planted]
    for f in above_low:
        where = f"{f['path']}:{f['line']} {f['inner_path'] or ''}"
        print(f"  ABOVE LOW: {f['confidence']} {f['rule_id']} {where}")
    found = {(f["rule_id"], f["path"], f["line"]): f["secret"] for f in findings if f["confidence"] != "low"}
    lost = [k for k, secret in planted.items() if found.get(k) != secret]
    for k in lost:
        print(f"  LOST: {k}")
    print(f"above low (not planted): {len(above_low)}; planted: {len(planted)}, lost: {len(lost)}")
    if args.peers:
        import peers

        image = Path(target.split(":", 1)[1])
        for c in peers.count_all(args.peers, image.resolve(), args.peer_timeout):
            print(f"  peer {c.peer:<12} findings {c.total}, above its low {c.above_low} ({c.seconds:.0f} s)"
                  + (f" [{c.note}]" if c.note else ""))
    sys.exit(1 if above_low or lost else 0)


if __name__ == "__main__":
    main()
