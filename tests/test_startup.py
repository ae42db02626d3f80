"""Start-up stays light: the command line imports the scanner only when a command runs it.

Not timed (timings belong in bench/): each test imports in a fresh interpreter and checks which
modules ``sys.modules`` holds afterwards.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys

import pytest

# Third-party libraries that only scanning (or one kind of source, or one report format) needs.
HEAVY_LIBRARIES = (
    "numpy", "cryptography", "dulwich", "yaml", "rich", "docker", "requests", "urllib3", "hyperscan",
    "ahocorasick", "zstandard", "isal", "platformdirs", "multiprocessing", "concurrent.futures",
)
# Our own modules that walk layers, decode entries, open sources, cache or render.
SCANNER_MODULES = (
    "layerleak.detect.engine", "layerleak.detect.rules", "layerleak.layers.walk", "layerleak.entries",
    "layerleak.scan", "layerleak.sources.targets", "layerleak.sources.archive", "layerleak.store",
    "layerleak.report.table", "layerleak.report.html", "layerleak.report.sarif",
    "layerleak.report.json_report", "layerleak.report.progress",
)
# What scanning a layer needs but a rescan answered from the cache does not.
WALK_MODULES = (
    "numpy", "cryptography", "dulwich", "yaml", "multiprocessing", "concurrent.futures",
    "layerleak.layers.walk", "layerleak.entries.content", "layerleak.entries.nested",
    "layerleak.entries.decoders", "layerleak.entries.keystores", "layerleak.entries.credfiles",
    "layerleak.entries.gitrepo", "layerleak.entries.pubkeys", "isal.igzip_threaded",
)


def _loaded(code: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules among ``prefixes`` (a package and its submodules) that running ``code`` in a
    fresh interpreter leaves in ``sys.modules``."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"p = {list(prefixes)!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if any(m == x or m.startswith(x + '.') for x in p))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout.splitlines()[-1]))


def test_the_probe_sees_a_module_that_is_imported() -> None:
    assert _loaded("import layerleak.detect.engine", ("layerleak.detect.engine",)) == [
        "layerleak.detect.engine"
    ]


@pytest.mark.parametrize("prefixes", [HEAVY_LIBRARIES, SCANNER_MODULES], ids=["libraries", "scanner"])
def test_importing_the_cli_loads_no_scanner(prefixes: tuple[str, ...]) -> None:
    assert _loaded("import layerleak.cli", prefixes) == []


def test_version_runs_without_the_scanner() -> None:
    code = (
        "import sys\nsys.argv = ['layerleak', '--version']\nimport layerleak.cli\n"
        "try:\n    layerleak.cli.main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
    )
    assert _loaded(code, HEAVY_LIBRARIES + SCANNER_MODULES) == []


def test_what_a_cached_rescan_imports_holds_no_layer_walk() -> None:
    """Everything a scan imports before it reads a layer: rules, engine, targets, the cache,
    the findings and the JSON report. The walk and its decoders are imported on a cache miss."""
    code = (
        "import layerleak.cli\n"
        "from layerleak.detect.engine import Engine\n"
        "from layerleak.detect.rules import load_rules\n"
        "from layerleak.scan import scan_targets\n"
        "from layerleak.store.cache import LayerCache\n"
        "from layerleak.report.formats import renderer\n"
        "renderer('json')\n"
        "Engine(load_rules(()))\n"
    )
    assert _loaded(code, WALK_MODULES) == []


def test_a_lazily_built_engine_finds_what_a_prepared_one_finds() -> None:
    """The automata and gates are built at the first scan; built up front (prepare(), before
    workers are forked) they must give the same matches, on a path-restricted file too."""
    from layerleak.detect.engine import Engine
    from layerleak.detect.examples import armor
    from layerleak.detect.rules import load_rules

    rules = load_rules(())
    body = base64.encodebytes(bytes(random.Random(7).randrange(256) for _ in range(900))).decode()
    pem = f"{armor('BEGIN', 'RSA PRIVATE KEY')}\n{body}{armor('END', 'RSA PRIVATE KEY')}\n"
    data = (
        "password = 'Zq8vLm3nXp2wRt7y'\n" + pem + "url = postgres://admin:Zq8vLm3nXp2wRt7y@db.internal/app\n"
    ).encode()
    for path in ("/srv/app/settings.py", "/root/.env"):
        lazy = Engine(rules, gate="re2").scan(data, path)
        eager = Engine(rules, gate="re2").prepare().scan(data, path)
        assert lazy == eager
        assert lazy  # the sample does hold findings
