"""Issue 5's cleanup figures: rows removed per second, and append p99 while a cleanup runs.

Two rounds on fresh tables, each over `events` expired events (spread over
sessions of EVENTS_PER_SESSION events, bulk-loaded with SQLAlchemy Core):

1. cleanup alone: rows removed per second (``rows_per_s``);
2. the same load again, cleaned while one task appends to a live session
   without pause: the append p99 during the cleanup against the p99 of the
   same appends with no cleanup running, before and after it (``p99_ratio``,
   target <= 3).

Sessions expire by hard delete (soft_delete=False), so the cleanup itself
removes the events; with soft_delete the same deletes run later, when the
tombstones are purged, through the same code.

The test suite reuses ``fill_expired`` and ``appends_during``
(tests/test_ttl_cleanup.py) so the test and this benchmark measure alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta, timezone
from time import perf_counter
from typing import Any, TypeVar

from sqlalchemy import bindparam, select

from sessionstore import Event, Key, Session
from sessionstore.sql.service import SQLSessionService

from .common import Latencies, scratch_service

T = TypeVar("T")

EVENTS_PER_SESSION = 1000
CONTENT = {"role": "model", "parts": [{"text": "It will be sunny in Paris tomorrow, 24 degrees."}]}
IDLE_APPENDS = 1000
IDLE_AFTER_MAX_S = 30.0


async def fill_expired(
    svc: SQLSessionService, events: int, *, expires_at: datetime, per_session: int = EVENTS_PER_SESSION,
    app_name: str = "bench-expired",
) -> int:
    """Bulk-load `events` events into new sessions that expire at `expires_at`; return the session count.

    Rows look like the service's own (seq 1..n gap-free, last_seq and version set).
    """
    s, e = svc.tables.sessions, svc.tables.events
    sessions = -(-events // per_session)
    at = expires_at - timedelta(hours=1)
    session_rows = [
        {
            "app_name": app_name, "user_id": f"u{i % 50}", "session_id": f"s{i:06d}", "state": {"n": i},
            "version": 0, "last_seq": 0, "created_at": at, "updated_at": at, "expires_at": expires_at,
        }
        for i in range(sessions)
    ]
    async with svc.engine.begin() as conn:
        for i in range(0, sessions, 1000):
            await conn.execute(s.insert(), session_rows[i : i + 1000])
        pks = list((await conn.execute(select(s.c.pk).where(s.c.app_name == app_name).order_by(s.c.pk))).scalars())
    counts = [per_session] * (events // per_session) + ([events % per_session] if events % per_session else [])
    rows: list[dict[str, Any]] = []

    async def flush() -> None:
        async with svc.engine.begin() as conn:
            await conn.execute(e.insert(), rows)
        rows.clear()

    for pk, count in zip(pks, counts, strict=True):
        for seq in range(1, count + 1):
            rows.append({
                "session_pk": pk, "seq": seq, "event_id": f"e{seq}", "author": "model",
                "invocation_id": None, "branch": None, "timestamp": at, "content": CONTENT,
                "state_delta": {}, "state_removed": None, "meta": {}, "created_at": at, "updated_at": at,
            })
            if len(rows) == 5000:
                await flush()
    if rows:
        await flush()
    async with svc.engine.begin() as conn:
        await conn.execute(
            s.update().where(s.c.pk == bindparam("b_pk")).values(last_seq=bindparam("b_n"), version=bindparam("b_n")),
            [{"b_pk": pk, "b_n": count} for pk, count in zip(pks, counts, strict=True)],
        )
    return sessions


async def _append(svc: SQLSessionService, session: Session) -> float:
    t = perf_counter()
    await svc.append_event(session, Event(author="user", content=CONTENT))
    return perf_counter() - t


async def appends_during(
    svc: SQLSessionService, session: Session, work: Awaitable[T], *, idle: int = IDLE_APPENDS
) -> tuple[T, Latencies, Latencies]:
    """Append to `session` without pause: while `work` runs, and idle around it.

    Idle appends run before `work` starts (`idle` of them) and again after it
    ends, for as long as it ran (at most IDLE_AFTER_MAX_S), so that whatever
    else the machine was doing meanwhile weighs on both sides alike.
    Returns (work's result, idle latencies, latencies of the appends made while work ran).
    """
    for _ in range(50):  # warm-up: pool, statement caches
        await _append(svc, session)
    started = perf_counter()
    idle_samples = [await _append(svc, session) for _ in range(idle)]
    idle_wall = perf_counter() - started
    task = asyncio.ensure_future(work)
    during: list[float] = []
    started = perf_counter()
    while not task.done():
        during.append(await _append(svc, session))
    during_t = Latencies(during, perf_counter() - started)
    result = await task
    started = perf_counter()
    until = started + min(during_t.wall, IDLE_AFTER_MAX_S)
    while perf_counter() < until:
        idle_samples.append(await _append(svc, session))
    idle_t = Latencies(idle_samples, idle_wall + perf_counter() - started)
    return result, idle_t, during_t


async def bench_cleanup(kind: str, events: int) -> dict[str, float]:
    """Cleanup of `events` expired events: throughput alone, and append p99 during it vs idle."""
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    options = {"soft_delete": False, "event_limit": 1_000_000}
    async with scratch_service(kind, **options) as svc:
        await fill_expired(svc, events, expires_at=past)
        alone = await svc.cleanup()
        assert alone.events_removed == events, alone

    async with scratch_service(kind, **options) as svc:
        sessions = await fill_expired(svc, events, expires_at=past)
        live = await svc.create_session(Key("bench", "writer"))
        result, idle, during = await appends_during(svc, live, svc.cleanup())
        assert result.events_removed == events and result.sessions_expired == sessions, result
    return {
        "events": float(events),
        "seconds": alone.seconds,
        "rows_per_s": alone.total / alone.seconds,
        "seconds_with_appends": result.seconds,
        "rows_per_s_with_appends": result.total / result.seconds,
        "appends_during": float(len(during.samples)),
        "idle_p50_ms": idle.p50 * 1e3,
        "idle_p99_ms": idle.p99 * 1e3,
        "cleanup_p50_ms": during.p50 * 1e3,
        "cleanup_p99_ms": during.p99 * 1e3,
        "p99_ratio": during.p99 / idle.p99,
    }
