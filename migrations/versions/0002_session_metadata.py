"""Session metadata and cross-user listing: ss_sessions gets title, meta and an index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Frozen DDL, like 0001 (which explains the dialect differences). Adds:
- ``title`` (TEXT, NULL = no title) and ``meta`` (a JSON document, NULL read
  as the empty object) to the sessions table; existing rows keep NULLs, so
  the upgrade writes no row and takes no long lock on PostgreSQL or MySQL.
- ``{prefix}sessions_app_recent`` on (app_name, updated_at, session_id,
  user_id), which list_app_sessions pages through backwards.

Plain ALTER TABLE ADD / DROP COLUMN everywhere, no batch mode: SQLite has
both (DROP COLUMN since 3.35, for a column no index or constraint names), so
no table is rebuilt and ``upgrade --sql`` / ``downgrade --sql`` work offline.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_MYSQLS = ("mysql", "mariadb")


def _settings() -> tuple[str, str | None]:
    ctx = op.get_context()
    return ctx.opts["sessionstore_prefix"], ctx.opts.get("sessionstore_schema")


def _json() -> sa.types.TypeEngine:
    return (
        sa.JSON()
        .with_variant(postgresql.JSONB(), "postgresql")
        .with_variant(sa.Text(), "sqlite")
        .with_variant(mysql.JSON(), *_MYSQLS)
    )


def upgrade() -> None:
    p, schema = _settings()
    op.add_column(f"{p}sessions", sa.Column("title", sa.Text(), nullable=True), schema=schema)
    op.add_column(f"{p}sessions", sa.Column("meta", _json(), nullable=True), schema=schema)
    op.create_index(
        f"{p}sessions_app_recent", f"{p}sessions", ["app_name", "updated_at", "session_id", "user_id"], schema=schema
    )


def downgrade() -> None:
    p, schema = _settings()
    op.drop_index(f"{p}sessions_app_recent", table_name=f"{p}sessions", schema=schema)
    op.drop_column(f"{p}sessions", "meta", schema=schema)
    op.drop_column(f"{p}sessions", "title", schema=schema)
