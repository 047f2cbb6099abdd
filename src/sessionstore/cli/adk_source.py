"""Reading a Google ADK ``DatabaseSessionService`` database, for ``sessionstore import adk``.

Only ADK's current schema (version "1", kept in ``adk_internal_metadata``:
events as JSON in ``events.event_data``) is read. Older databases (schema
"0", whose event actions are Python pickles) are refused with the command
that upgrades them; nothing here ever unpickles: every column read is JSON
text (or PostgreSQL JSONB), decoded with ``json.loads``.

Reads are keyset-paged (sessions by app, user, id; events by timestamp, id)
so memory stays bounded whatever the database holds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime, String, Text, and_, column, func, inspect, or_, select, table, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import SchemaError
from ..redaction import redact
from ..sql.engine import make_engine

SUPPORTED_VERSION = "1"
UPGRADE_HINT = (
    "upgrade it to ADK's current schema first with ADK's own command "
    "(`adk migrate session --source_db_url=… --dest_db_url=…`), then import the upgraded database"
)

_meta = table("adk_internal_metadata", column("key", String()), column("value", String()))
_sessions = table(
    "sessions", column("app_name", String()), column("user_id", String()), column("id", String()),
    column("state", Text()), column("create_time", DateTime()), column("update_time", DateTime()),
)
_events = table(
    "events", column("id", String()), column("app_name", String()), column("user_id", String()),
    column("session_id", String()), column("invocation_id", String()), column("timestamp", DateTime()),
    column("event_data", Text()),
)
_app_states = table("app_states", column("app_name", String()), column("state", Text()))
_user_states = table("user_states", column("app_name", String()), column("user_id", String()), column("state", Text()))


@dataclass(slots=True)
class SourceSession:
    app_name: str
    user_id: str
    id: str
    state: dict[str, Any]
    create_time: datetime
    update_time: datetime


@dataclass(slots=True)
class SourceEvent:
    id: str
    invocation_id: str | None
    timestamp: datetime
    data: dict[str, Any]


class AdkDatabase:
    """An ADK session database, read-only."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = make_engine(url)

    async def close(self) -> None:
        await self.engine.dispose()

    async def check_schema(self) -> None:
        """Raise SchemaError unless this is an ADK database of the current schema."""

        def tables(conn: Any) -> set[str]:
            return set(inspect(conn).get_table_names())

        async with self.engine.connect() as conn:
            names = await conn.run_sync(tables)
            where = redact(self.url)
            if "adk_internal_metadata" not in names:
                if "events" in names and "sessions" in names:
                    raise SchemaError(
                        f"{where} is an ADK session database of the old schema (version 0, event actions "
                        f"pickled), which sessionstore does not read: {UPGRADE_HINT}"
                    )
                raise SchemaError(f"{where} is not an ADK DatabaseSessionService database (no adk_internal_metadata table)")
            version = (await conn.execute(select(_meta.c.value).where(_meta.c.key == "schema_version"))).scalar()
        if version != SUPPORTED_VERSION:
            if version == "0":
                raise SchemaError(f"{where} is an ADK database of schema version 0 (pickled): {UPGRADE_HINT}")
            raise SchemaError(
                f"{where} has ADK schema version {version!r}; this sessionstore reads version {SUPPORTED_VERSION!r} "
                "(upgrade sessionstore, or import with the ADK version that wrote it)"
            )

    async def counts(self, app: str | None) -> tuple[int, int]:
        """(sessions, events) the import covers."""
        async with self.engine.connect() as conn:
            s = select(func.count()).select_from(_sessions)
            e = select(func.count()).select_from(_events)
            if app is not None:
                s, e = s.where(_sessions.c.app_name == app), e.where(_events.c.app_name == app)
            return int((await conn.execute(s)).scalar_one()), int((await conn.execute(e)).scalar_one())

    async def sessions(self, app: str | None, batch: int) -> AsyncIterator[list[SourceSession]]:
        """Every session (of `app`), in pages of `batch`, ordered by (app, user, id)."""
        c = _sessions.c
        after: tuple[str, str, str] | None = None
        while True:
            query = select(_sessions).order_by(c.app_name, c.user_id, c.id).limit(batch)
            if app is not None:
                query = query.where(c.app_name == app)
            if after is not None:
                query = query.where(tuple_(c.app_name, c.user_id, c.id) > tuple_(*after))
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            if not rows:
                return
            yield [
                SourceSession(r.app_name, r.user_id, r.id, _json(r.state), _utc(r.create_time), _utc(r.update_time))
                for r in rows
            ]
            last = rows[-1]
            after = (last.app_name, last.user_id, last.id)

    async def events(self, session: SourceSession, batch: int) -> AsyncIterator[list[SourceEvent]]:
        """A session's events in ADK's order (timestamp, then id), in pages of `batch`."""
        c = _events.c
        after: tuple[datetime, str] | None = None
        while True:
            query = (
                select(_events)
                .where(c.app_name == session.app_name, c.user_id == session.user_id, c.session_id == session.id)
                .order_by(c.timestamp, c.id)
                .limit(batch)
            )
            if after is not None:
                query = query.where(or_(c.timestamp > after[0], and_(c.timestamp == after[0], c.id > after[1])))
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            if not rows:
                return
            yield [SourceEvent(r.id, r.invocation_id, _utc(r.timestamp), _json(r.event_data)) for r in rows]
            after = (rows[-1].timestamp, rows[-1].id)

    async def app_states(self, app: str | None) -> list[tuple[str, dict[str, Any]]]:
        query = select(_app_states)
        if app is not None:
            query = query.where(_app_states.c.app_name == app)
        async with self.engine.connect() as conn:
            return [(r.app_name, _json(r.state)) for r in (await conn.execute(query)).all()]

    async def user_states(self, app: str | None) -> list[tuple[str, str, dict[str, Any]]]:
        query = select(_user_states)
        if app is not None:
            query = query.where(_user_states.c.app_name == app)
        async with self.engine.connect() as conn:
            return [(r.app_name, r.user_id, _json(r.state)) for r in (await conn.execute(query)).all()]


def _json(value: Any) -> dict[str, Any]:
    """A JSON column's value: TEXT decoded with json.loads, JSONB already decoded; never pickle."""
    if value is None:
        return {}
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise SchemaError(f"expected a JSON object in an ADK JSON column, found {type(value).__name__}")
    return value


def _utc(value: datetime) -> datetime:
    """ADK stores naive UTC datetimes (SQLite, PostgreSQL, MySQL); aware ones are converted."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
