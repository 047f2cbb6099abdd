"""The read floor: what get_session and list_sessions return, read with the raw async driver.

A hand-written reader on a dedicated driver connection (asyncpg,
aiomysql with autocommit, aiosqlite in autocommit mode), doing the fewest
statements a competent author would use for the same result:

- a session read: (1) the session row by its natural key, live (not
  deleted, not expired); (2) its newest N events through the unique
  (session_pk, seq) index, ``seq <= last_seq`` DESC LIMIT N; (3) the app's
  and the user's live state rows in one UNION ALL. Three round trips, as
  ours; no transaction around them (ours opens one and rolls it back).
- a listing page: (1) the user's live sessions by (updated_at, session_id)
  DESC LIMIT page+1 through the (app, user, updated_at, session_id) index;
  (2) the app and user state rows, merged into each session's state.

Why it is fair: the floor produces the same data, not less of it. Every
JSON column is decoded (content, state_delta, state_removed, meta, the
session state, every shared value) with orjson, as ours does; identifiers
come back as str (MySQL/MariaDB store them as VARBINARY) and times as
aware UTC datetimes (SQLite stores text, MySQL naive values); the state is
merged with ``app:``/``user:`` prefixes; each event becomes a dict in seq
order. What it skips is only the library's own layers: argument checks,
SQLAlchemy, the pool, the Event/Session objects.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson

from .common import raw_close, raw_connect

loads = orjson.loads
UTC = timezone.utc

_SESSION_COLS = "pk, state, version, last_seq, created_at, updated_at"
_EVENT_COLS = "seq, event_id, author, invocation_id, branch, timestamp, content, state_delta, state_removed, meta"
_LIST_COLS = "session_id, state, version, created_at, updated_at"


def _sql(p: str, active: str, style: str) -> dict[str, str]:
    """The statements, `active` being the dialect's live-row test. Placeholders are numbered
    ($1, $2 ...) or positional (%s, ?) in order of appearance: callers pass arguments in that order."""
    live = f"{active} AND (expires_at IS NULL OR expires_at > {{}})"
    statements = {
        "session": f"SELECT {_SESSION_COLS} FROM {p}sessions WHERE app_name = {{}} AND user_id = {{}} "
        f"AND session_id = {{}} AND {live}",
        "events": f"SELECT {_EVENT_COLS} FROM {p}events WHERE session_pk = {{}} AND seq <= {{}} "
        "ORDER BY seq DESC LIMIT {}",
        "shared": f"SELECT 'a', state_key, value FROM {p}app_state WHERE app_name = {{}} AND {live} "
        f"UNION ALL SELECT 'u', state_key, value FROM {p}user_state WHERE app_name = {{}} AND user_id = {{}} "
        f"AND {live}",
        "list": f"SELECT {_LIST_COLS} FROM {p}sessions WHERE app_name = {{}} AND user_id = {{}} AND {live} "
        "ORDER BY updated_at DESC, session_id DESC LIMIT {}",
    }
    out = {}
    for name, text in statements.items():
        n = text.count("{}")
        marks = [f"${i}" for i in range(1, n + 1)] if style == "dollar" else [style] * n
        out[name] = text.format(*marks)
    return out


def _merged(state: dict[str, Any], shared: list[Any]) -> dict[str, Any]:
    """Session keys bare, app keys as app:<key>, user keys as user:<key> (shared: decoded (scope, key, value))."""
    merged = dict(state)
    for scope, key, value in shared:
        merged[("app:" if scope == "a" else "user:") + key] = value
    return merged


class RawReader:
    """One dedicated connection; subclasses fetch rows and convert their driver's values."""

    def __init__(self, conn: Any, sql: dict[str, str]) -> None:
        self.conn = conn
        self.sql = sql

    async def close(self) -> None:
        await raw_close(self.conn)

    async def read_session(self, app: str, user: str, session_id: str, limit: int) -> dict[str, Any] | None:
        now = self.now()
        rows = await self.fetch(self.sql["session"], app, user, session_id, now)
        if not rows:
            return None
        pk, state, version, last_seq, created_at, updated_at = rows[0]
        events: list[dict[str, Any]] = []
        if limit > 0 and last_seq > 0:
            events = self.events(await self.fetch(self.sql["events"], pk, last_seq, limit))
            events.reverse()
        shared = self.shared(await self.fetch(self.sql["shared"], app, now, app, user, now))
        return {
            "id": session_id, "state": _merged(loads(state), shared), "events": events, "version": version,
            "created_at": self.time(created_at), "updated_at": self.time(updated_at),
        }

    async def list_page(self, app: str, user: str, limit: int) -> list[dict[str, Any]]:
        now = self.now()
        rows = await self.fetch(self.sql["list"], app, user, now, limit + 1)
        if not rows:
            return []
        shared = self.shared(await self.fetch(self.sql["shared"], app, now, app, user, now))
        time, ident = self.time, self.ident
        return [
            {
                "id": ident(sid), "state": _merged(loads(state), shared), "version": version,
                "created_at": time(created), "updated_at": time(updated),
            }
            for sid, state, version, created, updated in rows[:limit]
        ]

    # per driver
    async def fetch(self, sql: str, *args: Any) -> list[Any]: ...
    def now(self) -> Any: ...
    def events(self, rows: list[Any]) -> list[dict[str, Any]]: ...
    def shared(self, rows: list[Any]) -> list[Any]: ...

    @staticmethod
    def time(value: Any) -> datetime:
        return value

    @staticmethod
    def ident(value: Any) -> str:
        return value


class AsyncpgReader(RawReader):
    """asyncpg: prepared statements (its statement cache), str ids, aware datetimes, jsonb as text."""

    async def fetch(self, sql, *args):
        return await self.conn.fetch(sql, *args)

    def now(self):
        return datetime.now(UTC)

    def events(self, rows):
        return [
            {
                "seq": seq, "id": eid, "author": author, "invocation_id": inv, "branch": branch,
                "timestamp": ts, "content": loads(content), "state_delta": loads(delta),
                "state_removed": None if removed is None else loads(removed), "metadata": loads(meta),
            }
            for seq, eid, author, inv, branch, ts, content, delta, removed, meta in rows
        ]

    def shared(self, rows):
        return [(scope, key, loads(value)) for scope, key, value in rows]


class AiomysqlReader(RawReader):
    """aiomysql (autocommit): ids are VARBINARY (bytes -> str), DATETIME(6) naive UTC, JSON as text."""

    async def fetch(self, sql, *args):
        async with self.conn.cursor() as cur:
            await cur.execute(sql, args)
            return await cur.fetchall()

    def now(self):
        return datetime.now(UTC).replace(tzinfo=None)

    def events(self, rows):
        return [
            {
                "seq": seq, "id": eid.decode(), "author": author.decode(),
                "invocation_id": None if inv is None else inv.decode(),
                "branch": None if branch is None else branch.decode(),
                "timestamp": ts.replace(tzinfo=UTC), "content": loads(content), "state_delta": loads(delta),
                "state_removed": None if removed is None else loads(removed), "metadata": loads(meta),
            }
            for seq, eid, author, inv, branch, ts, content, delta, removed, meta in rows
        ]

    def shared(self, rows):
        return [(scope, key.decode(), loads(value)) for scope, key, value in rows]

    @staticmethod
    def time(value):
        return value.replace(tzinfo=UTC)

    @staticmethod
    def ident(value):
        return value.decode()


class AiosqliteReader(RawReader):
    """aiosqlite: one hop to its thread per statement (execute_fetchall); times stored as ISO text."""

    async def fetch(self, sql, *args):
        return await self.conn.execute_fetchall(sql, args)

    def now(self):
        return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def events(self, rows):
        iso = datetime.fromisoformat
        return [
            {
                "seq": seq, "id": eid, "author": author, "invocation_id": inv, "branch": branch,
                "timestamp": iso(ts).replace(tzinfo=UTC), "content": loads(content), "state_delta": loads(delta),
                "state_removed": None if removed is None else loads(removed), "metadata": loads(meta),
            }
            for seq, eid, author, inv, branch, ts, content, delta, removed, meta in rows
        ]

    def shared(self, rows):
        return [(scope, key, loads(value)) for scope, key, value in rows]

    @staticmethod
    def time(value):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)


async def open_reader(url: Any, prefix: str) -> RawReader:
    """A raw reader of the tables under `prefix`, on its own connection to `url` (a SQLAlchemy URL)."""
    kind = url.get_backend_name()
    conn = await raw_connect(url, autocommit=True)
    if kind == "postgresql":
        return AsyncpgReader(conn, _sql(prefix, "deleted_at IS NULL", "dollar"))
    if kind in ("mysql", "mariadb"):
        # The generated `active` column, so the (natural key..., active) unique index serves the lookup.
        return AiomysqlReader(conn, _sql(prefix, "active = 1", "%s"))
    return AiosqliteReader(conn, _sql(prefix, "deleted_at IS NULL", "?"))
