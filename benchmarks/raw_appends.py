"""The append-with-state-delta floor: the same append written by hand on a raw driver connection.

One transaction per event, on a dedicated connection:

1. claim the session row by pk (live: not deleted, not expired): bump
   version and last_seq, set updated_at, and merge the event's one-key
   state delta into the session's state JSON in SQL (PostgreSQL
   ``state || $x::jsonb``, MariaDB ``JSON_SET``, SQLite ``json_set``),
   learning the event's seq (``RETURNING last_seq``; on MariaDB, which has
   no UPDATE ... RETURNING, ``LAST_INSERT_ID(last_seq + 1)``);
2. insert the event row at that seq with its content, state_delta and meta;
3. commit.

Why it is a fair floor: it is correct with any number of writers (the row
claim serialises appends to a session and hands out gap-free seqs), and it
does all the work a real append does for this workload: a fresh event id,
the content and the delta serialised with orjson, current timestamps, the
merged state. It skips only what the library adds on top: argument and
JSON checks, copies, the pool checkout, retries, the idempotency check
(the unique index still catches a retried id), app:/user: keys (the
workload has none). On PostgreSQL it takes four round trips (BEGIN,
UPDATE, INSERT, COMMIT), on MariaDB three (autocommit off: UPDATE, INSERT,
COMMIT), on SQLite four hops to aiosqlite's thread (BEGIN IMMEDIATE,
UPDATE ... RETURNING, INSERT, COMMIT): what a hand-written append costs
through each driver's public API.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any
from uuid import uuid4

import orjson

from .common import raw_close, raw_connect
from .workload import CONTENT

UTC = timezone.utc
_INSERT_COLS = "session_pk, seq, event_id, author, timestamp, content, state_delta, meta, created_at, updated_at"


class RawAppender:
    """Appends `{"turn": n}` delta events to sessions by pk on one dedicated connection."""

    def __init__(self, conn: Any, prefix: str) -> None:
        self.conn = conn
        self.p = prefix

    async def append(self, session_pk: int, turn: int) -> int:
        """Store one event with state delta {"turn": turn}; return its seq."""
        raise NotImplementedError

    async def close(self) -> None:
        await raw_close(self.conn)


class AsyncpgAppender(RawAppender):
    def __init__(self, conn: Any, p: str) -> None:
        super().__init__(conn, p)
        self.claim = (
            f"UPDATE {p}sessions SET version = version + 1, last_seq = last_seq + 1, updated_at = $2, "
            "state = state || $3::jsonb "
            "WHERE pk = $1 AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > $2) RETURNING last_seq"
        )
        self.insert = (
            f"INSERT INTO {p}events ({_INSERT_COLS}) "
            "VALUES ($1, $2, $3, 'model', $4, $5::jsonb, $6::jsonb, '{}'::jsonb, $4, $4)"
        )

    async def append(self, session_pk, turn):
        now = datetime.now(UTC)
        delta = orjson.dumps({"turn": turn}).decode()
        content = orjson.dumps(CONTENT).decode()
        conn = self.conn
        async with conn.transaction():
            seq = await conn.fetchval(self.claim, session_pk, now, delta)
            if seq is None:
                raise LookupError(f"no live session {session_pk}")
            await conn.execute(self.insert, session_pk, seq, uuid4().hex, now, content, delta)
        return seq


class AiomysqlAppender(RawAppender):
    """autocommit off: the UPDATE opens the transaction, no BEGIN round trip."""

    def __init__(self, conn: Any, p: str) -> None:
        super().__init__(conn, p)
        self.claim = (
            f"UPDATE {p}sessions SET version = version + 1, last_seq = LAST_INSERT_ID(last_seq + 1), "
            "updated_at = %s, state = JSON_SET(state, '$.turn', %s) "
            "WHERE pk = %s AND active = 1 AND (expires_at IS NULL OR expires_at > %s)"
        )
        self.insert = (
            f"INSERT INTO {p}events ({_INSERT_COLS}) VALUES (%s, %s, %s, 'model', %s, %s, %s, '{{}}', %s, %s)"
        )

    async def append(self, session_pk, turn):
        now = datetime.now(UTC).replace(tzinfo=None)
        delta = orjson.dumps({"turn": turn}).decode()
        content = orjson.dumps(CONTENT).decode()
        conn = self.conn
        async with conn.cursor() as cur:
            try:
                await cur.execute(self.claim, (now, turn, session_pk, now))
                if cur.rowcount != 1:
                    raise LookupError(f"no live session {session_pk}")
                seq = cur.lastrowid
                await cur.execute(self.insert, (session_pk, seq, uuid4().hex, now, content, delta, now, now))
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise
        return seq


class AiosqliteAppender(RawAppender):
    """SQLite has one writer: `gate` (shared by a process's appenders) queues them in-process, as
    ours does, instead of leaving them to sleep in SQLite's busy handler."""

    def __init__(self, conn: Any, p: str, gate: asyncio.Lock) -> None:
        super().__init__(conn, p)
        self.gate = gate
        self.claim = (
            f"UPDATE {p}sessions SET version = version + 1, last_seq = last_seq + 1, updated_at = ?, "
            "state = json_set(state, '$.turn', ?) "
            "WHERE pk = ? AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > ?) RETURNING last_seq"
        )
        self.insert = (
            f"INSERT INTO {p}events ({_INSERT_COLS}) VALUES (?, ?, ?, 'model', ?, ?, ?, '{{}}', ?, ?)"
        )

    async def append(self, session_pk, turn):
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        delta = orjson.dumps({"turn": turn}).decode()
        content = orjson.dumps(CONTENT).decode()
        conn = self.conn
        async with self.gate:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                rows = await conn.execute_fetchall(self.claim, (now, turn, session_pk, now))
                if not rows:
                    raise LookupError(f"no live session {session_pk}")
                seq = rows[0][0]
                await conn.execute(self.insert, (session_pk, seq, uuid4().hex, now, content, delta, now, now))
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
        return seq


async def open_appenders(url: Any, prefix: str, count: int) -> list[RawAppender]:
    """`count` appenders, each on its own connection to `url` (a SQLAlchemy URL)."""
    kind = url.get_backend_name()
    conns = [await raw_connect(url, autocommit=False) for _ in range(count)]
    if kind == "postgresql":
        return [AsyncpgAppender(c, prefix) for c in conns]
    if kind in ("mysql", "mariadb"):
        return [AiomysqlAppender(c, prefix) for c in conns]
    gate = asyncio.Lock()
    return [AiosqliteAppender(c, prefix, gate) for c in conns]
