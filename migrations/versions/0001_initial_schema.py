"""Initial schema: sessions, events, app and user state, summaries, track events.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Frozen DDL. Once released this file never changes: when the models move on,
a new revision describes the step. It deliberately does not import
sessionstore's models; tests/test_migrations.py proves (with Alembic's
autogenerate comparison) that upgrading to head gives exactly the schema the
models define.

The table prefix and the schema (PostgreSQL) come from the migration context
that migrations/env.py configures (``sessionstore_prefix``,
``sessionstore_schema``).

Dialect differences:
- JSON documents are JSONB on PostgreSQL, JSON on MySQL/MariaDB (MariaDB
  stores that as LONGTEXT with a json_valid CHECK), TEXT on SQLite (a column
  declared JSON would get NUMERIC affinity there).
- Timestamps: timestamptz on PostgreSQL, DATETIME(6) on MySQL/MariaDB.
- Ids compare exactly (case and trailing spaces matter): VARBINARY holding
  UTF-8 on MySQL/MariaDB, whose binary collations ignore trailing spaces.
- "One active row per natural key": a partial unique index WHERE deleted_at
  IS NULL on PostgreSQL and SQLite. MySQL/MariaDB have no partial indexes, so
  a STORED generated column ``active`` (1 while the row is active, NULL once
  deleted) joins the unique index; NULLs never clash in a unique index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_MYSQLS = ("mysql", "mariadb")
_ID_LENGTH = 128
_LABEL_LENGTH = 255


def _settings() -> tuple[str, str | None, bool]:
    ctx = op.get_context()
    return ctx.opts["sessionstore_prefix"], ctx.opts.get("sessionstore_schema"), ctx.dialect.name in _MYSQLS


def _big_id() -> sa.types.TypeEngine:
    # INTEGER on SQLite so that the primary key aliases the rowid.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ident(length: int = _ID_LENGTH) -> sa.types.TypeEngine:
    return sa.String(length).with_variant(mysql.VARBINARY(length * 4), *_MYSQLS)


def _json() -> sa.types.TypeEngine:
    # TEXT on SQLite: a column declared JSON there would get NUMERIC affinity.
    return (
        sa.JSON()
        .with_variant(postgresql.JSONB(), "postgresql")
        .with_variant(sa.Text(), "sqlite")
        .with_variant(mysql.JSON(), *_MYSQLS)
    )


def _timestamp() -> sa.types.TypeEngine:
    return (
        sa.DateTime()
        .with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
        .with_variant(mysql.DATETIME(fsp=6), *_MYSQLS)
    )


def _lifecycle() -> list[sa.Column]:
    return [
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=True),
        sa.Column("deleted_at", _timestamp(), nullable=True),
    ]


def _session_ref(prefix: str, schema: str | None) -> list[sa.SchemaItem]:
    target = f"{schema}.{prefix}sessions.pk" if schema else f"{prefix}sessions.pk"
    return [
        sa.Column("session_pk", _big_id(), nullable=False),
        sa.ForeignKeyConstraint(["session_pk"], [target], ondelete="CASCADE"),
    ]


def _create(name: str, natural_key: list[str] | None, *items: sa.SchemaItem, **options: object) -> None:
    """A table with a BIGINT surrogate key and the lifecycle columns.

    With a natural key: one active row per key, plus the expires_at and
    deleted_at indexes the cleanup job uses.
    """
    _, schema, is_mysql = _settings()
    columns: list[sa.SchemaItem] = [
        sa.Column("pk", _big_id(), primary_key=True, autoincrement=True),
        *items,
        *_lifecycle(),
    ]
    if natural_key and is_mysql:
        columns.append(
            sa.Column(
                "active",
                sa.Integer(),
                sa.Computed("CASE WHEN deleted_at IS NULL THEN 1 ELSE NULL END", persisted=True),
            )
        )
    op.create_table(name, *columns, schema=schema, mysql_engine="InnoDB", mysql_charset="utf8mb4", **options)
    if not natural_key:
        return
    if is_mysql:
        op.create_index(f"{name}_active_key", name, [*natural_key, "active"], unique=True, schema=schema)
    else:
        active = sa.text("deleted_at IS NULL")
        op.create_index(
            f"{name}_active_key", name, natural_key, unique=True, schema=schema,
            postgresql_where=active, sqlite_where=active,
        )
    op.create_index(f"{name}_expires", name, ["expires_at"], schema=schema)
    op.create_index(f"{name}_deleted", name, ["deleted_at"], schema=schema)


def upgrade() -> None:
    p, schema, _ = _settings()

    _create(
        f"{p}sessions", ["app_name", "user_id", "session_id"],
        sa.Column("app_name", _ident(), nullable=False),
        sa.Column("user_id", _ident(), nullable=False),
        sa.Column("session_id", _ident(), nullable=False),
        sa.Column("state", _json(), nullable=False),
        sa.Column("version", _big_id(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_seq", _big_id(), nullable=False, server_default=sa.text("0")),
        # SQLite would otherwise hand a hard-deleted session's rowid to the next one.
        sqlite_autoincrement=True,
    )
    op.create_index(
        f"{p}sessions_recent", f"{p}sessions", ["app_name", "user_id", "updated_at", "session_id"], schema=schema
    )

    _create(
        f"{p}events", None,
        *_session_ref(p, schema),
        sa.Column("seq", _big_id(), nullable=False),
        sa.Column("event_id", _ident(), nullable=False),
        sa.Column("author", _ident(_LABEL_LENGTH), nullable=False),
        sa.Column("invocation_id", _ident(_LABEL_LENGTH), nullable=True),
        sa.Column("branch", _ident(_LABEL_LENGTH), nullable=True),
        sa.Column("timestamp", _timestamp(), nullable=False),
        sa.Column("content", _json(), nullable=True),
        sa.Column("state_delta", _json(), nullable=True),
        sa.Column("state_removed", _json(), nullable=True),
        sa.Column("meta", _json(), nullable=True),
    )
    op.create_index(f"{p}events_session_seq", f"{p}events", ["session_pk", "seq"], unique=True, schema=schema)
    op.create_index(
        f"{p}events_session_event_id", f"{p}events", ["session_pk", "event_id"], unique=True, schema=schema
    )

    _create(
        f"{p}app_state", ["app_name", "state_key"],
        sa.Column("app_name", _ident(), nullable=False),
        sa.Column("state_key", _ident(), nullable=False),
        sa.Column("value", _json(), nullable=False),
    )

    _create(
        f"{p}user_state", ["app_name", "user_id", "state_key"],
        sa.Column("app_name", _ident(), nullable=False),
        sa.Column("user_id", _ident(), nullable=False),
        sa.Column("state_key", _ident(), nullable=False),
        sa.Column("value", _json(), nullable=False),
    )

    _create(
        f"{p}summaries", ["session_pk", "filter_key"],
        *_session_ref(p, schema),
        sa.Column("filter_key", _ident(), nullable=False),
        sa.Column("summary", _json(), nullable=False),
        sa.Column("through_seq", _big_id(), nullable=False, server_default=sa.text("0")),
    )

    _create(
        f"{p}track_events", None,
        *_session_ref(p, schema),
        sa.Column("track", _ident(), nullable=False),
        sa.Column("seq", _big_id(), nullable=False),
        sa.Column("timestamp", _timestamp(), nullable=False),
        sa.Column("payload", _json(), nullable=True),
    )
    op.create_index(
        f"{p}track_events_session_track", f"{p}track_events", ["session_pk", "track", "seq"], unique=True,
        schema=schema,
    )


def downgrade() -> None:
    p, schema, _ = _settings()
    # Children before their parent: MySQL/MariaDB DDL is not transactional and
    # a table still referenced by a foreign key cannot be dropped.
    for name in ("track_events", "summaries", "events", "user_state", "app_state", "sessions"):
        op.drop_table(f"{p}{name}", schema=schema)
