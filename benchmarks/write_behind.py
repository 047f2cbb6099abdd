"""Issue 11: write-behind append (async_persist=True) vs synchronous append, on one database.

Both sides append the same events round-robin over 8 sessions from one task,
on the same tables, in alternating rounds. The synchronous side's rate is its
durable rate; the write-behind side's rate counts the time until ``flush()``
has made every event durable, and its latency is what ``append_event`` costs
the caller (queueing). The write-behind service has the default
``persist_workers`` (4; 1 on SQLite) unless `workers` says otherwise.
"""

from __future__ import annotations

from time import perf_counter

from sessionstore import Event, Key, open_service
from sessionstore.service import SessionService

from .appends import CONTENT
from .common import Latencies, scratch_service

SESSIONS = 8


async def _round(svc: SessionService, sessions: list, n: int) -> tuple[Latencies, float]:
    samples = []
    started = perf_counter()
    for i in range(n):
        t = perf_counter()
        await svc.append_event(sessions[i % len(sessions)], Event(author="user", content=CONTENT))
        samples.append(perf_counter() - t)
    await svc.flush()
    wall = perf_counter() - started
    return Latencies(samples, wall), wall


async def bench_write_behind(kind: str, n: int, rounds: int = 4, workers: int | None = None) -> dict[str, float]:
    async with scratch_service(kind) as sync_svc:
        url = sync_svc.engine.url.render_as_string(hide_password=False)
        wb_svc = open_service(url, table_prefix=sync_svc.table_prefix, cleanup_interval=None,
                              async_persist=True, persist_workers=workers)
        async with wb_svc:
            sync_sessions = [await sync_svc.create_session(Key("bench", "sync", f"s{i}")) for i in range(SESSIONS)]
            wb_sessions = [await wb_svc.create_session(Key("bench", "wb", f"s{i}")) for i in range(SESSIONS)]
            await _round(sync_svc, sync_sessions, 40)  # warm-up: pools, statement caches
            await _round(wb_svc, wb_sessions, 40)
            sync_lat: list[float] = []
            wb_lat: list[float] = []
            sync_wall = wb_wall = 0.0
            for r in range(rounds):
                order = [(sync_svc, sync_sessions, "sync"), (wb_svc, wb_sessions, "wb")]
                for svc, sessions, name in order if r % 2 == 0 else order[::-1]:
                    lat, wall = await _round(svc, sessions, n // rounds)
                    if name == "sync":
                        sync_lat += lat.samples
                        sync_wall += wall
                    else:
                        wb_lat += lat.samples
                        wb_wall += wall
            sync_l, wb_l = Latencies(sync_lat, sync_wall), Latencies(wb_lat, wb_wall)
            return {
                "sync_rate": sync_l.rate, "wb_rate": wb_l.rate, "rate_ratio": wb_l.rate / sync_l.rate,
                "sync_p50_ms": sync_l.p50 * 1e3, "wb_p50_ms": wb_l.p50 * 1e3,
                "sync_p99_ms": sync_l.p99 * 1e3, "wb_p99_ms": wb_l.p99 * 1e3,
                "latency_ratio": sync_l.p50 / wb_l.p50,
            }
