"""The fast paths give exactly the findings of the straightforward one.

Straightforward: no keyword gate (the automaton reads every byte), one process, no cache, the
source's own streams. Fast: the default gate, worker processes, uncompressed layers split in
parts across them, and the cache cold then warm.
Every fixture image is scanned both ways and the whole results compared: findings, layer
summaries (bytes and files scanned), errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Built
from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.layers.scanned import LayerScan
from layerleak.models import ImageResult
from layerleak.scan import ScanOptions, scan_source
from layerleak.scan.layers import THREADED_GZIP_MIN, scan_located
from layerleak.sources.targets import open_target
from layerleak.store.cache import LayerCache

RULES = load_rules(())
PLAIN = Engine(RULES, gate="none")
FAST = Engine(RULES)


def _scan(target: str, engine: Engine, jobs: int = 1, cache: LayerCache | None = None,
          show: bool = False) -> list[ImageResult]:
    with open_target(target) as source:
        return scan_source(source, engine, ScanOptions(show_secrets=show), jobs=jobs, cache=cache)


def _targets(built: Built) -> list[str]:
    return [f"{form.transport}:{built.outdir / form.path}" for fx in built.fixtures.values()
            for form in fx.forms.values()]


def _check_all_ways(targets: list[str], cache_dir: Path) -> int:
    compared = 0
    with LayerCache(cache_dir / "layers.sqlite3") as cache:
        for target in targets:
            plain = _scan(target, PLAIN)
            assert _scan(target, FAST) == plain, f"gate changed results: {target}"
            assert _scan(target, FAST, jobs=2) == plain, f"workers changed results: {target}"
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr("layerleak.scan.layers.SHARD_MIN", 1)  # every uncompressed layer split
                assert _scan(target, FAST, jobs=2) == plain, f"layer parts changed results: {target}"
            assert _scan(target, FAST, jobs=2, cache=cache) == plain, f"cold cache: {target}"
            assert _scan(target, FAST, jobs=2, cache=cache) == plain, f"warm cache: {target}"
            shown = _scan(target, PLAIN, show=True)
            assert _scan(target, FAST, jobs=2, cache=cache, show=True) == shown, target
            compared += sum(len(i.findings) for i in plain)
    return compared


def test_handmade_images_same_every_way(handmade_images: Built, tmp_path: Path) -> None:
    found = _check_all_ways(_targets(handmade_images), tmp_path)
    assert found > 0, "the fixtures plant secrets: a comparison of empty results proves nothing"


@pytest.mark.builder
def test_leaky_image_same_every_way(leaky_image: Built, tmp_path: Path) -> None:
    found = _check_all_ways(_targets(leaky_image), tmp_path)
    assert found > 0


def test_threaded_gzip_layer_same_as_plain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gzip layer decompressed on a second thread reads the same, whole or truncated."""
    import io
    import tarfile

    from isal import igzip
    from plant import github_pat_classic

    from layerleak.sources.interface import BlobLocation

    secret = github_pat_classic()  # made here, random, with the checksum GitHub's tokens carry
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(40):
            data = (f"token = {secret}\n" if i == 33 else f"line {i}\n").encode() * 2000
            info = tarfile.TarInfo(f"etc/f{i}.conf")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = igzip.compress(buf.getvalue())
    monkeypatch.setattr("layerleak.scan.layers.THREADED_GZIP_MIN", 1)
    assert THREADED_GZIP_MIN > 1
    import layerleak.scan.layers as scan_layers_module

    fallbacks: list[str] = []  # the threaded attempt gave up: the layer was read again, plainly
    real = scan_layers_module.scan_located

    def counted(key: str, loc: BlobLocation, engine: Engine, threaded: bool = True) -> LayerScan:
        if not threaded:
            fallbacks.append(key)
        return real(key, loc, engine, threaded)

    monkeypatch.setattr(scan_layers_module, "scan_located", counted)
    for name, data in (("whole", blob), ("truncated", blob[: len(blob) * 3 // 4])):
        path = tmp_path / f"{name}.gz"
        path.write_bytes(data)
        loc = BlobLocation(str(path), 0, len(data))
        plain = scan_located("k", loc, PLAIN, threaded=False)
        fallbacks.clear()
        fast = scan_located("k", loc, FAST, threaded=True)
        assert fast == plain, name
        # whole: inflated on the thread; truncated: the damage makes it read again without it
        assert fallbacks == ([] if name == "whole" else ["k"]), name
        assert (plain.error is None) == (name == "whole")
        if name == "whole":
            assert {h.match.rule_id for h in plain.hits} == {"github-pat-classic"}
            assert len(plain.hits) == 2000
