"""Issue 10's concurrent appends: 32 writers through one service against 32 raw connections.

Ours: one service opened with pool_size=32 (one pooled connection per
writer, so no writer waits for a connection), 32 tasks each appending the
workload's delta events to its own session. The floor: 32 tasks, each on
its own raw driver connection, appending the same events to its own
session with the hand-written transaction of benchmarks/raw_appends.py. On
SQLite, which runs one write transaction at a time, the floor's writers
queue on an in-process lock as ours do (otherwise they would sleep in
SQLite's busy handler and the floor would be no floor).

Each round every writer appends `per_task` events; rounds of ours and the
floor alternate (4 each, which goes first alternating too, after a warm-up
round each that also opens every connection). The figure is appends/s
over all rounds, ours / floor (target >= 0.7 everywhere). Afterwards every
session is read back: all events there, version and state as appended.
"""

from __future__ import annotations

import asyncio
from time import perf_counter

from sessionstore import Key, Session

from .common import scratch_service
from .delta_appends import check_appended
from .raw_appends import RawAppender, open_appenders
from .workload import APP, delta_event, session_pk

WRITERS = 32


async def bench_concurrent(kind: str, per_task: int, rounds: int = 4) -> dict[str, float]:
    async with scratch_service(kind, pool_size=WRITERS) as svc:
        ours = [await svc.create_session(Key(APP, f"w{i}", "ours")) for i in range(WRITERS)]
        floor_keys = [Key(APP, f"w{i}", "floor") for i in range(WRITERS)]
        for key in floor_keys:
            await svc.create_session(key)
        pks = [await session_pk(svc, key) for key in floor_keys]
        appenders = await open_appenders(svc.engine.url, svc.table_prefix, WRITERS)
        turns = {"ours": 0, "floor": 0}

        async def ours_round(n: int) -> float:
            async def writer(session: Session) -> None:
                for turn in range(turns["ours"] + 1, turns["ours"] + n + 1):
                    await svc.append_event(session, delta_event(turn))
                session.events.clear()

            t = perf_counter()
            await asyncio.gather(*(writer(s) for s in ours))
            turns["ours"] += n
            return perf_counter() - t

        async def floor_round(n: int) -> float:
            async def writer(raw: RawAppender, pk: int) -> None:
                for turn in range(turns["floor"] + 1, turns["floor"] + n + 1):
                    await raw.append(pk, turn)

            t = perf_counter()
            await asyncio.gather(*(writer(raw, pk) for raw, pk in zip(appenders, pks, strict=True)))
            turns["floor"] += n
            return perf_counter() - t

        try:
            await ours_round(2)  # warm-up: every pooled connection opened, statement caches
            await floor_round(2)
            walls = {"ours": 0.0, "floor": 0.0}
            for r in range(rounds):
                for name in (("ours", "floor") if r % 2 == 0 else ("floor", "ours")):
                    walls[name] += await (ours_round if name == "ours" else floor_round)(per_task)
        finally:
            for raw in appenders:
                await raw.close()
        for i in range(WRITERS):
            await check_appended(svc, Key(APP, f"w{i}", "ours"), turns["ours"])
            await check_appended(svc, floor_keys[i], turns["floor"])
    appends = WRITERS * per_task * rounds
    ours_rate, floor_rate = appends / walls["ours"], appends / walls["floor"]
    return {"writers": float(WRITERS), "appends": float(appends), "ours_rate": ours_rate, "floor_rate": floor_rate,
            "ratio": ours_rate / floor_rate}
