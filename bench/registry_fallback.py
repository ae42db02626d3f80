"""How long a registry client takes to learn which scheme a loopback registry speaks.

    python bench/registry_fallback.py [--runs 5]

Starts a plain-HTTP docker-registry on 127.0.0.1 (tests/services.py) and times, over fresh
clients: the scheme probe (``RegistryClient.base()``) against it, and the same probe against a
port where nothing listens (HTTPS and HTTP refused: the "cannot reach" error). Before the fix the
first took about 7 s (urllib3's retry backoff on the failed HTTPS attempt); it must be well
under a second now. Prints the median and the worst of each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import services  # noqa: E402
from layerleak.errors import RegistryError  # noqa: E402
from layerleak.sources.registry import RegistryClient, parse_reference  # noqa: E402
from layerleak.sources.registry_tls import TrustStore  # noqa: E402


def probe_seconds(host: str) -> float:
    client = RegistryClient(parse_reference(f"{host}/x"), None, TrustStore(False), f"docker://{host}/x")
    started = time.perf_counter()
    try:
        client.base()
    except RegistryError:
        pass
    finally:
        elapsed = time.perf_counter() - started
        client.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with services.start_registry(Path(tmp) / "registry", tls=False, auth=False) as reg:
            plain = [probe_seconds(reg.host) for _ in range(args.runs)]
        refused_host = f"127.0.0.1:{services.free_port()}"
        refused = [probe_seconds(refused_host) for _ in range(args.runs)]
    for name, times in (("plain-HTTP registry", plain), ("refused port", refused)):
        median, worst = statistics.median(times) * 1000, max(times) * 1000
        print(f"{name:20} median {median:7.1f} ms   worst {worst:7.1f} ms")


if __name__ == "__main__":
    main()
