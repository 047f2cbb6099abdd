"""Write-behind when the database goes away mid-run: the events table is renamed under a
running service (on each SQL database). Queued writes fail; the failures are counted and
raised by flush(); what is durable is a prefix of what was appended; the service recovers
once the table is back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

import sessionstore as ss
from sessionstore.sql.engine import make_engine
from tests.backends import SQL_BACKENDS, MigratedDb, migrated_database


@pytest.fixture(scope="module", params=SQL_BACKENDS)
async def db(request: pytest.FixtureRequest) -> AsyncIterator[MigratedDb]:
    async with migrated_database(request.param) as migrated:
        yield migrated


async def rename(url: str, old: str, new: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    finally:
        await engine.dispose()


async def test_events_table_renamed_mid_run_surfaces_errors_and_keeps_a_prefix(db: MigratedDb) -> None:
    svc = ss.open_service(db.url, async_persist=True, persist_workers=2, cleanup_interval=None)
    await svc.start()
    try:
        k = ss.Key("wb-fault", "u1", "s1")
        s = await svc.create_session(k)
        for i in range(5):
            await svc.append_event(s, ss.Event(author="user", content=i))
        await svc.flush()
        await rename(db.url, "ss_events", "ss_events_gone")
        try:
            for i in range(5, 10):
                await svc.append_event(s, ss.Event(author="user", content=i))
            with pytest.raises(ss.PersistError) as raised:
                await svc.flush()
            assert isinstance(raised.value.__cause__, ss.DatabaseError)
            assert raised.value.count == 5 and svc.persist_errors == 5
        finally:
            await rename(db.url, "ss_events_gone", "ss_events")
        # Seen from another engine: the five stored before the failure, none after the gap.
        async with ss.open_service(db.url, cleanup_interval=None) as reader:
            got = await reader.get_session(k)
            assert got is not None and [e.content for e in got.events] == [0, 1, 2, 3, 4]
        # Once reported, the session takes appends again and they land.
        s2 = await svc.get_session(k)
        assert s2 is not None
        await svc.append_event(s2, ss.Event(author="user", content="back"))
        await svc.flush()
        async with ss.open_service(db.url, cleanup_interval=None) as reader:
            got = await reader.get_session(k)
            assert got is not None and [e.content for e in got.events][-1] == "back"
            assert [e.seq for e in got.events] == [1, 2, 3, 4, 5, 6]
    finally:
        await svc.close()
