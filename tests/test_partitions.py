"""Partitioned events on PostgreSQL (migrate(partition_events=N)): retention drops whole partitions.

On the shared PostgreSQL, each test in a scratch database of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text

import sessionstore as ss
from sessionstore.sql import partitions
from sessionstore.sql.engine import make_engine
from sessionstore.sql.migrate import check_drift, migrate
from tests.conftest import FakeClock
from tests.dbs import scratch_database

APP = "part-app"
SIZE = 10


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with scratch_database("postgresql") as url:
        yield url


async def _partition_names(url: str) -> list[tuple[str, int, int]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            found = await partitions.partitions(conn, "ss_", None)
            assert found is not None
            return [(p.name, p.low, p.high) for p in found]
    finally:
        await engine.dispose()


async def _scalar(url: str, sql: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text(sql)) or 0)
    finally:
        await engine.dispose()


async def test_cleanup_drops_partitions_of_gone_sessions_and_creates_ahead(pg_url: str) -> None:
    await migrate(pg_url, partition_events=SIZE)
    await migrate(pg_url, partition_events=SIZE)  # again: a no-op
    assert [p[1:] for p in await _partition_names(pg_url)] == [(0, 10), (10, 20), (20, 30), (30, 40)]

    clock = FakeClock()
    options = {"cleanup_interval": None, "session_ttl": timedelta(hours=1), "soft_delete": False, "clock": clock}
    async with ss.open_service(pg_url, **options) as svc:
        async def make(ids: range) -> None:
            for i in ids:
                s = await svc.create_session(ss.Key(APP, "u", f"s{i}"))
                for n in range(3):
                    await svc.append_event(s, ss.Event(author="a", content=n, state_delta={f"k{n}": n}))

        await make(range(1, 20))  # pks 1-19: partitions [0,10) and [10,20)
        clock.advance(minutes=30)
        await make(range(20, 46))  # pks 20-45: [20,30), [30,40) and, past the partitions made, the default one
        assert await _scalar(pg_url, "SELECT COUNT(*) FROM ss_events_default") == 6 * 3
        clock.advance(minutes=40)  # the first 19 sessions have expired, the others not

        result = await svc.cleanup()
        assert result.sessions_expired == 19
        assert result.events_removed == 19 * 3
        names = await _partition_names(pg_url)
        assert [p[1:] for p in names][:2] == [(20, 30), (30, 40)]  # the first two were dropped whole
        # Ahead of the newest session (45), above those whose events went to the default partition.
        assert [p[1] for p in names][2:] == [50, 60, 70, 80]
        assert await _scalar(pg_url, "SELECT COUNT(*) FROM ss_events") == 26 * 3
        for i in (20, 39, 45):
            got = await svc.get_session(ss.Key(APP, "u", f"s{i}"))
            assert got is not None and [e.seq for e in got.events] == [1, 2, 3] and got.state["k2"] == 2
        assert await svc.get_session(ss.Key(APP, "u", "s1")) is None

        # Appends go on in the partitions made ahead.
        s = await svc.create_session(ss.Key(APP, "u", "later"))
        await svc.append_event(s, ss.Event(author="a"))
        assert (await svc.get_session(s_key := ss.Key(APP, "u", "later"))) is not None, s_key

        clock.advance(hours=2)  # now everything has expired: every partition behind the newest goes
        result = await svc.cleanup()
        assert result.sessions_expired == 27
        assert await _scalar(pg_url, "SELECT COUNT(*) FROM ss_events") == 0


async def test_soft_delete_keeps_partitions_until_tombstones_expire(pg_url: str) -> None:
    await migrate(pg_url, partition_events=SIZE)
    clock = FakeClock()
    options = {
        "cleanup_interval": None, "session_ttl": timedelta(hours=1), "clock": clock,
        "tombstone_retention": timedelta(days=1),
    }
    async with ss.open_service(pg_url, **options) as svc:
        for i in range(1, 15):
            s = await svc.create_session(ss.Key(APP, "u", f"s{i}"))
            await svc.append_event(s, ss.Event(author="a"))
        clock.advance(hours=2)
        first = await svc.cleanup()
        assert first.sessions_expired == 14 and first.events_removed == 0  # tombstones keep their events
        assert [p[1] for p in await _partition_names(pg_url)][:1] == [0]
        clock.advance(days=2)
        second = await svc.cleanup()
        assert second.tombstones_purged == 14 and second.events_removed == 14
        assert [p[1] for p in await _partition_names(pg_url)][:1] == [10]  # [0,10) dropped; [10,20) holds the newest


async def test_partitioned_schema_passes_the_drift_check(pg_url: str) -> None:
    await migrate(pg_url, partition_events=SIZE)
    engine = make_engine(pg_url)
    try:
        assert await check_drift(engine) == []
    finally:
        await engine.dispose()


async def test_partition_events_is_refused_where_it_cannot_apply(pg_url: str, tmp_path) -> None:
    await migrate(pg_url)
    async with ss.open_service(pg_url, cleanup_interval=None) as svc:
        s = await svc.create_session(ss.Key(APP, "u", "x"))
        await svc.append_event(s, ss.Event(author="a"))
    with pytest.raises(ss.SchemaError, match="install-time option"):
        await migrate(pg_url, partition_events=SIZE)
    assert await _scalar(pg_url, "SELECT COUNT(*) FROM ss_events") == 1  # nothing changed
    with pytest.raises(ss.ConfigurationError, match="PostgreSQL only"):
        await migrate(f"sqlite:///{tmp_path / 'x.db'}", partition_events=SIZE)
    with pytest.raises(ss.ConfigurationError, match="partition_events must be"):
        await migrate(pg_url, partition_events=0)
