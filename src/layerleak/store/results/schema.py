"""The results database's tables (SQLAlchemy Core), at the newest schema revision.

Migrations in ``migrations/versions`` build exactly these tables step by step; the first revision
is ``0001``. Nothing here ever holds a secret: hits and findings keep fingerprints and redacted
forms, which :mod:`layerleak.store.sealed` computes before a row is written.

- ``layers``: one row per (content key, ruleset, scanner version): a layer scanned once. The
  content key is what the layer *is*, never what a manifest claims it is (see
  :func:`layerleak.store.results.db.content_key`). ``body`` is the layer's entries, whiteouts and
  counters (zlib JSON, :mod:`layerleak.store.codec`), what status needs to judge each image.
- ``layer_hits``: the sealed hits of a layer, written in the same transaction as its row.
- ``images``: one row per image scanned (name, repository, tag, manifest digest, platform).
- ``image_layers``: an image's layer stack, in order.
- ``findings`` / ``locations``: the findings of each image as ``scan --format json`` shows them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

layers = Table(
    "layers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("content_key", String(200), nullable=False),
    Column("diff_id", String(200)),  # as the image's config states it (informational)
    Column("ruleset", String(100), nullable=False),
    Column("scanner", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("bytes_read", BigInteger, nullable=False),
    Column("hit_count", Integer, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("scanned_at", Float, nullable=False),
    UniqueConstraint("content_key", "ruleset", "scanner", name="layers_identity"),
)

layer_hits = Table(
    "layer_hits",
    metadata,
    Column("layer_id", Integer, ForeignKey("layers.id", ondelete="CASCADE"), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    Column("path", Text, nullable=False),
    Column("inner_path", Text),
    Column("rule_id", String(200), nullable=False),
    Column("fingerprint", String(100), nullable=False),
    Column("redacted", Text, nullable=False),
    Column("length", Integer, nullable=False),
    Column("offset", Integer, nullable=False),
    Column("line", Integer, nullable=False),
    Column("confidence", Integer, nullable=False),
    Column("reason", Text),
    Column("extra", Text, nullable=False),
    Index("layer_hits_fingerprint", "fingerprint"),
)

images = Table(
    "images",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),  # host/repo:tag, or the target as named
    Column("registry", Text),
    Column("repo", Text),
    Column("tag", Text),
    Column("digest", String(200)),  # manifest digest
    Column("image_id", String(200)),  # config digest
    Column("platform", String(100)),
    Column("ruleset", String(100), nullable=False),
    Column("scanner", String(100), nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("bytes_scanned", BigInteger, nullable=False),
    Column("errors", Text, nullable=False),  # JSON list of one-line problems
    Column("scanned_at", Float, nullable=False),
    Index("images_lookup", "name", "digest", "platform"),
    Index("images_repo", "repo"),
)

image_layers = Table(
    "image_layers",
    metadata,
    Column("image_id", Integer, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("digest", String(200), nullable=False),  # diff_id, else blob digest (as reported)
    Column("blob_digest", String(200)),
    Column("content_key", String(200)),  # the layers row it was judged from, when known
    Index("image_layers_content", "content_key"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("image_id", Integer, ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("rule_id", String(200), nullable=False),
    Column("fingerprint", String(100), nullable=False),
    Column("redacted", Text, nullable=False),
    Column("severity", String(20), nullable=False),
    Column("confidence", String(20), nullable=False),
    Column("status", String(20)),
    Column("layer_digest", String(200)),
    Column("path", Text),
    Column("inherited", Boolean, nullable=False, server_default=false()),  # revision 0002
    Column("body", Text, nullable=False),  # the finding's JSON object (report/json_report.py)
    Index("findings_fingerprint", "fingerprint"),
    Index("findings_image", "image_id"),
)

locations = Table(
    "locations",
    metadata,
    Column("finding_id", Integer, ForeignKey("findings.id", ondelete="CASCADE"), primary_key=True),
    Column("ordinal", Integer, primary_key=True),
    Column("source", String(20), nullable=False),
    Column("layer_index", Integer),
    Column("layer_digest", String(200)),
    Column("path", Text),
    Column("status", String(20)),
    Column("key", Text),
)
