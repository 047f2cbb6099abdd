"""Issue 3's hot paths: sequential append vs the raw driver, and get_session(event_num=20) at 100 vs 10,000 events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from time import perf_counter

from sqlalchemy import update

from sessionstore import Event, Key
from sessionstore.sql.service import SQLSessionService

from .common import Latencies, scratch_service
from .raw import raw_appends

CONTENT = {"role": "user", "parts": [{"text": "What is the weather in Paris tomorrow? " * 3}]}


async def _our_appends(svc: SQLSessionService, key: Key, n: int) -> Latencies:
    session = await svc.get_session(key, event_num=0)
    assert session is not None
    samples = []
    started = perf_counter()
    for _ in range(n):
        t = perf_counter()
        await svc.append_event(session, Event(author="user", content=CONTENT))
        samples.append(perf_counter() - t)
    return Latencies(samples, perf_counter() - started)


async def bench_append(kind: str, n: int, rounds: int = 4) -> dict[str, float]:
    """Alternate rounds of ours and raw (same tables, same connection count) and compare rates."""
    async with scratch_service(kind) as svc:
        ours_session = await svc.create_session(Key("bench", "u1"))
        raw_session = await svc.create_session(Key("bench", "u2"))
        raw_pk = await _session_pk(svc, raw_session.id)
        ours: list[Latencies] = []
        raw: list[Latencies] = []
        await _our_appends(svc, ours_session.key, 50)  # warm-up: pool, statement caches
        done_raw = 0
        for _ in range(rounds):
            ours.append(await _our_appends(svc, ours_session.key, n // rounds))
            batch = [CONTENT] * (n // rounds)
            raw.append(await raw_appends(svc, raw_pk, batch, first_seq=done_raw + 1))
            done_raw += len(batch)
        mine, theirs = _merge(ours), _merge(raw)
        return {
            "ours_rate": mine.rate, "ours_p50_ms": mine.p50 * 1e3, "ours_p99_ms": mine.p99 * 1e3,
            "raw_rate": theirs.rate, "raw_p50_ms": theirs.p50 * 1e3, "raw_p99_ms": theirs.p99 * 1e3,
            "ratio": mine.rate / theirs.rate,
        }


async def bench_get(kind: str, reads: int) -> dict[str, float]:
    """get_session(event_num=20) on a session of 100 events vs one of 10,000."""
    async with scratch_service(kind) as svc:
        small = await svc.create_session(Key("bench", "u1", "small"))
        large = await svc.create_session(Key("bench", "u1", "large"))
        await _fill(svc, small.id, 100)
        await _fill(svc, large.id, 10_000)
        timings: dict[str, list[float]] = {"small": [], "large": []}
        for name in ("small", "large"):  # warm-up
            for _ in range(20):
                await svc.get_session(Key("bench", "u1", name), event_num=20)
        for _ in range(reads):
            for name in ("small", "large"):
                t = perf_counter()
                got = await svc.get_session(Key("bench", "u1", name), event_num=20)
                timings[name].append(perf_counter() - t)
                assert got is not None and len(got.events) == 20
        small_t = Latencies(timings["small"], sum(timings["small"]))
        large_t = Latencies(timings["large"], sum(timings["large"]))
        return {
            "p50_100_ms": small_t.p50 * 1e3, "p50_10k_ms": large_t.p50 * 1e3,
            "ratio": large_t.p50 / small_t.p50,
        }


async def _session_pk(svc: SQLSessionService, session_id: str) -> int:
    s = svc.tables.sessions
    async with svc.engine.connect() as conn:
        return (await conn.execute(s.select().with_only_columns(s.c.pk).where(s.c.session_id == session_id))).scalar_one()


async def _fill(svc: SQLSessionService, session_id: str, count: int) -> None:
    """Bulk-load `count` events into a session (faster than appending them one by one)."""
    pk = await _session_pk(svc, session_id)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [
        {
            "session_pk": pk, "seq": seq, "event_id": f"e{seq}", "author": "user",
            "invocation_id": None, "branch": None, "timestamp": start + timedelta(seconds=seq),
            "content": CONTENT, "state_delta": {}, "state_removed": None, "meta": {},
            "created_at": start, "updated_at": start,
        }
        for seq in range(1, count + 1)
    ]
    s = svc.tables.sessions
    async with svc.engine.begin() as conn:
        for i in range(0, count, 1000):
            await conn.execute(svc.tables.events.insert(), rows[i : i + 1000])
        await conn.execute(update(s).where(s.c.pk == pk).values(last_seq=count, version=count))


def _merge(parts: list[Latencies]) -> Latencies:
    return Latencies([x for p in parts for x in p.samples], sum(p.wall for p in parts))
