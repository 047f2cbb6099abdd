"""The schema as SQLAlchemy 2 Core tables, built for one dialect, table prefix and schema.

Every table has created_at, updated_at, expires_at (NULL = never) and
deleted_at (soft delete). "One active row per natural key" comes from
DialectRules.add_active_unique (a partial unique index, or on MySQL/MariaDB a
generated column under a unique index). Events, summaries and track events
point at their session's surrogate key, so a re-created id never sees rows of
an earlier incarnation.

The Alembic migrations create exactly this schema; a test compares them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, MetaData, Table, Text, text
from sqlalchemy.schema import SchemaItem

from .column_types import BigId, Identifier, JSONDoc, UTCDateTime
from .dialects import DialectRules

DEFAULT_PREFIX = "ss_"
LABEL_LENGTH = 255


@dataclass(frozen=True)
class Tables:
    metadata: MetaData
    sessions: Table
    events: Table
    app_state: Table
    user_state: Table
    summaries: Table
    track_events: Table
    prefix: str

    @property
    def all(self) -> tuple[Table, ...]:
        return (self.sessions, self.events, self.app_state, self.user_state, self.summaries, self.track_events)


def _lifecycle() -> list[Column[Any]]:
    return [
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("expires_at", UTCDateTime(), nullable=True),
        Column("deleted_at", UTCDateTime(), nullable=True),
    ]


def _table(
    metadata: MetaData, rules: DialectRules, name: str, natural_key: list[str] | None, *items: SchemaItem, **options: Any
) -> Table:
    """A table with the lifecycle columns; with a natural_key, one active row per key.

    Tables addressed by natural key are expired and purged by the cleanup job
    through the expires_at / deleted_at indexes. Rows of the per-session tables
    (events, track events) go with their session or are trimmed by seq, so
    they carry no such indexes that every insert would pay for.
    """
    table = Table(
        name, metadata, Column("pk", BigId(), primary_key=True, autoincrement=True), *items, *_lifecycle(),
        mysql_engine="InnoDB", mysql_charset="utf8mb4", **options,
    )
    if natural_key:
        rules.add_active_unique(table, natural_key)
        Index(f"{name}_expires", table.c.expires_at)
        Index(f"{name}_deleted", table.c.deleted_at)
    return table


def build_tables(rules: DialectRules, prefix: str = DEFAULT_PREFIX, schema: str | None = None) -> Tables:
    """The sessionstore tables for one dialect, named ``{prefix}sessions`` etc."""
    metadata = MetaData(schema=schema)
    p = prefix
    session_fk = f"{schema}.{p}sessions.pk" if schema else f"{p}sessions.pk"

    sessions = _table(
        metadata, rules, f"{p}sessions", ["app_name", "user_id", "session_id"],
        Column("app_name", Identifier(), nullable=False),
        Column("user_id", Identifier(), nullable=False),
        Column("session_id", Identifier(), nullable=False),
        Column("state", JSONDoc(), nullable=False),
        Column("version", BigId(), nullable=False, server_default=text("0")),
        Column("last_seq", BigId(), nullable=False, server_default=text("0")),
        # Added by revision 0002: NULL title = none, NULL meta = {} (rows from before 0002).
        Column("title", Text(), nullable=True),
        Column("meta", JSONDoc(), nullable=True),
        # SQLite would otherwise hand a hard-deleted session's rowid to the next one.
        sqlite_autoincrement=True,
    )
    Index(f"{p}sessions_recent", sessions.c.app_name, sessions.c.user_id, sessions.c.updated_at, sessions.c.session_id)
    # list_app_sessions: an app's sessions of every user, newest first (revision 0002).
    Index(f"{p}sessions_app_recent", sessions.c.app_name, sessions.c.updated_at, sessions.c.session_id, sessions.c.user_id)

    def session_ref() -> Column[Any]:
        return Column("session_pk", BigId(), ForeignKey(session_fk, ondelete="CASCADE"), nullable=False)

    events = _table(
        metadata, rules, f"{p}events", None,
        session_ref(),
        Column("seq", BigId(), nullable=False),
        Column("event_id", Identifier(), nullable=False),
        Column("author", Identifier(LABEL_LENGTH), nullable=False),
        Column("invocation_id", Identifier(LABEL_LENGTH), nullable=True),
        Column("branch", Identifier(LABEL_LENGTH), nullable=True),
        Column("timestamp", UTCDateTime(), nullable=False),
        Column("content", JSONDoc(), nullable=True),
        Column("state_delta", JSONDoc(), nullable=True),
        Column("state_removed", JSONDoc(), nullable=True),
        Column("meta", JSONDoc(), nullable=True),
    )
    Index(f"{p}events_session_seq", events.c.session_pk, events.c.seq, unique=True)
    Index(f"{p}events_session_event_id", events.c.session_pk, events.c.event_id, unique=True)

    app_state = _table(
        metadata, rules, f"{p}app_state", ["app_name", "state_key"],
        Column("app_name", Identifier(), nullable=False),
        Column("state_key", Identifier(), nullable=False),
        Column("value", JSONDoc(), nullable=False),
    )
    user_state = _table(
        metadata, rules, f"{p}user_state", ["app_name", "user_id", "state_key"],
        Column("app_name", Identifier(), nullable=False),
        Column("user_id", Identifier(), nullable=False),
        Column("state_key", Identifier(), nullable=False),
        Column("value", JSONDoc(), nullable=False),
    )
    summaries = _table(
        metadata, rules, f"{p}summaries", ["session_pk", "filter_key"],
        session_ref(),
        Column("filter_key", Identifier(), nullable=False),
        Column("summary", JSONDoc(), nullable=False),
        Column("through_seq", BigId(), nullable=False, server_default=text("0")),
    )
    track_events = _table(
        metadata, rules, f"{p}track_events", None,
        session_ref(),
        Column("track", Identifier(), nullable=False),
        Column("seq", BigId(), nullable=False),
        Column("timestamp", UTCDateTime(), nullable=False),
        Column("payload", JSONDoc(), nullable=True),
    )
    Index(f"{p}track_events_session_track", track_events.c.session_pk, track_events.c.track, track_events.c.seq, unique=True)
    return Tables(metadata, sessions, events, app_state, user_state, summaries, track_events, prefix)
