"""The results database, on SQLite and on a real PostgreSQL server (initdb/pg_ctl on loopback).

Each layer is recorded once with its sealed hits; images sharing a layer each get their own
status from their own stack; ``where`` finds every image holding a secret; no secret is ever
written; a database of the first schema revision is upgraded in place; a newer, locked or
read-only database is one clear line and exit 2.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import secrets
import sqlite3
import string
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

import services
from conftest import Built
from layerleak.detect.engine import Engine
from layerleak.detect.rules import load_rules
from layerleak.findings.build import assemble
from layerleak.layers.walk import LayerScan, scan_layer
from layerleak.sources.interface import ImageDesc, LayerRef
from layerleak.store.codec import hit_row
from layerleak.store.results import db as results
from layerleak.store.results.db import DatabaseError, ImageRecord, ResultsDB
from layerleak.store.sealed import SealedMatch, seal

ENGINE = Engine(load_rules(()))
RULESET, SCANNER = ENGINE.ruleset, "test-scanner"


def _token() -> str:
    alphabet = string.ascii_letters + string.digits
    return "ghp_" + "".join(secrets.choice(alphabet) for _ in range(36))  # made here, fake


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


def _sealed_scan(key: str, blob: bytes) -> LayerScan:
    scan = scan_layer(key, io.BytesIO(blob), ENGINE)
    scan.hits = [type(h)(path=h.path, match=seal(h.match), inner_path=h.inner_path) for h in scan.hits]
    return scan


# --- the two backends ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Postgres]:
    try:
        with services.start_postgres(tmp_path_factory.mktemp("pg")) as pg:
            yield pg
    except services.ServiceUnavailable as exc:
        message = f"{'=' * 20} POSTGRESQL NOT STARTED {'=' * 20}\n{exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


_names = itertools.count()


def _new_database(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return str(tmp_path / "results.sqlite3")
    pg: services.Postgres = request.getfixturevalue("postgres")
    name = f"t{next(_names)}"
    engine = sa.create_engine(results.database_url(pg.url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return pg.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _new_database(request.param, tmp_path, request)


@pytest.fixture
def db(db_url: str) -> Iterator[ResultsDB]:
    store = ResultsDB(db_url)
    yield store
    store.close()


def _all_text(store: ResultsDB) -> str:
    """Every value of every table, as text (and the SQLite file's bytes, where there is one)."""
    parts: list[str] = []
    with store.engine.connect() as conn:
        for table in results.t.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                for value in row:
                    if isinstance(value, bytes):
                        with contextlib.suppress(zlib.error):
                            value = zlib.decompress(value)
                        parts.append(value.decode("utf-8", "replace"))
                    else:
                        parts.append(str(value))
    if store.sqlite and store.url.database:
        for suffix in ("", "-wal"):
            path = Path(store.url.database + suffix)
            if path.exists():
                parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)


# --- layers -------------------------------------------------------------------------------------


def test_a_layer_is_recorded_once_with_its_sealed_hits(db: ResultsDB) -> None:
    token = _token()
    scan = _sealed_scan("blobs/sha256/aa", _layer({"app/.env": f"GITHUB_TOKEN={token}\n".encode()}))
    assert len(scan.hits) == 1
    assert db.record_layer("blob:sha256:aa", RULESET, SCANNER, 10, scan) is True
    assert db.record_layer("blob:sha256:aa", RULESET, SCANNER, 10, scan) is False  # exactly once
    assert db.counts()["layers"] == 1 and db.counts()["layer_hits"] == 1
    assert db.known_layers(["blob:sha256:aa", "blob:sha256:bb"], RULESET, SCANNER) == {"blob:sha256:aa"}
    assert db.known_layers(["blob:sha256:aa"], RULESET, "another-scanner") == set()  # scanner changed

    back = db.layer_scan("blob:sha256:aa", RULESET, SCANNER, "blobs/sha256/xx")
    assert back is not None and back.key == "blobs/sha256/xx"
    assert [hit_row(h) for h in back.hits] == [hit_row(h) for h in scan.hits]
    assert isinstance(back.hits[0].match, SealedMatch)
    assert back.entries == scan.entries and back.bytes_read == scan.bytes_read
    assert token not in _all_text(db)
    assert scan.hits[0].match.fingerprint in _all_text(db)  # type: ignore[union-attr]


def test_a_layer_cut_short_is_never_recorded(db: ResultsDB) -> None:
    scan = LayerScan(key="k", error="layer is truncated")
    assert db.record_layer("blob:sha256:cc", RULESET, SCANNER, 1, scan) is False
    assert db.counts()["layers"] == 0


# --- images -------------------------------------------------------------------------------------


def _image(name: str, keys: list[str]) -> ImageDesc:
    layers = tuple(
        LayerRef(i, f"blobs/sha256/{k}", f"sha256:{k}", None, None, None) for i, k in enumerate(keys)
    )
    history = [{"created_by": f"step {i}"} for i in range(len(keys))]
    return ImageDesc(name, f"sha256:{'c' * 64}", "linux/amd64", {"history": history}, layers)


def test_images_sharing_a_layer_get_their_own_status(db: ResultsDB) -> None:
    token = _token()
    first = _sealed_scan("x", _layer({"app/.env": f"GITHUB_TOKEN={token}\n".encode()}))
    second = _sealed_scan("x", _layer({}, whiteouts=("app/.wh..env",)))
    db.record_layer("blob:sha256:a1", RULESET, SCANNER, 1, first)
    db.record_layer("blob:sha256:b2", RULESET, SCANNER, 1, second)
    for name, keys in (("reg/one:1", ["a1"]), ("reg/two:1", ["a1", "b2"])):
        image = _image(name, keys)
        scans = {
            layer.key: db.layer_scan(f"blob:sha256:{k}", RULESET, SCANNER, layer.key)
            for layer, k in zip(image.layers, keys, strict=True)
        }
        result = assemble(name, image, {k: v for k, v in scans.items() if v}, ENGINE, show_secrets=False)
        repo = name.split("/")[1].split(":")[0]
        record = ImageRecord(name, "reg", repo, "1", f"sha256:{name[4:7] * 21}0", "linux/amd64")
        db.record_image(record, result, RULESET, SCANNER, [f"blob:sha256:{k}" for k in keys])
    assert db.counts()["layers"] == 2  # the shared layer is stored once

    found = db.findings()
    assert [(f["image"], f["status"], f["path"]) for f in found] == [
        ("reg/one:1", "present", "/app/.env"),
        ("reg/two:1", "deleted", "/app/.env"),
    ]
    assert all(f["redacted"] is True and token not in json.dumps(f) for f in found)
    assert db.findings(status="deleted")[0]["image"] == "reg/two:1"
    assert [f["image"] for f in db.findings(image="reg/one:1")] == ["reg/one:1"]

    where = db.where(found[0]["fingerprint"])
    assert where["fingerprint"] == found[0]["fingerprint"]
    assert [(i["image"], i["layer_digest"], i["path"], i["status"]) for i in where["images"]] == [
        ("reg/one:1", "sha256:a1", "/app/.env", "present"),
        ("reg/two:1", "sha256:a1", "/app/.env", "deleted"),
    ]
    assert db.where("0" * 16)["images"] == []

    images = {i["image"]: i for i in db.images()}
    assert images["reg/one:1"]["layers"] == 1 and images["reg/one:1"]["findings"]["present"] == 1
    assert images["reg/two:1"]["layers"] == 2 and images["reg/two:1"]["findings"]["deleted"] == 1
    assert token not in _all_text(db)


def test_recording_an_image_again_replaces_it(db: ResultsDB) -> None:
    image = _image("reg/one:1", [])
    result = assemble("reg/one:1", image, {}, ENGINE, show_secrets=False)
    record = ImageRecord("reg/one:1", "reg", "one", "1", "sha256:" + "d" * 64)
    db.record_image(record, result, RULESET, SCANNER)
    db.record_image(record, result, RULESET, SCANNER)
    assert db.counts()["images"] == 1
    assert db.image_done("reg/one:1", "sha256:" + "d" * 64, RULESET, SCANNER)
    assert not db.image_done("reg/one:1", "sha256:" + "e" * 64, RULESET, SCANNER)


def test_a_finding_with_its_plaintext_is_refused(db: ResultsDB) -> None:
    token = _token()
    scan = scan_layer(
        "blobs/sha256/a1", io.BytesIO(_layer({"app/.env": f"GITHUB_TOKEN={token}\n".encode()})), ENGINE
    )
    image = _image("reg/one:1", ["a1"])
    result = assemble("reg/one:1", image, {"blobs/sha256/a1": scan}, ENGINE, show_secrets=True)
    assert result.findings and result.findings[0].secret == token
    with pytest.raises(DatabaseError, match="plaintext"):
        db.record_image(ImageRecord("reg/one:1"), result, RULESET, SCANNER)
    assert db.counts()["findings"] == 0 and token not in _all_text(db)


# --- schema versions ----------------------------------------------------------------------------


def test_a_first_revision_database_is_upgraded_in_place(db_url: str) -> None:
    engine = sa.create_engine(results.database_url(db_url))
    cfg = results._migrations()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("findings")}
        assert "inherited" not in columns
        conn.execute(
            sa.text(
                "INSERT INTO images (id, name, ruleset, scanner, complete, bytes_scanned, errors, scanned_at)"
                " VALUES (1, 'reg/old:1', 'r', 's', true, 0, '[]', 0)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO findings (image_id, ordinal, rule_id, fingerprint, redacted, severity,"
                " confidence, body) VALUES (1, 0, 'x', 'fp1', 'ab****', 'high', 'high', '{}')"
            )
        )
    engine.dispose()
    with ResultsDB(db_url) as store:
        with store.engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
            row = conn.execute(sa.text("SELECT fingerprint, inherited FROM findings")).one()
        assert version == results.head_revision() != "0001"
        assert row[0] == "fp1" and not row[1]
        assert store.counts()["images"] == 1


def test_a_newer_schema_is_refused(db_url: str) -> None:
    ResultsDB(db_url).close()
    engine = sa.create_engine(results.database_url(db_url))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(DatabaseError, match="schema revision 9999, newer than this layerleak's"):
        ResultsDB(db_url)
    done = _cli("db", "images", "--db", db_url)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "newer than this layerleak" in done.stderr
    assert "Traceback" not in done.stderr


# --- the CLI against bad databases --------------------------------------------------------------


def _cli(
    *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "layerleak", *args],
        capture_output=True,
        text=True,
        env=env or {**os.environ, "LAYERLEAK_DB_TIMEOUT": "1"},
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def test_scan_records_into_the_database_and_db_findings_matches_scan_json(
    handmade_images: Built, db_url: str
) -> None:
    target = handmade_images.target("multi")
    done = _cli("scan", "--no-cache", "--format", "json", "--db", db_url, target)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    listed = _cli("db", "findings", "--db", db_url, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    stored = json.loads(listed.stdout)["findings"]
    assert len(stored) == len(report["findings"]) == 2
    for f in stored:
        assert f.pop("inherited") is False
    key = lambda f: (f["image"], f["fingerprint"])  # noqa: E731
    assert sorted(stored, key=key) == sorted(report["findings"], key=key)  # the same objects
    table = _cli("db", "images", "--db", db_url)
    assert "multi-a:1.0" in table.stdout and "multi-b:2.0" in table.stdout


def test_a_locked_database_is_one_line_and_exit_2(handmade_images: Built, tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    ResultsDB(str(path)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
         "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        done = _cli("scan", "--no-cache", "--db", str(path), handmade_images.target("multi"))
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and "locked" in lines[0] and str(path) in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_read_only_database_is_one_line_and_exit_2(handmade_images: Built, tmp_path: Path) -> None:
    """Root ignores file modes, so the CLI runs without CAP_DAC_OVERRIDE (setpriv): then a
    read-only file and directory are read-only for it too."""
    if subprocess.run(["setpriv", "--version"], capture_output=True).returncode != 0:
        pytest.skip("setpriv is missing")
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "results.sqlite3"
    target = handmade_images.target("multi")
    assert _cli("scan", "--no-cache", "--db", str(path), target).returncode == 1
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    path.chmod(0o444)
    folder.chmod(0o555)
    drop = ("setpriv", "--inh-caps=-dac_override,-dac_read_search,-fowner",
            "--bounding-set=-dac_override,-dac_read_search,-fowner", "--")  # fmt: skip
    try:
        done = _cli("scan", "--no-cache", "--db", str(path), target, prefix=drop if os.geteuid() == 0 else ())
        listed = _cli("db", "images", "--db", str(path), prefix=drop if os.geteuid() == 0 else ())
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and ("read-only" in lines[0] or "readonly" in lines[0]), done.stderr
    assert "Traceback" not in done.stderr
    # queries need no write: a read-only database still answers them
    assert listed.returncode == 0, listed.stderr
    assert "multi-a:1.0" in listed.stdout


def test_bad_db_urls_are_one_line() -> None:
    with pytest.raises(DatabaseError, match="expected a file path or postgresql"):
        results.database_url("mysql://x/y")
    done = _cli("db", "images", "--db", "/nonexistent/dir/results.sqlite3")
    assert done.returncode == 2 and "no results database" in done.stderr
    assert done.stderr.count("\n") == 1


def test_the_head_constant_is_alembics_head() -> None:
    """ResultsDB opens a database at HEAD without importing Alembic: HEAD must be the newest
    migration, or every database would be migrated (or refused) on open."""
    assert results.head_revision() == results.HEAD
