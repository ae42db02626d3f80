"""The layer cache: what scanning a layer found, keyed by the layer's digest, the ruleset and the
scanner's own code, in one SQLite file under the user's cache directory.

Rescanning an unchanged image then costs reading its manifests. The cache never holds a raw
secret: each hit is kept as its fingerprint, redacted form and location (see
:mod:`layerleak.store.sealed`), and layers whose scan was cut short by an error are not kept.
Later batch scans of whole registries build on the same file: ``hits.fingerprint`` is indexed.

Schema version :data:`SCHEMA_VERSION`; an older file is emptied and rebuilt (it is only a cache), a
newer one is refused. The location is ``$LAYERLEAK_CACHE_DIR/layers.sqlite3`` when that variable is
set, else the platform's user cache directory.

The directory is private (0700) and the file with its ``-wal``/``-shm`` companions 0600, even
when an earlier run left them looser; a directory that is not the user's own, or shared (sticky,
like ``/tmp``), is refused. Deleted rows are overwritten (``secure_delete``), and a file of an
older schema (whose redacted forms could hold key material) is vacuumed when it is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import time
import zlib
from dataclasses import astuple
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Protocol

import platformdirs

from layerleak import __version__
from layerleak.detect import knownkeys
from layerleak.errors import StoreError
from layerleak.layers.scanned import LayerScan
from layerleak.store.codec import HitRow, NotCacheable, decode_body, encode_body, file_hit, hit_row

SCHEMA_VERSION = 2  # 2: redacted forms are short and fixed-size (version 1's could hold key material)
FILE_NAME = "layers.sqlite3"
ENV_DIR = "LAYERLEAK_CACHE_DIR"
DIR_MODE = 0o700
FILE_MODE = 0o600
COMPANIONS = ("-wal", "-shm", "-journal")  # SQLite's side files: they get the main file's mode

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS layers (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL,      -- diff_id, else blob digest
    ruleset TEXT NOT NULL,     -- Engine.ruleset
    engine TEXT NOT NULL,      -- scanner_version()
    size INTEGER NOT NULL,     -- blob size when it was scanned (-1: unknown)
    hit_count INTEGER NOT NULL,
    body BLOB NOT NULL,        -- zlib(JSON): entries, whiteouts, counters (store/codec.py)
    created REAL NOT NULL,
    used REAL NOT NULL,
    UNIQUE (digest, ruleset, engine)
);
CREATE TABLE IF NOT EXISTS hits (
    layer INTEGER NOT NULL REFERENCES layers(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    path TEXT NOT NULL,
    inner_path TEXT,
    rule_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    redacted TEXT NOT NULL,
    length INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    line INTEGER NOT NULL,
    confidence INTEGER NOT NULL,
    reason TEXT,
    extra TEXT NOT NULL,
    PRIMARY KEY (layer, ordinal)
);
CREATE INDEX IF NOT EXISTS hits_fingerprint ON hits (fingerprint);
"""


class LayerStore(Protocol):
    """What the layer phase asks of a cache: this file, or the results database
    (:class:`~layerleak.store.results.db.ResultsDB`, the same store registry jobs fill)."""

    def get(self, key: str, digest: str, ruleset: str, size: int) -> LayerScan | None: ...

    def put(self, digest: str, ruleset: str, size: int, scan: LayerScan) -> bool: ...


class CacheError(StoreError):
    """The cache file cannot be used."""


def default_dir() -> Path:
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else Path(platformdirs.user_cache_dir("layerleak"))


@lru_cache(maxsize=1)
def scanner_version() -> str:
    """The version plus a digest of the package's code: any change to how layers are scanned
    (a decoder, a filter, the walk) makes earlier entries misses, released or not; so does
    installing or updating badkeys' blocklist (a key it names is judged differently)."""
    digest = hashlib.sha256()
    root = resources.files("layerleak")
    for path in sorted(_sources(Path(str(root)))):
        digest.update(path.relative_to(Path(str(root))).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:16]}+{knownkeys.state()}"


def _sources(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.suffix in (".py", ".toml") and p.is_file()]


def _private_dir(path: Path) -> None:
    """Create ``path`` (0700), or tighten it when an earlier run made it looser."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    st = path.stat()
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise CacheError(
            f"the cache directory {path} belongs to another user (set {ENV_DIR}, or use --no-cache)"
        )
    if st.st_mode & stat.S_ISVTX:
        raise CacheError(
            f"the cache directory {path} is shared (sticky bit): set {ENV_DIR} to a directory of your own"
        )
    if stat.S_IMODE(st.st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)


def _private_files(path: Path) -> None:
    """The database file exists with mode 0600 before SQLite opens it (SQLite gives its -wal and
    -shm files the main file's mode); files an earlier run left looser are tightened."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in COMPANIONS)):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode != FILE_MODE:
            os.chmod(file, FILE_MODE)


class LayerCache:
    def __init__(self, path: Path, engine_version: str | None = None) -> None:
        self.path = path
        self.engine = engine_version or scanner_version()
        try:
            _private_dir(path.parent)
            _private_files(path)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(
                f"cannot use the cache at {path}: {exc} (remove it, or scan with --no-cache)"
            ) from None

    @classmethod
    def open_default(cls) -> LayerCache:
        return cls(default_dir() / FILE_NAME)

    def _migrate(self) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            found = int(row[0]) if row else 0
            if found > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"schema version {found} is newer than this layerleak's {SCHEMA_VERSION}"
                )
            if found < SCHEMA_VERSION:
                self._db.executescript("DROP TABLE IF EXISTS hits; DROP TABLE IF EXISTS layers;")
                self._db.execute("VACUUM")  # no page of the old file survives, in it or its WAL
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
        )

    def get(self, key: str, digest: str, ruleset: str, size: int) -> LayerScan | None:
        """The cached scan of layer ``digest`` (as source key ``key``), or None."""
        try:
            row = self._db.execute(
                "SELECT id, size, body FROM layers WHERE digest=? AND ruleset=? AND engine=?",
                (digest, ruleset, self.engine),
            ).fetchone()
            if row is None or row[1] != size:
                return None
            rows = self._db.execute(
                "SELECT path, inner_path, rule_id, fingerprint, redacted, length, offset, line,"
                " confidence, reason, extra FROM hits WHERE layer=? ORDER BY ordinal",
                (row[0],),
            ).fetchall()
            self._db.execute("UPDATE layers SET used=? WHERE id=?", (time.time(), row[0]))
        except sqlite3.Error as exc:
            raise CacheError(f"cannot read the cache at {self.path}: {exc}") from None
        hits = [file_hit(HitRow(*r)) for r in rows]
        return decode_body(key, zlib.decompress(row[2]), hits)

    def put(self, digest: str, ruleset: str, size: int, scan: LayerScan) -> bool:
        """Keep a complete scan (one cut short by an error is not kept). True when stored."""
        if scan.error is not None:
            return False
        try:
            body = zlib.compress(encode_body(scan), 6)
            rows = [astuple(hit_row(h)) for h in scan.hits]
        except NotCacheable:
            return False
        now = time.time()
        try:
            with _transaction(self._db):
                self._db.execute(
                    "DELETE FROM layers WHERE digest=? AND ruleset=? AND engine=?",
                    (digest, ruleset, self.engine),
                )
                cur = self._db.execute(
                    "INSERT INTO layers (digest, ruleset, engine, size, hit_count, body, created,"
                    " used) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (digest, ruleset, self.engine, size, len(rows), body, now, now),
                )
                self._db.executemany(
                    "INSERT INTO hits (layer, ordinal, path, inner_path, rule_id, fingerprint,"
                    " redacted, length, offset, line, confidence, reason, extra)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(cur.lastrowid, i, *r) for i, r in enumerate(rows)],
                )
        except sqlite3.Error as exc:
            raise CacheError(f"cannot write the cache at {self.path}: {exc}") from None
        return True

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LayerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
