"""Issue 10's sequential append: events with a state delta, ours against the raw floor.

One task appends the workload's events (~400 characters of text, a
``{"turn": n}`` session-state delta) one after another to one session
through ``append_event``; the floor appends the same events to another
session of the same tables with the hand-written transaction of
benchmarks/raw_appends.py on its own connection. Rounds of ours and the
floor alternate (4 rounds each, after 50 warm-up appends each); the figure
is ours appends/s / floor appends/s (target >= 0.8 on SQLite and
PostgreSQL, >= 0.7 on MariaDB).

After the run both sessions are read back through the service: each must
hold every event, at version = events and with state {"turn": last}, so
the floor is checked to have done the work, not just to have been quick.
"""

from __future__ import annotations

from time import perf_counter

from sessionstore import Key
from sessionstore.sql.service import SQLSessionService

from .common import Latencies, scratch_service
from .raw_appends import RawAppender, open_appenders
from .workload import APP, delta_event, session_pk

OURS = Key(APP, "u1", "ours")
FLOOR = Key(APP, "u1", "floor")


async def bench_append_delta(kind: str, n: int, rounds: int = 4) -> dict[str, float]:
    async with scratch_service(kind) as svc:
        await svc.create_session(OURS)
        await svc.create_session(FLOOR)
        pk = await session_pk(svc, FLOOR)
        (raw,) = await open_appenders(svc.engine.url, svc.table_prefix, 1)
        try:
            turns = {"ours": 0, "floor": 0}
            ours: list[Latencies] = []
            floor: list[Latencies] = []
            await _ours(svc, turns, 50)  # warm-up: pool, statement caches
            await _floor(raw, pk, turns, 50)
            for _ in range(rounds):
                ours.append(await _ours(svc, turns, n // rounds))
                floor.append(await _floor(raw, pk, turns, n // rounds))
        finally:
            await raw.close()
        for key, name in ((OURS, "ours"), (FLOOR, "floor")):
            await check_appended(svc, key, turns[name])
    mine, theirs = merge(ours), merge(floor)
    return {
        "ours_rate": mine.rate, "ours_p50_ms": mine.p50 * 1e3, "ours_p99_ms": mine.p99 * 1e3,
        "floor_rate": theirs.rate, "floor_p50_ms": theirs.p50 * 1e3, "floor_p99_ms": theirs.p99 * 1e3,
        "ratio": mine.rate / theirs.rate,
    }


async def _ours(svc: SQLSessionService, turns: dict[str, int], n: int) -> Latencies:
    session = await svc.get_session(OURS, event_num=0)
    assert session is not None
    samples = []
    started = perf_counter()
    for _ in range(n):
        turns["ours"] += 1
        t = perf_counter()
        await svc.append_event(session, delta_event(turns["ours"]))
        samples.append(perf_counter() - t)
    return Latencies(samples, perf_counter() - started)


async def _floor(raw: RawAppender, pk: int, turns: dict[str, int], n: int) -> Latencies:
    samples = []
    started = perf_counter()
    for _ in range(n):
        turns["floor"] += 1
        t = perf_counter()
        await raw.append(pk, turns["floor"])
        samples.append(perf_counter() - t)
    return Latencies(samples, perf_counter() - started)


async def check_appended(svc: SQLSessionService, key: Key, count: int) -> None:
    """The session holds `count` events, seq 1..count, at version `count` with state turn = count."""
    got = await svc.get_session(key, event_num=1)
    assert got is not None, key
    assert got.version == count and got.state.get("turn") == count, (key, got.version, got.state)
    assert [e.seq for e in got.events] == [count] and got.events[0].state_delta == {"turn": count}, got.events


def merge(parts: list[Latencies]) -> Latencies:
    return Latencies([x for p in parts for x in p.samples], sum(p.wall for p in parts))
