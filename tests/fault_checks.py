"""What the fault tests check once the fault is over, read behind the service's back.

- ``stored_events``: every stored event, read with raw SQL on a fresh
  connection (not the service's pool, which the fault may have left dirty);
  ``compare_acknowledged`` compares it with the appends whose await returned
  a seq, and checks that every session's seqs are 1..n without a gap.
- ``open_transactions`` / ``wait_no_open_transactions``: the database's own
  view of connections left inside a transaction (PostgreSQL's
  pg_stat_activity, MariaDB's information_schema.innodb_trx; on SQLite,
  whether a new connection can take the write lock at once).
- ``pooled_in_transaction``: the driver's view of every idle pooled
  connection of a service.
- ``every_operation``: one call of each kind, to show each fails (or works) alike.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

import sessionstore as ss
from sessionstore.sql.engine import make_engine
from sessionstore.sql.service import SQLSessionService


@dataclass
class Acknowledged:
    """Appends whose await returned: event id -> (session id, seq)."""

    events: dict[str, tuple[str, int]] = field(default_factory=dict)

    def add(self, session_id: str, event_id: str, seq: int | None) -> None:
        assert seq is not None
        self.events[event_id] = (session_id, seq)

    def __len__(self) -> int:
        return len(self.events)


def _text(value: object) -> str:
    """Ids come back as bytes from MySQL/MariaDB's VARBINARY columns."""
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


async def stored_events(url: str, app_name: str, prefix: str = "ss_") -> tuple[dict[str, tuple[str, int]], dict[str, int]]:
    """(event id -> (session id, seq), session id -> last_seq) of an app's active sessions, by raw SQL."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            events = (
                await conn.execute(
                    text(
                        f"SELECT s.session_id, e.event_id, e.seq FROM {prefix}events e "
                        f"JOIN {prefix}sessions s ON s.pk = e.session_pk "
                        "WHERE s.app_name = :app AND s.deleted_at IS NULL"
                    ),
                    {"app": app_name},
                )
            ).all()
            sessions = (
                await conn.execute(
                    text(f"SELECT session_id, last_seq FROM {prefix}sessions WHERE app_name = :app AND deleted_at IS NULL"),
                    {"app": app_name},
                )
            ).all()
    finally:
        await engine.dispose()
    return (
        {_text(event_id): (_text(session_id), int(seq)) for session_id, event_id, seq in events},
        {_text(session_id): int(last_seq) for session_id, last_seq in sessions},
    )


@dataclass
class Verdict:
    """How storage compares with what was acknowledged."""

    acknowledged: int
    stored: int
    lost: dict[str, tuple[str, int]]  # acknowledged appends not stored at their seq
    gaps: list[str]  # sessions whose seqs are not 1..n, or whose last_seq disagrees

    def figures(self) -> dict[str, int]:
        return {"acknowledged": self.acknowledged, "stored": self.stored, "lost": len(self.lost)}

    def check(self) -> None:
        assert not self.lost, (
            f"{len(self.lost)} of {self.acknowledged} acknowledged appends are not stored at their seq: "
            f"{sorted(self.lost.items())[:5]}"
        )
        assert not self.gaps, f"seqs have gaps or repeats: {self.gaps[:5]}"


async def compare_acknowledged(url: str, app_name: str, acked: Acknowledged) -> Verdict:
    """Every acknowledged append against storage (raw SQL, fresh connection); every session's seqs."""
    stored, last_seq = await stored_events(url, app_name)
    lost = {event_id: where for event_id, where in acked.events.items() if stored.get(event_id) != where}
    by_session: dict[str, list[int]] = {}
    for session_id, seq in stored.values():
        by_session.setdefault(session_id, []).append(seq)
    gaps = [
        f"{session_id}: {len(seqs)} events, last_seq {last_seq.get(session_id)}"
        for session_id, seqs in by_session.items()
        if sorted(seqs) != list(range(1, len(seqs) + 1)) or last_seq.get(session_id) != len(seqs)
    ]
    return Verdict(len(acked), len(stored), lost, gaps)


async def open_transactions(url: str) -> int:
    """Connections to this database (other than the asking one) that sit inside a transaction."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = sqlite3.connect(parsed.database, timeout=0, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")  # fails at once if any connection holds a write transaction
            db.execute("ROLLBACK")
            return 0
        except sqlite3.OperationalError:
            return 1
        finally:
            db.close()
    engine = make_engine(url, poolclass=NullPool)
    if engine.dialect.name == "postgresql":
        sql = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
        )
    else:
        sql = (
            "SELECT count(*) FROM information_schema.innodb_trx t "
            "JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
            "WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID()"
        )
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text(sql)))
    finally:
        await engine.dispose()


async def wait_no_open_transactions(url: str, within_s: float = 5.0) -> int:
    """open_transactions, polled until 0 or `within_s` passes: the server needs a moment to
    roll back what a connection discarded client-side left open. The last count."""
    deadline = time.monotonic() + within_s
    while True:
        count = await open_transactions(url)
        if count == 0 or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.05)


def every_operation(svc: SQLSessionService, session: ss.Session) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One call of each kind, by name: the writes on the driver connection, a write through
    SQLAlchemy (delete_session) and the reads."""
    return {
        "append": lambda: svc.append_event(session, ss.Event(author="a", content=1)),
        "append_with_state": lambda: svc.append_event(session, ss.Event(author="a", content=1, state_delta={"k": 1})),
        "update_session_state": lambda: svc.update_session_state(session.key, {"k": 2}),
        "update_app_state": lambda: svc.update_app_state(session.app_name, {"a": 1}),
        "create_session": lambda: svc.create_session(ss.Key(session.app_name, "u1", uuid.uuid4().hex)),
        "delete_session": lambda: svc.delete_session(ss.Key(session.app_name, "u1", "nothing")),
        "get_session": lambda: svc.get_session(session.key),
        "list_sessions": lambda: svc.list_sessions(session.key.user_key),
    }


async def pooled_in_transaction(svc: SQLSessionService) -> list[bool]:
    """Check out every idle connection of the service's pool and ask its driver whether it
    is inside a transaction (asyncpg, psycopg, aiomysql and aiosqlite each say so)."""
    idle = svc.engine.pool.checkedin()  # type: ignore[attr-defined]
    found = []
    async with AsyncExitStack() as stack:
        for _ in range(idle):
            conn = await stack.enter_async_context(svc.engine.connect())
            driver = (await conn.get_raw_connection()).driver_connection
            if hasattr(driver, "is_in_transaction"):  # asyncpg
                found.append(driver.is_in_transaction())
            elif hasattr(driver, "get_transaction_status"):  # aiomysql
                found.append(driver.get_transaction_status())
            elif hasattr(driver, "info"):  # psycopg: IDLE is the only state outside a transaction
                found.append(driver.info.transaction_status.name != "IDLE")
            else:  # aiosqlite
                found.append(driver.in_transaction)
    return found


__all__ = [
    "Acknowledged",
    "Verdict",
    "compare_acknowledged",
    "every_operation",
    "open_transactions",
    "pooled_in_transaction",
    "stored_events",
    "wait_no_open_transactions",
]
