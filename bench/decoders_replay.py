"""The value decoders' pass over text alone: record every text a scan gives ``_runs``, then replay.

    python bench/decoders_replay.py record docker-archive:/path/node.docker.tar /tmp/node.texts
    python bench/decoders_replay.py replay /tmp/node.texts [--rounds N]

``record`` runs a real cold scan in one process (``-j 1``, no cache) and appends each text
``entries.decoders._runs`` is given (the blocks of whole lines ``_ValueTap`` hands it, and the
decoded values ``decoded_matches`` looks into again) to a file, as big as the text the image holds:
keep it in a scratch directory, it holds whatever the image holds. ``replay`` runs the reference
``_runs_by_finditer`` and ``_runs`` over the recorded texts, alternately, printing the CPU seconds
of each round, and checks that both give the same runs, text by text (offsets, decoded bytes,
decoder). docs/performance.md ("The value decoders' pass over text") reports the figures.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any


def _record(target: str, out: str) -> None:
    from layerleak.cli import main
    from layerleak.entries import decoders

    # the texts hold whatever the image holds, secrets included: readable by the owner only
    sink = os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
    runs = decoders._runs

    def recording(text: bytes, *args: Any) -> Any:
        pickle.dump(bytes(text), sink, protocol=5)
        return runs(text, *args)

    decoders._runs = recording  # type: ignore[assignment]
    sys.argv = ["layerleak", "scan", "--no-cache", "--no-progress", "-j", "1", "--min-confidence", "low",
                "--exit-zero", "--format", "json", "-o", out + ".json", target]
    try:
        main()
    except SystemExit:
        pass
    finally:
        sink.close()


def _texts(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while True:
            try:
                yield pickle.load(f)  # noqa: S301 - a file this script wrote
            except EOFError:
                return


def _timed(runs: Callable[[bytes], Iterator[Any]], texts: list[bytes]) -> tuple[float, list[Any]]:
    out = []
    t0 = time.process_time()
    for text in texts:
        out.append([(s, e, d, dec.marker) for s, e, d, dec in runs(text)])
    return time.process_time() - t0, out


def _replay(path: str, rounds: int) -> None:
    from layerleak.entries.decoders import _runs, _runs_by_finditer

    texts = list(_texts(path))
    size = sum(len(t) for t in texts)
    print(f"{len(texts)} texts, {size / 1e6:.1f} MB", file=sys.stderr)
    for i in range(rounds):
        old, expected = _timed(_runs_by_finditer, texts)
        new, got = _timed(_runs, texts)
        runs = sum(len(r) for r in got)
        same = "identical" if got == expected else "DIFFERENT"
        print(f"round {i + 1}: finditer {old:.2f} s, _runs {new:.2f} s CPU; {runs} runs, {same}",
              file=sys.stderr)
        if got != expected:
            bad = next(k for k in range(len(texts)) if got[k] != expected[k])
            print(f"first difference in text {bad}", file=sys.stderr)
            sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("target")
    rec.add_argument("out")
    rep = sub.add_parser("replay")
    rep.add_argument("texts")
    rep.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.command == "record":
        _record(args.target, args.out)
    else:
        _replay(args.texts, args.rounds)


if __name__ == "__main__":
    main()
