"""The layer cache: same scan back, never a plaintext secret on disk, keys that miss when they must."""

from __future__ import annotations

import io
import json
import os
import secrets
import sqlite3
import string
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from plant import github_pat_classic

from conftest import Built
from layerleak.detect.engine import Engine
from layerleak.detect.examples import armor
from layerleak.detect.rules import load_rules
from layerleak.findings.redact import fingerprint, redact
from layerleak.layers.walk import LayerScan, scan_layer
from layerleak.models import Match
from layerleak.store.cache import SCHEMA_VERSION, CacheError, LayerCache, scanner_version
from layerleak.store.codec import hit_row
from layerleak.store.sealed import SealedMatch, plaintexts, seal

ENGINE = Engine(load_rules(()))


def _token() -> str:
    return github_pat_classic()  # made here, random, with the checksum GitHub's tokens carry


def _layer(files: dict[str, bytes], whiteouts: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name in whiteouts:
            tar.addfile(tarfile.TarInfo(name))
    return buf.getvalue()


def _scan(blob: bytes) -> LayerScan:
    return scan_layer("blobs/sha256/aa", io.BytesIO(blob), ENGINE)


def _same(a: LayerScan, b: LayerScan) -> None:
    assert [hit_row(h) for h in a.hits] == [hit_row(h) for h in b.hits]
    for field in ("key", "entries", "whiteouts", "opaque", "bytes_read", "files_scanned", "skipped"):
        assert getattr(a, field) == getattr(b, field), field


def test_round_trip_keeps_everything_but_plaintext(tmp_path: Path) -> None:
    token = _token()
    scan = _scan(_layer({"app/.env": f"GITHUB_TOKEN={token}\n".encode(), "app/x": b"nothing"},
                        whiteouts=("etc/.wh.old", "var/.wh..wh..opq")))
    assert [h.match.rule_id for h in scan.hits] == ["github-pat-classic"]
    with LayerCache(tmp_path / "c.sqlite3") as cache:
        assert cache.put("sha256:aa", ENGINE.ruleset, 123, scan)
        back = cache.get("blobs/sha256/aa", "sha256:aa", ENGINE.ruleset, 123)
    assert back is not None
    _same(back, scan)
    assert back.whiteouts == {"/etc/old"} and back.opaque == {"/var"}
    sealed = back.hits[0].match
    assert isinstance(sealed, SealedMatch)
    assert sealed.fingerprint == fingerprint("github-pat-classic", token)
    assert sealed.redacted == redact(token)
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert token.encode() not in on_disk
    assert token[10:30].encode() not in on_disk


def test_misses_on_other_rules_engine_or_size(tmp_path: Path) -> None:
    scan = _scan(_layer({"a": b"x"}))
    path = tmp_path / "c.sqlite3"
    with LayerCache(path, "1.0+a") as cache:
        cache.put("sha256:aa", "rules1", 10, scan)
        assert cache.get("k", "sha256:aa", "rules1", 10) is not None
        assert cache.get("k", "sha256:aa", "rules2", 10) is None
        assert cache.get("k", "sha256:aa", "rules1", 11) is None
        assert cache.get("k", "sha256:bb", "rules1", 10) is None
    with LayerCache(path, "1.0+b") as other:
        assert other.get("k", "sha256:aa", "rules1", 10) is None


def test_a_layer_cut_short_is_not_kept(tmp_path: Path) -> None:
    scan = _scan(_layer({"a": b"x" * 5000})[:1500])
    assert scan.error is not None
    with LayerCache(tmp_path / "c.sqlite3") as cache:
        assert not cache.put("sha256:aa", ENGINE.ruleset, 1, scan)
        assert cache.get("k", "sha256:aa", ENGINE.ruleset, 1) is None


def test_schema_versions(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    with LayerCache(path, "v") as cache:
        cache.put("sha256:aa", "r", 1, _scan(_layer({"a": b"x"})))
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION - 1),))
    db.commit()
    db.close()
    with LayerCache(path, "v") as cache:  # older: rebuilt empty
        assert cache.get("k", "sha256:aa", "r", 1) is None
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(CacheError, match="newer"):
        LayerCache(path, "v")


def test_unusable_cache_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError, match="--no-cache"):
        LayerCache(path, "v")


def test_sealed_secret_found_again_in_step_text() -> None:
    token = _token()
    pem = armor("BEGIN", "RSA PRIVATE KEY") + "\nMIIEow" + secrets.token_hex(20)
    steps = [f"RUN echo {token} > /root/.token", f"RUN printf '  {pem}' > k", None, "RUN true"]
    sealed = [seal(Match("github-pat-classic", token, 0, 1)), seal(Match("private-key", pem, 0, 1)),
              seal(Match("github-pat-classic", _token(), 0, 1))]  # this one is in no step
    assert sorted(plaintexts(sealed, steps)) == sorted([token, pem])
    live = Match("x", "plain-text-secret", 0, 1)
    assert plaintexts([live], []) == ["plain-text-secret"]


def test_scanner_version_names_the_code() -> None:
    version = scanner_version()
    assert version.startswith("0.") and len(version.split("+")[1]) == 16
    assert version.split("+")[2] in ("offline",) or version.split("+")[2].startswith("blocklist-")


def _cli(*args: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAYERLEAK_CACHE_DIR": str(cache_dir)}
    return subprocess.run([sys.executable, "-m", "layerleak", "scan", "--no-progress", "--format",
                           "json", *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_warm_cache_same_report_and_no_cache_writes_nothing(
    handmade_images: Built, tmp_path: Path
) -> None:
    target = handmade_images.target("multi")
    cold = _cli(target, cache_dir=tmp_path / "cache")
    warm = _cli(target, cache_dir=tmp_path / "cache")
    assert cold.returncode == warm.returncode == 1, cold.stderr
    assert json.loads(warm.stdout) == json.loads(cold.stdout)
    assert (tmp_path / "cache" / "layers.sqlite3").exists()
    bypass = _cli("--no-cache", target, cache_dir=tmp_path / "none")
    assert json.loads(bypass.stdout) == json.loads(cold.stdout)
    assert not (tmp_path / "none").exists()
    shown = _cli("--show-secrets", target, cache_dir=tmp_path / "cache")
    secrets_shown = [f["secret"] for f in json.loads(shown.stdout)["findings"]]
    assert secrets_shown and all(secrets_shown), "cached layers with hits are rescanned for plaintext"


def _archive(path: Path, layer: bytes, claimed_diff_id: str) -> None:
    """A docker-archive whose config claims ``claimed_diff_id`` for its one layer."""
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
         "diff_ids": [claimed_diff_id]}, "history": [{"created_by": "COPY . /app"}]}
    ).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["crafted:1"],
                            "Layers": ["l/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (("l/layer.tar", layer), ("config.json", config),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_crafted_archive_cannot_borrow_a_clean_layers_cached_result(tmp_path: Path) -> None:
    """The cache is never keyed by a digest an archive merely claims: an archive that names the
    diff_id of a clean layer scanned before, but holds a secret, is scanned, not served."""
    import hashlib

    clean = _layer({"app/readme.txt": b"nothing to see\n"})
    diff_id = "sha256:" + hashlib.sha256(clean).hexdigest()
    _archive(tmp_path / "clean.tar", clean, diff_id)
    first = _cli(str(tmp_path / "clean.tar"), cache_dir=tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    again = _cli(str(tmp_path / "clean.tar"), cache_dir=tmp_path / "cache")
    assert again.returncode == 0 and json.loads(again.stdout) == json.loads(first.stdout)

    token = _token()
    _archive(tmp_path / "crafted.tar", _layer({"app/.env": f"GITHUB_TOKEN={token}\n".encode()}),
             diff_id)
    crafted = _cli(str(tmp_path / "crafted.tar"), cache_dir=tmp_path / "cache")
    # scanned, not served: its secret is found, and its lie about the diff_id is an error (exit 2)
    assert crafted.returncode == 2, crafted.stderr
    assert "does not match its diff_id" in crafted.stderr
    assert [f["rule_id"] for f in json.loads(crafted.stdout)["findings"]] == ["github-pat-classic"]


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_cache_directory_and_files_are_private_even_when_left_loose(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh" / "layerleak"
    with LayerCache(fresh / "c.sqlite3", "v") as cache:
        cache.put("sha256:aa", "r", 1, _scan(_layer({"a": b"x"})))
        files = sorted(p.name for p in fresh.iterdir())
        assert files == ["c.sqlite3", "c.sqlite3-shm", "c.sqlite3-wal"]  # WAL open: all three
        assert {p.name: _mode(p) for p in fresh.iterdir()} == dict.fromkeys(files, 0o600)
    assert _mode(fresh) == 0o700
    # An earlier version (or a user) left them readable by everyone: the next open tightens all.
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    db = sqlite3.connect(loose / "c.sqlite3")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.commit()
    side = [loose / "c.sqlite3", loose / "c.sqlite3-wal", loose / "c.sqlite3-shm"]
    for path in side:
        os.chmod(path, 0o644)
    with LayerCache(loose / "c.sqlite3", "v") as cache:
        assert _mode(loose) == 0o700
        assert {p.name: _mode(p) for p in side} == {p.name: 0o600 for p in side}
        assert cache.put("sha256:aa", "r", 1, _scan(_layer({"a": b"x"})))
    db.close()


def test_a_shared_cache_directory_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with pytest.raises(CacheError, match="sticky"):
        LayerCache(shared / "c.sqlite3", "v")
    assert _mode(shared) == 0o777  # left as it was


def test_an_older_schema_leaves_no_old_text_in_the_file(tmp_path: Path) -> None:
    """Version 1 files could hold key material in their redacted column: rebuilt, it is gone from
    every byte of the file and its WAL, not just unlinked from the tables."""
    path = tmp_path / "c.sqlite3"
    marker = "".join(secrets.choice(string.ascii_letters) for _ in range(40))
    with LayerCache(path, "v") as cache:
        cache.put("sha256:aa", "r", 1, _scan(_layer({"a": b"x"})))
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='1' WHERE key='schema'")
    db.execute("CREATE TABLE old (x)")
    db.execute("DROP TABLE hits")
    db.execute("CREATE TABLE hits (redacted TEXT)")
    db.executemany("INSERT INTO hits VALUES (?)", [(marker,)] * 50)
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    assert marker.encode() in path.read_bytes()
    LayerCache(path, "v").close()
    for file in tmp_path.iterdir():
        assert marker.encode() not in file.read_bytes(), file.name
