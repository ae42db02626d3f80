"""atheris (libFuzzer for Python) over the entry points of targets.py.

    python tests/fuzz/harness.py TARGET [libFuzzer flags] [CORPUS_DIR...]
    python tests/fuzz/harness.py layer_walk -max_total_time=60 tests/fuzz/corpus/layer_walk

Coverage-guided: layerleak's modules are instrumented. An input that raises anything but our
own error types is a crash, written by libFuzzer as ``crash-<sha1>`` in the current directory.
tests/fuzz/test_atheris.py runs each target for a bounded time in CI.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["layerleak"]):
    import targets


def main() -> None:
    name = sys.argv[1]
    target = targets.TARGETS[name]

    def one(data: bytes) -> None:
        with contextlib.suppress(*targets.ALLOWED):
            target(data)

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
