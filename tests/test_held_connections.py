"""Connections held between transactions (sql/held.py), on every SQL backend, seen from the pool.

The pool's own events count checkouts and check-ins: a service made from a
URL checks a connection out once and lends it to call after call; one idle
too long, out too long, or from a replaced pool goes back; at most
pool_size - 1 are held; closing the service returns them all; a caller's
engine never holds any; a held connection the server dropped is replaced.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

import sessionstore as ss
from sessionstore.sql import held
from sessionstore.sql.engine import make_engine
from sessionstore.sql.held import held_for
from sessionstore.sql.service import SQLSessionService
from tests.backends import DRIVER_VARIANTS, SQL_BACKENDS, MigratedDb, migrated_database


@pytest.fixture(scope="module", params=SQL_BACKENDS + list(DRIVER_VARIANTS))
async def db(request: pytest.FixtureRequest) -> AsyncIterator[MigratedDb]:
    async with migrated_database(request.param) as migrated:
        yield migrated


@pytest.fixture
def key() -> ss.Key:
    return ss.Key(f"app-{uuid.uuid4().hex[:10]}", "u1", "s1")


@dataclass
class PoolCounts:
    """Checkouts and check-ins of an engine's pool (SQLAlchemy's pool events)."""

    checkouts: int = 0
    checkins: int = 0

    def reset(self) -> None:
        self.checkouts = self.checkins = 0


def watch(engine: AsyncEngine) -> PoolCounts:
    counts = PoolCounts()

    def on_checkout(*_: Any) -> None:
        counts.checkouts += 1

    def on_checkin(*_: Any) -> None:
        counts.checkins += 1

    event.listen(engine.sync_engine, "checkout", on_checkout)
    event.listen(engine.sync_engine, "checkin", on_checkin)
    return counts


async def started(target: Any, **options: Any) -> SQLSessionService:
    svc = ss.open_service(target, cleanup_interval=None, **options)
    assert isinstance(svc, SQLSessionService)
    await svc.start()
    return svc


@pytest.fixture
async def watched(db: MigratedDb) -> AsyncIterator[tuple[SQLSessionService, PoolCounts]]:
    """A started service on the module's database and its pool's counts; closed afterwards."""
    svc = await started(db.url)
    try:
        yield svc, watch(svc.engine)
    finally:
        await svc.close()


def event_(i: int) -> ss.Event:
    return ss.Event(author="a", content={"i": i}, state_delta={"n": i})


async def test_sequential_calls_share_one_held_connection_and_close_returns_it(db: MigratedDb, key: ss.Key) -> None:
    svc = await started(db.url)
    counts = watch(svc.engine)
    try:
        session = await svc.create_session(key)
        await svc.append_event(session, event_(0))
        counts.reset()
        for i in range(1, 11):
            await svc.append_event(session, event_(i))
        got = await svc.get_session(key)
        assert got is not None and got.state == {"n": 10} and len(got.events) == 11
        assert counts.checkouts == 0 and counts.checkins == 0  # lent from the held ones, never the pool
        assert svc.engine.pool.checkedout() == 1 and len(held_for(svc.engine) or ()) == 1
    finally:
        counts.reset()
        await svc.close()
    assert counts.checkins == 1  # given back to the pool before the engine was disposed
    assert len(held_for(svc.engine) or ()) == 0


async def test_a_connection_idle_too_long_goes_back_to_the_pool(
    watched: tuple[SQLSessionService, PoolCounts], key: ss.Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(held, "HOLD_IDLE_S", 0.05)
    svc, counts = watched
    session = await svc.create_session(key)
    await svc.append_event(session, event_(1))
    await asyncio.sleep(0.1)
    counts.reset()
    await svc.append_event(session, event_(2))
    assert (counts.checkins, counts.checkouts) == (1, 1)  # the idle one returned, one checked out anew
    await svc.append_event(session, event_(3))
    assert (counts.checkins, counts.checkouts) == (1, 1)


async def test_a_connection_out_of_the_pool_too_long_goes_back_however_busy(
    watched: tuple[SQLSessionService, PoolCounts], key: ss.Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(held, "HOLD_MAX_S", 0.2)
    svc, counts = watched
    session = await svc.create_session(key)
    counts.reset()
    deadline = asyncio.get_running_loop().time() + 0.5
    turns = 0
    while asyncio.get_running_loop().time() < deadline:
        turns += 1
        await svc.append_event(session, event_(turns))
    # Busy all along, yet back in the pool at least every 0.2 s (and then checked out again).
    assert counts.checkins >= 2 and counts.checkouts >= 2
    assert counts.checkouts < turns


async def test_at_most_pool_size_minus_one_are_held(db: MigratedDb) -> None:
    svc = await started(db.url, pool_size=3, max_overflow=6)
    try:
        app = f"app-{uuid.uuid4().hex[:10]}"
        sessions = [await svc.create_session(ss.Key(app, "u1", f"s{i}")) for i in range(8)]
        await asyncio.gather(*(svc.append_event(s, event_(1)) for s in sessions))
        assert len(held_for(svc.engine) or ()) <= 2
        assert svc.engine.pool.checkedout() == len(held_for(svc.engine) or ())  # nothing else is out
        async with svc.engine.connect() as conn:  # the pool still has room for SQLAlchemy Core's users
            assert await conn.scalar(text("SELECT 1")) == 1
        for s in sessions:
            got = await svc.get_session(s.key)
            assert got is not None and got.state == {"n": 1}
    finally:
        await svc.close()


async def test_a_callers_engine_holds_none(db: MigratedDb, key: ss.Key) -> None:
    engine = make_engine(db.url)
    try:
        svc = await started(engine)
        counts = watch(engine)
        session = await svc.create_session(key)
        counts.reset()
        for i in range(5):
            await svc.append_event(session, event_(i))
        assert counts.checkouts == 5 and counts.checkins == 5
        assert held_for(engine) is None and engine.pool.checkedout() == 0
        await svc.close()
    finally:
        await engine.dispose()


async def test_a_connection_of_a_replaced_pool_is_not_lent(
    watched: tuple[SQLSessionService, PoolCounts], key: ss.Key
) -> None:
    svc, _ = watched
    session = await svc.create_session(key)
    await svc.append_event(session, event_(1))
    old_pool = svc.engine.pool
    await svc.engine.dispose()  # say, an operator's reset after a failover
    await svc.append_event(session, event_(2))
    assert svc.engine.pool is not old_pool and svc.engine.pool.checkedout() == 1
    got = await svc.get_session(key)
    assert got is not None and got.state == {"n": 2}


@pytest.mark.parametrize("kind", [b for b in SQL_BACKENDS + list(DRIVER_VARIANTS) if b != "sqlite"])
async def test_a_held_connection_the_server_dropped_is_replaced(kind: str, key: ss.Key) -> None:
    async with migrated_database(kind) as db:
        await dropped_while_held(db, key)


async def dropped_while_held(db: MigratedDb, key: ss.Key) -> None:
    svc = await started(db.url)
    try:
        session = await svc.create_session(key)
        await svc.append_event(session, event_(1))
        assert len(held_for(svc.engine) or ()) == 1
        await drop_other_connections(db)
        await asyncio.sleep(0.2)
        # A read reruns on a verified connection when its own turns out dead; the append after it
        # finds the pool's connections sorted out.
        got = await svc.get_session(key)
        assert got is not None and got.state == {"n": 1}
        await svc.append_event(session, event_(2))
        got = await svc.get_session(key)
        assert got is not None and got.state == {"n": 2} and len(got.events) == 2
    finally:
        await svc.close()


async def drop_other_connections(db: MigratedDb) -> None:
    """Have the server end every connection to the test's database but the one asking."""
    engine = make_engine(db.url)
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ))
            else:
                ids = (await conn.execute(text(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()"
                ))).scalars().all()
                assert ids
                for connection_id in ids:
                    await conn.execute(text(f"KILL CONNECTION {int(connection_id)}"))
    finally:
        await engine.dispose()
