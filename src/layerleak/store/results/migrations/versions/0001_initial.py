"""The first results schema: layers scanned once, their hits, images, stacks, findings.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "layers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("content_key", sa.String(200), nullable=False),
        sa.Column("diff_id", sa.String(200)),
        sa.Column("ruleset", sa.String(100), nullable=False),
        sa.Column("scanner", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("bytes_read", sa.BigInteger, nullable=False),
        sa.Column("hit_count", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("scanned_at", sa.Float, nullable=False),
        sa.UniqueConstraint("content_key", "ruleset", "scanner", name="layers_identity"),
    )
    op.create_table(
        "layer_hits",
        sa.Column("layer_id", sa.Integer, sa.ForeignKey("layers.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("ordinal", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("inner_path", sa.Text),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(100), nullable=False),
        sa.Column("redacted", sa.Text, nullable=False),
        sa.Column("length", sa.Integer, nullable=False),
        sa.Column("offset", sa.Integer, nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("confidence", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("extra", sa.Text, nullable=False),
    )
    op.create_index("layer_hits_fingerprint", "layer_hits", ["fingerprint"])
    op.create_table(
        "images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("registry", sa.Text),
        sa.Column("repo", sa.Text),
        sa.Column("tag", sa.Text),
        sa.Column("digest", sa.String(200)),
        sa.Column("image_id", sa.String(200)),
        sa.Column("platform", sa.String(100)),
        sa.Column("ruleset", sa.String(100), nullable=False),
        sa.Column("scanner", sa.String(100), nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("bytes_scanned", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.Text, nullable=False),
        sa.Column("scanned_at", sa.Float, nullable=False),
    )
    op.create_index("images_lookup", "images", ["name", "digest", "platform"])
    op.create_index("images_repo", "images", ["repo"])
    op.create_table(
        "image_layers",
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("blob_digest", sa.String(200)),
        sa.Column("content_key", sa.String(200)),
    )
    op.create_index("image_layers_content", "image_layers", ["content_key"])
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(100), nullable=False),
        sa.Column("redacted", sa.Text, nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("confidence", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20)),
        sa.Column("layer_digest", sa.String(200)),
        sa.Column("path", sa.Text),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("findings_fingerprint", "findings", ["fingerprint"])
    op.create_index("findings_image", "findings", ["image_id"])
    op.create_table(
        "locations",
        sa.Column(
            "finding_id", sa.Integer, sa.ForeignKey("findings.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("ordinal", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("layer_index", sa.Integer),
        sa.Column("layer_digest", sa.String(200)),
        sa.Column("path", sa.Text),
        sa.Column("status", sa.String(20)),
        sa.Column("key", sa.Text),
    )


def downgrade() -> None:
    for table in ("locations", "findings", "image_layers", "images", "layer_hits", "layers"):
        op.drop_table(table)
