"""Issue 10's listing: the first page of 50 from list_sessions, at 100 and at 10,000 sessions of a user.

Two users of one app in the same tables: one with 100 sessions, one with
10,000 (bulk-loaded with SQLAlchemy Core, each with a small state and its
own updated_at), both with user state, the app with app state. Ours:
``list_sessions(UserKey, limit=50)``; the floor: the same page read with
the raw driver (benchmarks/raw_reads.py: one query through the
(app, user, updated_at, session_id) index, LIMIT 51 to know whether a next
page exists, one for the shared state merged into every session's state,
JSON decoded). Reads of the four (ours/floor x 100/10,000) alternate in
rounds of 10.

Targets: ours p50 at 10,000 sessions <= 1.5 ms on SQLite and PostgreSQL,
<= 2.5 ms on MariaDB, and flat: ours p50 at 10,000 / p50 at 100 <= 1.2.
The floor's p50 and ours/floor are reported alongside.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from functools import partial

from sqlalchemy import text

from sessionstore import UserKey
from sessionstore.sql.service import SQLSessionService

from .common import alternate, scratch_service
from .raw_reads import RawReader, open_reader
from .workload import APP, shared_state

PAGE = 50
USERS = {"100": 100, "10k": 10_000}


async def bench_list(kind: str, reads: int) -> dict[str, float]:
    async with scratch_service(kind) as svc:
        for name, count in USERS.items():
            await _fill_sessions(svc, f"u{name}", count)
            await shared_state(svc, f"u{name}")
        reader = await open_reader(svc.engine.url, svc.table_prefix)
        try:
            contenders: dict[str, Callable[[], Awaitable[object]]] = {}
            for name in USERS:
                user = UserKey(APP, f"u{name}")
                await _check_same(svc, reader, user)
                contenders[f"ours_{name}"] = partial(svc.list_sessions, user, limit=PAGE)
                contenders[f"floor_{name}"] = partial(reader.list_page, user.app_name, user.user_id, PAGE)
            t = await alternate(contenders, reads)
        finally:
            await reader.close()
    return {
        "p50_100_ms": t["ours_100"].p50 * 1e3, "p50_10k_ms": t["ours_10k"].p50 * 1e3,
        "floor_p50_100_ms": t["floor_100"].p50 * 1e3, "floor_p50_10k_ms": t["floor_10k"].p50 * 1e3,
        "flat_ratio": t["ours_10k"].p50 / t["ours_100"].p50,
        "ratio": t["ours_10k"].p50 / t["floor_10k"].p50,
    }


async def _fill_sessions(svc: SQLSessionService, user_id: str, count: int) -> None:
    """`count` live sessions of one user, updated one second apart, each with a small state."""
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [
        {
            "app_name": APP, "user_id": user_id, "session_id": f"s{i:06d}",
            "state": {"topic": "weather", "turn": i % 40}, "version": 20, "last_seq": 20,
            "created_at": start, "updated_at": start + timedelta(seconds=i), "expires_at": None,
        }
        for i in range(count)
    ]
    async with svc.engine.begin() as conn:
        for i in range(0, count, 1000):
            await conn.execute(svc.tables.sessions.insert(), rows[i : i + 1000])
        # The statistics autovacuum / InnoDB would gather at some moment during the run, now.
        # (SQLite has no automatic ANALYZE, and few deployments run one.)
        table = svc.engine.dialect.identifier_preparer.format_table(svc.tables.sessions)
        if svc.rules.name == "postgresql":
            await conn.execute(text(f"ANALYZE {table}"))
        elif svc.rules.name == "mysql":
            await conn.execute(text(f"ANALYZE TABLE {table}"))


async def _check_same(svc: SQLSessionService, reader: RawReader, user: UserKey) -> None:
    page = await svc.list_sessions(user, limit=PAGE)
    floor = await reader.list_page(user.app_name, user.user_id, PAGE)
    assert len(page.sessions) == len(floor) == PAGE and page.next_cursor is not None
    for mine, theirs in zip(page.sessions, floor, strict=True):
        assert (mine.id, mine.state, mine.version, mine.updated_at) == (
            theirs["id"], theirs["state"], theirs["version"], theirs["updated_at"],
        ), (mine, theirs)
