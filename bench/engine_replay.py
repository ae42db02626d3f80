"""The detection engine alone: record every buffer a scan gives it, then replay them.

    python bench/engine_replay.py record docker-archive:/path/node.docker.tar /tmp/node.buffers
    python bench/engine_replay.py replay /tmp/node.buffers [--gate G] [--profile FILE] [--out F]

``record`` runs a real cold scan in one process (``-j 1``, no cache) and appends each buffer
``Engine._scan`` is given, with its path, to a file (as big as the text the image holds; keep it
in a scratch directory: it holds whatever the image holds). ``replay`` builds the built-in engine,
compiles every rule first (so that only scanning is timed), and runs ``Engine._scan`` over the
recorded buffers, printing the CPU seconds; ``--out`` saves the matches, so that two trees'
answers can be compared (``cmp``), ``--profile`` writes cProfile stats. docs/performance.md
("The engine's cost per byte") reports the figures.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from collections.abc import Iterator
from typing import Any


def _record(target: str, out: str) -> None:
    from layerleak.cli import main
    from layerleak.detect import engine as engine_mod

    # the buffers hold whatever the image holds, secrets included: readable by the owner only
    sink = os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
    scan = engine_mod.Engine._scan

    def recording(self: Any, data: bytes, path: str | None) -> Any:
        pickle.dump((path, bytes(data)), sink, protocol=5)
        return scan(self, data, path)

    engine_mod.Engine._scan = recording  # type: ignore[method-assign]
    sys.argv = ["layerleak", "scan", "--no-cache", "--no-progress", "-j", "1", "--min-confidence", "low",
                "--exit-zero", "--format", "json", "-o", out + ".json", target]
    try:
        main()
    except SystemExit:
        pass
    finally:
        sink.close()


def _buffers(path: str) -> Iterator[tuple[str | None, bytes]]:
    with open(path, "rb") as f:
        while True:
            try:
                yield pickle.load(f)  # noqa: S301 - a file this script wrote
            except EOFError:
                return


def _replay(path: str, gate: str, profile: str | None, out: str | None) -> None:
    from layerleak.detect.engine import Engine
    from layerleak.detect.rules import load_rules

    buffers = list(_buffers(path))
    engine = Engine(load_rules(), gate=gate).prepare()
    for i in range(len(engine.rules)):
        engine.compiled(i)
    found: list[list[tuple[str, str, int, int]]] = []

    def run() -> None:
        for name, data in buffers:
            found.append([(m.rule_id, m.secret, m.offset, m.line) for m in engine._scan(data, name)])

    start = time.process_time()
    if profile:
        import cProfile

        cProfile.runctx("run()", globals(), {"run": run}, profile)
    else:
        run()
    cpu = time.process_time() - start
    size = sum(len(d) for _, d in buffers) / 1e6
    print(f"{len(buffers)} buffers, {size:.0f} MB, gate {engine.gate}: {cpu:.2f} s CPU, "
          f"{sum(map(len, found))} matches")
    if out:
        with open(out, "wb") as f:
            pickle.dump(found, f)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("target")
    rec.add_argument("out")
    rep = sub.add_parser("replay")
    rep.add_argument("buffers")
    rep.add_argument("--gate", default="auto")
    rep.add_argument("--profile")
    rep.add_argument("--out")
    args = parser.parse_args()
    if args.command == "record":
        _record(args.target, args.out)
    else:
        _replay(args.buffers, args.gate, args.profile, args.out)


if __name__ == "__main__":
    main()
