"""The fast paths give exactly the findings of the straightforward one.

Straightforward: no keyword gate (the automaton reads every byte), one process, no cache, the
source's own streams. Fast: the default gate, worker processes, uncompressed layers split in
parts across them, and the cache cold then warm.
Every fixture image is scanned both ways and the whole results compared: findings, layer
summaries (bytes and files scanned), errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Built
from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.layers.scanned import LayerScan
from layerleak.models import ImageResult
from layerleak.scan import ScanOptions, scan_source
from layerleak.scan.layers import THREADED_GZIP_MIN, _is_gzip, scan_located
from layerleak.sources.interface import BlobLocation
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
                # every gzip layer inflated to a temporary file and split too
                mp.setattr("layerleak.scan.layers._worth_spooling", lambda loc, total, jobs: _is_gzip(loc))
                assert _scan(target, FAST, jobs=2) == plain, f"spooled layer parts changed results: {target}"
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


# --- the pipelined schedule: the workers start before every layer is walked ---------------------


def _layer(files: int, secret: str, tail: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(files):
            data = f"line {i}\n".encode() * (i * 53 % 900)
            data += f"token = {secret}\n".encode() if i % 23 == 5 else b""
            info = tarfile.TarInfo(f"srv/{'deep-' * (i % 30)}/f{i}.conf")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, data in tail:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _damaged_late(blob: bytes) -> bytes:
    """The header of a member near the end with a byte changed: its checksum disagrees."""
    import io
    import tarfile

    offset = [m.offset for m in tarfile.open(fileobj=io.BytesIO(blob)).getmembers()][-3]
    bad = bytearray(blob)
    bad[offset + 5] ^= 0x20
    return bytes(bad)


def _archive(tmp_path: Path, layers: list[bytes]) -> str:
    import handmade

    config = handmade.image_config(layers, [{"created_by": f"step {i}"} for i in range(len(layers))])
    path = tmp_path / "image.tar"
    handmade.write_docker_archive(path, [handmade.LegacyImage(["t:1"], layers, config)])
    return f"docker-archive:{path}"


def test_a_schedule_hands_out_exactly_the_tasks_of_the_walk_done_first(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The first tasks are handed out while the layers are walked; the tasks in the end are the
    ones a walk of every layer first gives (tarfile's member offsets, cut by split_points),
    largest first; a layer whose walk gives up late (a git repository, a damaged header) is
    one task, and the parts of it handed out early are not among the tasks."""
    import io
    import tarfile

    from plant import github_pat_classic

    from layerleak.layers import tarindex
    from layerleak.scan.layers import LayerPlan, _Schedule, _Task

    secret = github_pat_classic()
    blobs = {
        "git": _layer(400, secret, (("srv/app/.git/HEAD", b"ref: refs/heads/main\n"),)),
        "plain": _layer(300, secret),
        "damaged": _damaged_late(_layer(200, secret)),
        "small": _layer(3, secret),
    }
    path = tmp_path / "layers"
    path.write_bytes(b"".join(blobs.values()))
    located, at = {}, 0
    for key, blob in blobs.items():
        located[key] = BlobLocation(str(path), at, len(blob))
        at += len(blob)
    monkeypatch.setattr("layerleak.scan.layers.SHARD_MIN", 4096)
    plan = LayerPlan(jobs=2)
    with _Schedule(located, plan) as schedule:
        early = list(schedule.early(2))
        tasks = schedule.tasks()
    assert len(early) == 2 and all(t.key == "git" and not t.whole for t in early)  # the largest layer
    assert tasks == sorted(tasks, key=lambda t: t.size, reverse=True)
    expected: list[_Task] = []
    for key, loc in located.items():
        size = loc.size
        target = schedule.target
        if key in ("git", "damaged") or size < 2 * target:
            expected.append(_Task(key, loc))
            continue
        truth = [m.offset for m in tarfile.open(fileobj=io.BytesIO(blobs[key])).getmembers()]
        points = tarindex.split_points(truth, size, -(-size // target))
        assert len(points) >= 3
        expected.extend(_Task(key, loc, lo, hi) for lo, hi in zip([0, *points], [*points, None], strict=True))
    assert sorted(tasks, key=lambda t: (t.key, t.start)) == sorted(expected, key=lambda t: (t.key, t.start))
    assert not set(early) & set(tasks)


def test_a_pipelined_scan_finds_what_the_straightforward_scan_finds(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts handed out early, of a layer whose walk then gives up (a git repository near its
    end) or that is damaged near its end, leave no trace: the whole image result, layer
    summaries and errors included, is the one-process, no-gate scan's."""
    from plant import github_pat_classic

    from layerleak.scan.layers import _Schedule, _Task

    early: list[_Task] = []
    handed_out = _Schedule.early

    def recorded(self: _Schedule, count: int) -> Iterator[_Task]:
        for task in handed_out(self, count):
            early.append(task)
            yield task

    monkeypatch.setattr(_Schedule, "early", recorded)
    secret = github_pat_classic()
    for first in ("git", "damaged", "plain"):
        layers = {
            "git": _layer(500, secret, (("srv/app/.git/config", b"[core]\n"),)),
            "damaged": _damaged_late(_layer(500, secret)),
            "plain": _layer(500, secret),
        }
        order = [layers.pop(first), *layers.values(), _layer(2, secret)]  # the first is the largest
        (tmp_path / first).mkdir()
        target = _archive(tmp_path / first, order)
        plain = _scan(target, PLAIN)
        early.clear()
        with monkeypatch.context() as mp:
            mp.setattr("layerleak.scan.layers.SHARD_MIN", 4096)
            fast = _scan(target, FAST, jobs=2)
        assert len(early) == 2 and not any(t.whole for t in early), first  # parts of the first layer
        assert fast == plain, first
        assert sum(len(i.findings) for i in plain) > 0
        assert any(i.errors for i in plain)  # the damaged layer's


def test_hash_region_is_the_sha256_of_the_region(tmp_path: Path) -> None:
    import hashlib
    import os

    from layerleak.scan.layers import HASH_BUFFER, hash_region

    data = os.urandom(HASH_BUFFER * 3 + 777)
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1000 + data + b"y" * 10)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert hash_region(BlobLocation(str(path), 1000, len(data))) == digest
    assert hash_region(BlobLocation(str(path), 1000, len(data) + 11)) is None  # past the end of the file


# --- a big gzip layer inflated to a temporary file, then cut -------------------------------------


def _oci_gzip(root: Path, layers: list[bytes], truncate_first: bool = False) -> str:
    import handmade

    blobs = [handmade.Blob(handmade.gzipped(layer), handmade.MT_OCI_LAYER_GZIP) for layer in layers]
    if truncate_first:
        blobs[0] = handmade.Blob(blobs[0].data[: len(blobs[0].data) * 2 // 3], handmade.MT_OCI_LAYER_GZIP)
    config = handmade.image_config(layers, [{"created_by": f"step {i}"} for i in range(len(layers))])
    manifest = handmade.oci_manifest(config, blobs)
    index = {"schemaVersion": 2, "manifests": [manifest.descriptor(
        annotations={"org.opencontainers.image.ref.name": "t"})]}
    handmade.write_dir(root, handmade.oci_layout_files(index, [config, manifest, *blobs]))
    return f"oci:{root}:t"


@pytest.mark.parametrize("first", ["plain", "git", "damaged", "truncated"])
def test_a_spooled_gzip_layer_scans_as_the_straightforward_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    """The largest layer, gzip, is inflated to a temporary file by a thread of the parent and
    its parts shared by the workers: the whole result (digests, layer summaries, errors) is the
    one-process, no-gate scan's. A layer that cannot be cut (a git repository) is scanned whole
    from the plain file; tar damage inside sends it to the straightforward path; a truncated
    blob makes the spool give up. Nothing is left in the temporary directory."""
    import tempfile

    from plant import github_pat_classic

    from layerleak.scan.spool import Spool

    secret = github_pat_classic()
    big = {
        "plain": _layer(500, secret),
        "truncated": _layer(500, secret),
        "git": _layer(500, secret, (("srv/app/.git/config", b"[core]\n"),)),
        "damaged": _damaged_late(_layer(500, secret)),
    }[first]
    target = _oci_gzip(tmp_path / "image", [big, _layer(3, secret)], truncate_first=first == "truncated")
    plain = _scan(target, PLAIN)
    spooled: list[bool] = []  # whether each spool gave a plain file
    wait = Spool.wait

    def recorded(self: Spool) -> BlobLocation | None:
        got = wait(self)
        spooled.append(got is not None)
        return got

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with monkeypatch.context() as mp:
        mp.setattr(Spool, "wait", recorded)
        mp.setattr(tempfile, "tempdir", str(scratch))
        mp.setattr("layerleak.scan.layers.SHARD_MIN", 4096)
        fast = _scan(target, FAST, jobs=2)
    assert spooled == [first != "truncated"], spooled
    assert fast == plain, first
    assert list(scratch.iterdir()) == []
    assert sum(len(i.findings) for i in plain) > 0
    assert bool(any(i.errors for i in plain)) == (first in ("damaged", "truncated"))
