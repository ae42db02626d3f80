"""The results database: every layer scanned once, every image's findings, shared by a team.

SQLite is the embedded default (``results.sqlite3`` in the user data directory, or
``$LAYERLEAK_DB``); ``--db PATH`` names another SQLite file and ``--db postgresql://...`` a
PostgreSQL server (driven by psycopg 3). The schema is versioned with Alembic: opening a database
for writing upgrades it to this layerleak's newest revision; a database whose revision this
layerleak does not know (a newer layerleak wrote it) is refused.

It is the checkpoint of a batch job, so every write is one transaction: a layer's row and its hits
(never half a layer), and an image's row, stack and findings. A layer is recorded once per
(content key, ruleset, scanner version): recording it again is a no-op, so a job killed at any
moment and restarted records each layer exactly once. No row ever holds a secret: hits are sealed
(fingerprint and redacted form) before they are written, and a finding that carries plaintext is
refused.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from layerleak.detect.validity import normal_key_id, spki_hex
from layerleak.errors import StoreError
from layerleak.layers.scanned import LayerScan
from layerleak.models import ImageResult
from layerleak.report.json_report import finding_dict
from layerleak.store.codec import HitRow, NotCacheable, decode_body, encode_body, file_hit, hit_row
from layerleak.store.results import schema as t

FILE_NAME = "results.sqlite3"
ENV_DB = "LAYERLEAK_DB"
ENV_TIMEOUT = "LAYERLEAK_DB_TIMEOUT"  # seconds a write waits for a lock (SQLite), default 10
STATUSES = ("present", "deleted", "overwritten")
_HIT_FIELDS = tuple(f.name for f in fields(HitRow))


class DatabaseError(StoreError):
    """The results database cannot be opened, read or written."""


def default_path() -> Path:
    return Path(platformdirs.user_data_dir("layerleak")) / FILE_NAME


def database_url(spec: str | None) -> URL:
    """``--db`` as a SQLAlchemy URL: a PostgreSQL URL (psycopg driver), a SQLite URL, or a path."""
    spec = spec or os.environ.get(ENV_DB) or str(default_path())
    if spec.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        rest = spec.split("://", 1)[1]
        try:
            return make_url(f"postgresql+psycopg://{rest}")
        except sa.exc.ArgumentError:
            raise DatabaseError("--db: not a valid postgresql:// URL") from None
    if spec.startswith("sqlite:"):
        try:
            return make_url(spec)
        except sa.exc.ArgumentError:
            raise DatabaseError(f"--db: not a valid SQLite URL: {spec}") from None
    if "://" in spec:
        raise DatabaseError(f"--db {spec.split('://', 1)[0]}://: expected a file path or postgresql://")
    return URL.create("sqlite", database=str(Path(spec).expanduser().resolve()))


if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration's revision: a database already there is opened without importing Alembic
# (a rerun of a finished job is mostly start-up). tests/store checks it is Alembic's head.
HEAD = "0002"


def _migrations() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("layerleak.store.results") / "migrations"))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_migrations()).get_current_head()
    assert head is not None
    return head


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """Where an image came from, beside what scanning it found (:class:`ImageResult`)."""

    name: str
    registry: str | None = None
    repo: str | None = None
    tag: str | None = None
    digest: str | None = None  # manifest digest
    platform: str | None = None


class ResultsDB:
    """One open results database. ``write=False`` opens it for queries only (no migration, no
    write: a read-only file can still be queried)."""

    def __init__(self, spec: str | None = None, *, write: bool = True) -> None:
        self.url = database_url(spec)
        self.label = self.url.render_as_string(hide_password=True)
        if self.url.get_backend_name() == "sqlite":
            self.label = self.url.database or self.label
        self.write = write
        self.sqlite = self.url.get_backend_name() == "sqlite"
        try:
            timeout = float(os.environ.get(ENV_TIMEOUT, "10"))
        except ValueError:
            timeout = 10.0
        if self.sqlite:
            if write and self.url.database:
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            elif self.url.database and not Path(self.url.database).exists():
                raise DatabaseError(f"no results database at {self.label} (scan with --db first)")
            self.engine: Engine = sa.create_engine(self.url, connect_args={"timeout": timeout})
            sa.event.listen(self.engine, "connect", self._sqlite_connect)
        else:
            self.engine = sa.create_engine(
                self.url, connect_args={"connect_timeout": max(1, int(timeout))}, pool_pre_ping=True
            )
        with self._errors("open"):
            self._check_schema()

    # --- opening ----------------------------------------------------------------------------

    def _sqlite_connect(self, dbapi: sqlite3.Connection, _record: object) -> None:
        cur = dbapi.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        if self.write:
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not wait for a running job
        cur.close()

    def _current_revision(self) -> str | None:
        """The revision Alembic recorded (``alembic_version``), None in a database without one."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
        return None if row is None else str(row[0])

    def _check_schema(self) -> None:
        current = self._current_revision()
        if current == HEAD:
            return
        from alembic import command
        from alembic.script import ScriptDirectory

        head = head_revision()
        known = {s.revision for s in ScriptDirectory.from_config(_migrations()).walk_revisions()}
        if current is not None and current not in known:
            raise DatabaseError(
                f"the results database at {self.label} has schema revision {current}, newer than this "
                f"layerleak's {head}: upgrade layerleak to use it"
            )
        if current == head:
            return
        if not self.write:
            if current is None:
                raise DatabaseError(
                    f"{self.label} is not a layerleak results database (scan with --db first)"
                )
            raise DatabaseError(
                f"the results database at {self.label} has schema revision {current}; "
                f"run a scan with --db to upgrade it to {head}"
            )
        cfg = _migrations()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Database failures as one clear line (never a traceback, never the password)."""
        try:
            yield
        except DatabaseError:
            raise
        except sa.exc.OperationalError as exc:
            raise DatabaseError(f"cannot {doing} the results database at {self.label}: {_why(exc)}") from None
        except (sa.exc.DBAPIError, sa.exc.SQLAlchemyError, OSError) as exc:
            raise DatabaseError(f"cannot {doing} the results database at {self.label}: {_why(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- layers -----------------------------------------------------------------------------

    def known_layers(self, keys: Iterable[str], ruleset: str, scanner: str) -> set[str]:
        """Which of these content keys already have a complete scan for this ruleset and scanner."""
        wanted = sorted(set(keys))
        found: set[str] = set()
        with self._errors("read"), self.engine.connect() as conn:
            for chunk in _chunks(wanted, 500):
                rows = conn.execute(
                    sa.select(t.layers.c.content_key).where(
                        t.layers.c.content_key.in_(chunk),
                        t.layers.c.ruleset == ruleset,
                        t.layers.c.scanner == scanner,
                    )
                )
                found.update(r[0] for r in rows)
        return found

    def record_layer(
        self, key: str, ruleset: str, scanner: str, size: int, scan: LayerScan, diff_id: str | None = None
    ) -> bool:
        """Record a complete layer scan, with its hits, in one transaction. False when it was
        already recorded (or cannot be: a scan cut short by an error is never recorded)."""
        if scan.error is not None:
            return False
        try:
            body = zlib.compress(encode_body(scan), 6)
            rows = [hit_row(h) for h in scan.hits]
        except NotCacheable:
            return False
        with self._errors("write"):
            try:
                with self.engine.begin() as conn:
                    if self._layer_id(conn, key, ruleset, scanner) is not None:
                        return False
                    layer_id = _pk(
                        conn.execute(
                            t.layers.insert().values(
                                content_key=key,
                                diff_id=diff_id,
                                ruleset=ruleset,
                                scanner=scanner,
                                size=size,
                                bytes_read=scan.bytes_read,
                                hit_count=len(rows),
                                body=body,
                                scanned_at=time.time(),
                            )
                        )
                    )
                    if rows:
                        conn.execute(
                            t.layer_hits.insert(),
                            [
                                {"layer_id": layer_id, "ordinal": i, **_hit_dict(r)}
                                for i, r in enumerate(rows)
                            ],
                        )
            except sa.exc.IntegrityError:
                return False  # another writer recorded it first
        return True

    def _layer_id(self, conn: Connection, key: str, ruleset: str, scanner: str) -> int | None:
        row = conn.execute(
            sa.select(t.layers.c.id).where(
                t.layers.c.content_key == key, t.layers.c.ruleset == ruleset, t.layers.c.scanner == scanner
            )
        ).first()
        return None if row is None else int(row[0])

    def layer_scan(
        self, key: str, ruleset: str, scanner: str, source_key: str, size: int | None = None
    ) -> LayerScan | None:
        """The recorded scan of layer ``key``, as source key ``source_key``; None if not recorded
        (or recorded with another blob size than a known ``size``)."""
        with self._errors("read"), self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.layers.c.id, t.layers.c.body, t.layers.c.size).where(
                    t.layers.c.content_key == key,
                    t.layers.c.ruleset == ruleset,
                    t.layers.c.scanner == scanner,
                )
            ).first()
            if row is None or (size is not None and size >= 0 and row[2] >= 0 and row[2] != size):
                return None
            hits = conn.execute(
                sa.select(*[t.layer_hits.c[name] for name in _HIT_FIELDS])
                .where(t.layer_hits.c.layer_id == row[0])
                .order_by(t.layer_hits.c.ordinal)
            ).all()
        return decode_body(source_key, zlib.decompress(row[1]), [file_hit(HitRow(*h)) for h in hits])

    # --- the layer cache's protocol (store/cache.py), so a scan can use this store as its cache

    def get(self, key: str, digest: str, ruleset: str, size: int) -> LayerScan | None:
        from layerleak.store.cache import scanner_version

        scan = self.layer_scan(digest, ruleset, scanner_version(), key, size)
        return scan

    def put(self, digest: str, ruleset: str, size: int, scan: LayerScan) -> bool:
        from layerleak.store.cache import scanner_version

        return self.record_layer(digest, ruleset, scanner_version(), size, scan)

    # --- images -----------------------------------------------------------------------------

    def image_done(self, name: str, digest: str, ruleset: str, scanner: str) -> bool:
        """True when this image (by manifest digest) was recorded complete with these rules."""
        with self._errors("read"), self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.images.c.id).where(
                    t.images.c.name == name,
                    t.images.c.digest == digest,
                    t.images.c.ruleset == ruleset,
                    t.images.c.scanner == scanner,
                    t.images.c.complete.is_(True),
                )
            ).first()
        return row is not None

    def complete_images(
        self, registry: str, ruleset: str, scanner: str
    ) -> dict[tuple[str, str], dict[str, int]]:
        """Every image of ``registry`` recorded complete with these rules, as (name, manifest
        digest), with its finding counts by status (as :meth:`finding_counts`): one query, so
        a rerun of a finished job asks the database once, not twice per image."""
        has_status = t.findings.c.status.is_not(None)
        body = sa.case((has_status, sa.null()), else_=t.findings.c.body).label("source_body")
        query = (
            sa.select(
                t.images.c.name, t.images.c.digest, t.findings.c.status, body, sa.func.count(t.findings.c.id)
            )
            .select_from(t.images.outerjoin(t.findings, t.findings.c.image_id == t.images.c.id))
            .where(
                t.images.c.registry == registry,
                t.images.c.digest.is_not(None),
                t.images.c.ruleset == ruleset,
                t.images.c.scanner == scanner,
                t.images.c.complete.is_(True),
            )
            .group_by(t.images.c.name, t.images.c.digest, t.findings.c.status, body)
        )
        out: dict[tuple[str, str], dict[str, int]] = {}
        with self._errors("read"), self.engine.connect() as conn:
            for name, digest, status, text, n in conn.execute(query):
                counts = out.setdefault((name, digest), {})
                if n:
                    key = status or json.loads(text).get("source") or "config"
                    counts[key] = counts.get(key, 0) + int(n)
        return out

    def finding_counts(self, name: str, digest: str, ruleset: str, scanner: str) -> dict[str, int]:
        """A recorded image's findings by status (``config``/``history`` for the others)."""
        query = (
            sa.select(t.findings.c.status, t.findings.c.body, sa.func.count())
            .join(t.images, t.images.c.id == t.findings.c.image_id)
            .where(
                t.images.c.name == name,
                t.images.c.digest == digest,
                t.images.c.ruleset == ruleset,
                t.images.c.scanner == scanner,
            )
            .group_by(t.findings.c.status, t.findings.c.body)
        )
        counts: dict[str, int] = {}
        with self._errors("read"), self.engine.connect() as conn:
            for status, body, n in conn.execute(query):
                key = status or json.loads(body).get("source") or "config"
                counts[key] = counts.get(key, 0) + int(n)
        return counts

    def record_image(
        self,
        record: ImageRecord,
        result: ImageResult,
        ruleset: str,
        scanner: str,
        content_keys: Sequence[str | None] = (),
        inherited: Iterable[int] = (),
    ) -> int:
        """Record one image, its stack and its findings in one transaction, replacing an earlier
        record of the same image (name, manifest digest, platform) with the same rules."""
        for f in result.findings:
            if f.secret is not None:
                raise DatabaseError("refusing to store a finding with its plaintext secret")
        base = set(inherited)
        problems = [
            e.message if e.layer_index is None else f"layer {e.layer_index}: {e.message}"
            for e in result.errors
            if e.fatal
        ]
        with self._errors("write"), self.engine.begin() as conn:
            same = sa.and_(
                t.images.c.name == record.name,
                # a manifest digest is one platform's image; without one, the platform tells
                t.images.c.digest == record.digest
                if record.digest is not None
                else sa.and_(t.images.c.digest.is_(None), _is(t.images.c.platform, result.platform)),
                t.images.c.ruleset == ruleset,
                t.images.c.scanner == scanner,
            )
            old = [r[0] for r in conn.execute(sa.select(t.images.c.id).where(same))]
            if old:
                fids = sa.select(t.findings.c.id).where(t.findings.c.image_id.in_(old))
                conn.execute(t.locations.delete().where(t.locations.c.finding_id.in_(fids)))
                conn.execute(t.findings.delete().where(t.findings.c.image_id.in_(old)))
                conn.execute(t.image_layers.delete().where(t.image_layers.c.image_id.in_(old)))
                conn.execute(t.images.delete().where(t.images.c.id.in_(old)))
            image_id = _pk(
                conn.execute(
                    t.images.insert().values(
                        name=record.name,
                        registry=record.registry,
                        repo=record.repo,
                        tag=record.tag,
                        digest=record.digest,
                        image_id=result.image_id,
                        platform=record.platform or result.platform,
                        ruleset=ruleset,
                        scanner=scanner,
                        complete=not problems,
                        bytes_scanned=result.bytes_scanned,
                        errors=json.dumps(problems),
                        scanned_at=time.time(),
                    )
                )
            )
            if result.layers:
                conn.execute(
                    t.image_layers.insert(),
                    [
                        {
                            "image_id": image_id,
                            "idx": layer.index,
                            "digest": layer.digest,
                            "blob_digest": layer.blob_digest,
                            "content_key": content_keys[layer.index]
                            if layer.index < len(content_keys)
                            else None,
                        }
                        for layer in result.layers
                    ],
                )
            for ordinal, f in enumerate(result.findings):
                is_inherited = f.location.layer_index in base
                body = {**finding_dict(f), "inherited": is_inherited}
                fid = _pk(
                    conn.execute(
                        t.findings.insert().values(
                            image_id=image_id,
                            ordinal=ordinal,
                            rule_id=f.rule_id,
                            fingerprint=f.fingerprint,
                            redacted=f.redacted,
                            severity=str(f.severity),
                            confidence=str(f.confidence),
                            status=str(f.location.status) if f.location.status else None,
                            layer_digest=f.location.layer_digest,
                            path=f.location.path,
                            inherited=is_inherited,
                            body=json.dumps(body, ensure_ascii=False),
                        )
                    )
                )
                conn.execute(
                    t.locations.insert(),
                    [
                        {
                            "finding_id": fid,
                            "ordinal": i,
                            "source": str(loc.source),
                            "layer_index": loc.layer_index,
                            "layer_digest": loc.layer_digest,
                            "path": loc.path,
                            "status": str(loc.status) if loc.status else None,
                            "key": loc.key,
                        }
                        for i, loc in enumerate((f.location, *f.other_locations))
                    ],
                )
        return image_id

    def repo_counts(self, keys: Iterable[str], exclude_repo: str | None = None) -> dict[str, int]:
        """For each content key: in how many distinct repositories (other than ``exclude_repo``)
        the database has seen it."""
        wanted = sorted(set(keys))
        counts: dict[str, int] = {}
        with self._errors("read"), self.engine.connect() as conn:
            for chunk in _chunks(wanted, 500):
                rows = conn.execute(
                    sa.select(t.image_layers.c.content_key, sa.func.count(sa.distinct(t.images.c.repo)))
                    .join(t.images, t.images.c.id == t.image_layers.c.image_id)
                    .where(t.image_layers.c.content_key.in_(chunk))
                    .where(sa.true() if exclude_repo is None else t.images.c.repo != exclude_repo)
                    .group_by(t.image_layers.c.content_key)
                )
                counts.update({r[0]: int(r[1]) for r in rows})
        return counts

    # --- queries ----------------------------------------------------------------------------

    def _latest_images(self) -> sa.Subquery:
        """The newest record of each (name, platform): what the database says about it now."""
        newest = (
            sa.select(sa.func.max(t.images.c.id).label("id"))
            .group_by(t.images.c.name, t.images.c.platform)
            .subquery()
        )
        return newest

    def findings(self, image: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """The finding objects (as ``scan --format json`` shows them, plus ``inherited``) of the
        newest record of each image, optionally of one image (name, repository or digest)."""
        newest = self._latest_images()
        query = (
            sa.select(t.findings.c.body)
            .join(t.images, t.images.c.id == t.findings.c.image_id)
            .where(t.images.c.id.in_(sa.select(newest.c.id)))
            .order_by(t.images.c.name, t.images.c.platform, t.findings.c.ordinal)
        )
        if image is not None:
            query = query.where(_image_filter(image))
        if status is not None:
            query = query.where(t.findings.c.status == status)
        with self._errors("read"), self.engine.connect() as conn:
            return [json.loads(r[0]) for r in conn.execute(query)]

    def where(self, fingerprint: str) -> dict[str, Any]:
        """Every image and layer that holds the secret with this fingerprint."""
        newest = self._latest_images()
        query = (
            sa.select(
                t.images.c.name,
                t.images.c.platform,
                t.locations.c.layer_digest,
                t.locations.c.path,
                t.locations.c.status,
                t.locations.c.source,
                t.locations.c.key,
            )
            .join(t.findings, t.findings.c.id == t.locations.c.finding_id)
            .join(t.images, t.images.c.id == t.findings.c.image_id)
            .where(t.findings.c.fingerprint == fingerprint, t.images.c.id.in_(sa.select(newest.c.id)))
            .order_by(t.images.c.name, t.images.c.platform, t.locations.c.layer_index, t.locations.c.path)
        )
        with self._errors("read"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
        images = []
        seen: set[tuple[Any, ...]] = set()
        for name, platform, layer_digest, path, status, source, key in rows:
            item = (name, platform, layer_digest, path or key, status)
            if item in seen:
                continue
            seen.add(item)
            images.append(
                {
                    "image": name,
                    "platform": platform,
                    "layer_digest": layer_digest,
                    "path": path if path is not None else key,
                    "source": source,
                    "status": status,
                }
            )
        return {"fingerprint": fingerprint, "images": images}

    def related(self) -> list[dict[str, Any]]:
        """Fleet-wide correlation: each private key recorded in a layer (its hit carries the
        fingerprint of its public key, entries/pubkeys.py) with every recorded certificate,
        public key and ``authorized_keys`` line that carries the same public key, in any layer,
        and the newest record of each image holding either. Reads every layer's body (the public
        keys live there): a query for a responder, not for a hot path."""
        with self._errors("read"), self.engine.connect() as conn:
            keyed = conn.execute(
                sa.select(t.layers.c.content_key, t.layer_hits.c.path, t.layer_hits.c.inner_path,
                          t.layer_hits.c.fingerprint, t.layer_hits.c.extra)
                .join(t.layers, t.layers.c.id == t.layer_hits.c.layer_id)
                .where(t.layer_hits.c.extra.like('%"key_id"%'))
            ).all()
            private: dict[str, list[tuple[str, str, str | None, str]]] = {}
            for key, path, inner, fingerprint, extra in keyed:
                key_id = json.loads(extra).get("key_id") if extra else None
                if isinstance(key_id, str) and (key_id := normal_key_id(key_id)) is not None:
                    private.setdefault(key_id, []).append((key, path, inner, fingerprint))
            if not private:
                return []
            public: dict[str, list[tuple[str, str, str, str]]] = {}
            for key, body in conn.execute(sa.select(t.layers.c.content_key, t.layers.c.body)):
                found = decode_body(key, zlib.decompress(body), []).public_keys
                places = {normal_key_id(k) or k: v for k, v in found.items()}  # older records: hex
                for spki in private.keys() & places.keys():
                    public.setdefault(spki, []).extend((key, *place) for place in places[spki])
            wanted = {k for spki in public for k, *_ in (*private[spki], *public[spki])}
            holders: dict[str, list[tuple[str, str | None, int, str]]] = {}
            newest = self._latest_images()
            for chunk in _chunks(sorted(wanted), 500):
                rows = conn.execute(
                    sa.select(t.image_layers.c.content_key, t.images.c.name, t.images.c.platform,
                              t.image_layers.c.idx, t.image_layers.c.digest)
                    .join(t.images, t.images.c.id == t.image_layers.c.image_id)
                    .where(t.image_layers.c.content_key.in_(chunk), t.images.c.id.in_(sa.select(newest.c.id)))
                    .order_by(t.images.c.name, t.images.c.platform, t.image_layers.c.idx)
                ).all()
                for key, name, platform, idx, digest in rows:
                    holders.setdefault(key, []).append((name, platform, idx, digest))

        def where(key: str) -> list[dict[str, Any]]:
            return [{"image": n, "platform": p, "layer_index": i, "layer_digest": d}
                    for n, p, i, d in holders.get(key, [])]

        out = []
        for spki in sorted(public):
            out.append({
                "fingerprint": spki,
                "spki_sha256": spki_hex(spki),
                "private_keys": [
                    {"path": path, "inner_path": inner, "fingerprint": fp, "in": where(key)}
                    for key, path, inner, fp in private[spki]
                ],
                "public_halves": [
                    {"path": path, "kind": kind, "detail": detail, "in": where(key)}
                    for key, path, kind, detail in public[spki]
                ],
            })
        return out

    def images(self) -> list[dict[str, Any]]:
        """Each image's newest record: layer count and finding counts by status."""
        newest = self._latest_images()
        layer_count = (
            sa.select(sa.func.count()).where(t.image_layers.c.image_id == t.images.c.id).scalar_subquery()
        )
        query = (
            sa.select(
                t.images.c.id,
                t.images.c.name,
                t.images.c.digest,
                t.images.c.platform,
                t.images.c.complete,
                t.images.c.scanned_at,
                layer_count,
            )
            .where(t.images.c.id.in_(sa.select(newest.c.id)))
            .order_by(t.images.c.name, t.images.c.platform)
        )
        counts_q = (
            sa.select(t.findings.c.image_id, t.findings.c.status, sa.func.count())
            .where(t.findings.c.image_id.in_(sa.select(newest.c.id)))
            .group_by(t.findings.c.image_id, t.findings.c.status)
        )
        with self._errors("read"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
            counts: dict[int, dict[str, int]] = {}
            for image_id, status, n in conn.execute(counts_q):
                counts.setdefault(image_id, {})[status or "config"] = int(n)
        out = []
        for image_id, name, digest, platform, complete, scanned_at, layers in rows:
            by_status = counts.get(image_id, {})
            out.append(
                {
                    "image": name,
                    "digest": digest,
                    "platform": platform,
                    "complete": bool(complete),
                    "scanned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(scanned_at)),
                    "layers": int(layers),
                    "findings": {s: by_status.get(s, 0) for s in (*STATUSES, "config")},
                }
            )
        return out

    def counts(self) -> dict[str, int]:
        """Rows per table (for tests and the end summary)."""
        with self._errors("read"), self.engine.connect() as conn:
            return {
                table.name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
                for table in (t.layers, t.layer_hits, t.images, t.image_layers, t.findings, t.locations)
            }


def _image_filter(image: str) -> sa.ColumnElement[bool]:
    """``--image``: a full name (host/repo:tag), a repository (host/repo or repo), or a digest."""
    name = image.removeprefix("docker://")
    return sa.or_(
        t.images.c.name == name,
        t.images.c.name == image,
        t.images.c.digest == name,
        t.images.c.image_id == name,
        t.images.c.repo == name,
        sa.func.coalesce(t.images.c.registry, "") + "/" + sa.func.coalesce(t.images.c.repo, "") == name,
    )


def _pk(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _is(column: sa.ColumnElement[Any], value: object) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _hit_dict(row: HitRow) -> dict[str, Any]:
    return dict(zip(_HIT_FIELDS, astuple(row), strict=True))


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _why(exc: BaseException) -> str:
    """The driver's own words, first line only (SQLAlchemy appends the statement and a link)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    low = text.lower()
    if "readonly" in low or "read-only" in low:
        return f"{text} (it is read-only)"
    if "locked" in low:
        return f"{text} (another process holds it; try again when it is done)"
    return text[:300]
