"""Issue 5: TTL expiry and the cleanup job, on every backend.

tests/contract/test_ttl.py proves what reads see (expired rows are invisible,
expiry slides on writes). This module proves what the cleanup job does with
the rows behind them: it removes exactly the expired ones (soft or hard),
trims events beyond event_limit keeping the newest, purges tombstones only
after tombstone_retention, lets expired ids be created again, never
double-deletes or deadlocks when two services clean one database at once,
keeps one cleaner at a time per database, runs periodically once started,
and lets appends flow while it removes 40,000 events (the cleanup benchmark,
benchmarks/cleanup.py, measures the same with 200,000).

Time is the test's FakeClock; the only real waits are in the periodic-job
test and the timing measurement.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from time import perf_counter
from typing import Any

import pytest
from sqlalchemy import func, select

import sessionstore as ss
from benchmarks.cleanup import appends_during, fill_expired
from sessionstore import CleanupResult, InMemorySessionService
from sessionstore.redis import RedisSessionService
from sessionstore.sql.cleanup import lock_name
from sessionstore.sql.service import SQLSessionService
from tests.backends import SQL_BACKENDS, Backend, provision, service_factory
from tests.conftest import FakeClock
from tests.redis_servers import redis_storage

from .contract.helpers import APP, event, key, must_get, new_session, snapshot, user_key

TTL = timedelta(minutes=10)
ALL_TTLS = {"session_ttl": TTL, "app_state_ttl": TTL, "user_state_ttl": TTL}
TINY = timedelta(microseconds=1)

# ---------------------------------------------------------------------------- helpers


async def storage(svc: ss.SessionService) -> dict[str, int]:
    """What is physically stored, visible or not: active rows and tombstones."""
    if isinstance(svc, InMemorySessionService):
        cells = [*svc._app_state.values(), *svc._user_state.values()]
        return {
            "sessions": len(svc._sessions),
            "session_tombstones": len(svc._tombstones),
            "events": sum(len(s.events) for s in svc._sessions.values())
            + sum(len(s.events) for _, s in svc._tombstones),
            "state": sum(len(c) for c in cells),
            "state_tombstones": len(svc._state_tombstones),
        }
    if isinstance(svc, RedisSessionService):
        return await redis_storage(svc)
    assert isinstance(svc, SQLSessionService)
    t = svc.tables

    async def count(conn: Any, table: Any, *where: Any) -> int:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*where)))

    async with svc.engine.connect() as conn:
        live = [t.app_state.c.deleted_at.is_(None)], [t.user_state.c.deleted_at.is_(None)]
        dead = [t.app_state.c.deleted_at.is_not(None)], [t.user_state.c.deleted_at.is_not(None)]
        return {
            "sessions": await count(conn, t.sessions, t.sessions.c.deleted_at.is_(None)),
            "session_tombstones": await count(conn, t.sessions, t.sessions.c.deleted_at.is_not(None)),
            "events": await count(conn, t.events),
            "state": await count(conn, t.app_state, *live[0]) + await count(conn, t.user_state, *live[1]),
            "state_tombstones": await count(conn, t.app_state, *dead[0]) + await count(conn, t.user_state, *dead[1]),
        }


def trims_on_write(svc: ss.SessionService) -> bool:
    """The in-memory and Redis backends evict events beyond event_limit as they append; SQL trims in cleanup."""
    return isinstance(svc, (InMemorySessionService, RedisSessionService))


def counts(result: CleanupResult) -> dict[str, int]:
    """The row counts of a result (no timing, flags)."""
    return {
        "sessions_expired": result.sessions_expired,
        "events_removed": result.events_removed,
        "events_trimmed": result.events_trimmed,
        "app_state_expired": result.app_state_expired,
        "user_state_expired": result.user_state_expired,
        "tombstones_purged": result.tombstones_purged,
    }


def expect(**non_zero: int) -> dict[str, int]:
    return counts(CleanupResult(**non_zero))


async def stored_seqs(backend: Backend, svc: ss.SessionService, make_service: Any, k: ss.Key) -> list[int]:
    """The seqs stored for a session, however many: read through a service with a huge event_limit
    on the same storage (the in-memory backend evicts at write time, so its own read is the storage)."""
    reader = await make_service(event_limit=1_000_000, session_ttl=TTL) if backend.shared_storage else svc
    got = await must_get(reader, k)
    return [e.seq for e in got.events]


async def visible(svc: ss.SessionService, *session_ids: str) -> dict[str, Any]:
    return {sid: await snapshot(svc, key(sid)) for sid in session_ids}


async def fill(svc: ss.SessionService, session_id: str, n: int, **create: Any) -> ss.Session:
    s = await new_session(svc, session_id, **create)
    for i in range(n):
        await svc.append_event(s, event(content=i))
    return s


# ---------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "options",
    [
        {"session_ttl": timedelta(minutes=-1)},
        {"session_ttl": timedelta(0)},
        {"app_state_ttl": timedelta(seconds=-5)},
        {"user_state_ttl": timedelta(0)},
        {"session_ttl": 600},  # seconds as a number: ambiguous, refused
        {"tombstone_retention": timedelta(0)},
        {"tombstone_retention": None},
        {"cleanup_interval": timedelta(seconds=-1)},
        {"cleanup_batch_size": 0},
        {"cleanup_batch_size": -10},
        {"cleanup_batch_size": 1.5},
        {"cleanup_batch_size": True},
        {"event_limit": 0},
        {"event_limit": "none"},
        {"clock": "not callable"},
    ],
    ids=lambda o: "-".join(f"{k}={v!r}" for k, v in o.items()),
)
async def test_bad_options_raise_configuration_error(make_service, options):
    with pytest.raises(ss.ConfigurationError):
        await make_service(**options)


def test_options_default_to_never_expiring_soft_deleted_rows():
    o = ss.ServiceOptions()
    assert (o.session_ttl, o.app_state_ttl, o.user_state_ttl) == (None, None, None)
    assert o.refresh_on_read is False and o.soft_delete is True
    assert o.tombstone_retention == timedelta(days=7)
    assert o.cleanup_interval == timedelta(minutes=5) and o.cleanup_batch_size == 1000


# ---------------------------------------------------------------------------- visibility


async def test_expired_rows_are_invisible_at_once_and_stored_until_cleanup(make_service, clock):
    svc = await make_service(**ALL_TTLS)
    await fill(svc, "old", 2, state={"k": 1, "app:a": 1, "user:u": 1})
    clock.advance(minutes=5)
    await new_session(svc, "new", state={"k": 2})
    clock.advance(minutes=5)  # "old" and its shared keys are exactly 10 minutes old: expired

    assert await svc.get_session(key("old")) is None
    assert [s.id for s in (await svc.list_sessions(user_key())).sessions] == ["new"]
    assert (await must_get(svc, key("new"))).state == {"k": 2}
    assert await svc.list_app_state(APP) == {} and await svc.list_user_state(user_key()) == {}
    before = await storage(svc)
    assert before == {"sessions": 2, "session_tombstones": 0, "events": 2, "state": 2, "state_tombstones": 0}
    seen = await visible(svc, "old", "new")

    dry = await svc.cleanup(dry_run=True)
    assert dry.dry_run and counts(dry) == expect(sessions_expired=1, app_state_expired=1, user_state_expired=1)
    assert await storage(svc) == before

    result = await svc.cleanup()
    assert not result.dry_run and not result.skipped
    assert counts(result) == expect(sessions_expired=1, app_state_expired=1, user_state_expired=1)
    assert await visible(svc, "old", "new") == seen  # cleanup changes nothing anyone can read
    assert await storage(svc) == {  # soft delete (the default): tombstones, events kept until purge
        "sessions": 1, "session_tombstones": 1, "events": 2, "state": 0, "state_tombstones": 2,
    }


# ---------------------------------------------------------------------------- sliding expiry


@pytest.mark.parametrize(
    "touch, slides",
    [
        ("create", True),
        ("append", True),
        ("update_session_state", True),
        ("read_with_refresh_on_read", True),
        ("retried_append", False),  # the event id is stored already: nothing is written
        ("partial_append", False),  # partial events are neither stored nor applied
        ("read", False),
        ("list", False),
        ("list_with_refresh_on_read", False),  # refresh_on_read is about get_session
    ],
)
async def test_sliding_expiry_decides_what_cleanup_removes(make_service, clock, touch, slides):
    svc = await make_service(session_ttl=TTL, refresh_on_read=touch.endswith("refresh_on_read"))
    await new_session(svc, "other")
    if touch != "create":
        target = await new_session(svc, "target")
        if touch == "retried_append":
            await svc.append_event(target, event(id="e1"))
    clock.advance(minutes=8)
    if touch == "create":
        target = await new_session(svc, "target")
    elif touch == "append":
        await svc.append_event(target, event())
    elif touch == "retried_append":
        await svc.append_event(target, event(id="e1"))
    elif touch == "partial_append":
        await svc.append_event(target, event(partial=True))
    elif touch == "update_session_state":
        await svc.update_session_state(key("target"), {"k": 1})
    elif touch.startswith("read"):
        await must_get(svc, key("target"))
    else:
        await svc.list_sessions(user_key())

    clock.advance(minutes=2)  # "other" is 10 minutes old
    result = await svc.cleanup()
    assert result.sessions_expired == (1 if slides else 2)
    listed = [s.id for s in (await svc.list_sessions(user_key())).sessions]  # (a get would refresh again)
    assert listed == (["target"] if slides else [])
    if slides:
        clock.advance(minutes=8)  # 10 minutes after the touch
        assert (await svc.cleanup()).sessions_expired == 1
        assert await svc.get_session(key("target")) is None


async def test_a_shared_key_written_again_slides_alone(make_service, clock):
    svc = await make_service(app_state_ttl=TTL, user_state_ttl=TTL)
    s = await new_session(svc, "s1", state={"app:a": 1, "app:b": 1, "user:a": 1, "user:b": 1})
    clock.advance(minutes=8)
    await svc.append_event(s, event(state_delta={"app:a": 2}))
    await svc.update_user_state(user_key(), {"a": 2})
    clock.advance(minutes=2)
    result = await svc.cleanup()
    assert counts(result) == expect(app_state_expired=1, user_state_expired=1)
    assert await svc.list_app_state(APP) == {"a": 2}
    assert await svc.list_user_state(user_key()) == {"a": 2}
    assert (await must_get(svc, key("s1"))).state == {"app:a": 2, "user:a": 2}


# ---------------------------------------------------------------------------- exactly the expired rows


@pytest.mark.parametrize("soft_delete", [True, False], ids=["soft", "hard"])
@pytest.mark.parametrize("batch", [2, 1000])
async def test_cleanup_removes_exactly_the_expired_rows(make_service, clock, soft_delete, batch):
    svc = await make_service(**ALL_TTLS, soft_delete=soft_delete, cleanup_batch_size=batch)
    for i in range(5):
        await fill(svc, f"o{i}", 3, state={"k": i, f"app:old{i}": i, f"user:old{i}": i})
    clock.advance(TTL - TINY)  # a moment before the old rows expire:
    o0 = await must_get(svc, key("o0"))
    await svc.append_event(o0, event(state_delta={"app:old0": "again"}))  # o0 and app:old0 written again
    await fill(svc, "fresh", 1, state={"app:fresh": 1, "user:fresh": 1})
    clock.advance(TINY)  # o1..o4, app:old1..4 and user:old0..4 are now exactly TTL old

    ids = ["o0", "o1", "o4", "fresh"]
    seen = await visible(svc, *ids)
    result = await svc.cleanup()
    assert counts(result) == expect(
        sessions_expired=4, events_removed=0 if soft_delete else 12, app_state_expired=4, user_state_expired=5
    )
    assert await visible(svc, *ids) == seen
    assert [e.seq for e in (await must_get(svc, key("o0"))).events] == [1, 2, 3, 4]
    assert (await svc.list_app_state(APP)) == {"old0": "again", "fresh": 1}
    assert (await svc.list_user_state(user_key())) == {"fresh": 1}
    assert await storage(svc) == {
        "sessions": 2,
        "session_tombstones": 4 if soft_delete else 0,
        "events": 4 + 1 + (12 if soft_delete else 0),
        "state": 3,
        "state_tombstones": 9 if soft_delete else 0,
    }
    again = await svc.cleanup()
    assert again.total == 0


async def test_dry_run_counts_what_a_real_run_removes(make_service, clock):
    svc = await make_service(**ALL_TTLS, event_limit=3, tombstone_retention=timedelta(minutes=1), cleanup_batch_size=2)
    await fill(svc, "gone", 2, state={"app:a": 1, "user:u": 1})
    await svc.delete_session(key("gone"))  # a tombstone (soft delete is the default)
    await fill(svc, "expiring", 4)
    clock.advance(minutes=5)
    await fill(svc, "long", 7)
    clock.advance(minutes=5)
    before = await storage(svc)

    dry = await svc.cleanup(dry_run=True)
    assert dry.dry_run and await storage(svc) == before
    real = await svc.cleanup()
    assert counts(dry) == counts(real)
    trimmed = 0 if trims_on_write(svc) else 4
    assert counts(real) == expect(
        sessions_expired=1, events_removed=2, events_trimmed=trimmed, app_state_expired=1,
        user_state_expired=1, tombstones_purged=1,
    )


# ---------------------------------------------------------------------------- trimming


async def test_events_beyond_event_limit_are_trimmed_newest_kept(backend, make_service, clock):
    svc = await make_service(session_ttl=TTL, event_limit=5, cleanup_batch_size=2)
    await fill(svc, "expired", 8)
    clock.advance(minutes=5)
    s1 = await fill(svc, "s1", 12)
    await fill(svc, "s2", 3)
    await fill(svc, "s3", 8)
    clock.advance(minutes=5)  # "expired" goes by expiry, not by trimming

    result = await svc.cleanup()
    memory = trims_on_write(svc)  # evicts beyond event_limit at write time
    assert counts(result) == expect(sessions_expired=1, events_trimmed=0 if memory else 7 + 3)
    assert await stored_seqs(backend, svc, make_service, key("s1")) == [8, 9, 10, 11, 12]
    assert await stored_seqs(backend, svc, make_service, key("s2")) == [1, 2, 3]
    assert await stored_seqs(backend, svc, make_service, key("s3")) == [4, 5, 6, 7, 8]

    assert (await svc.append_event(s1, event())).seq == 13  # seqs are never reused
    assert (await svc.cleanup()).events_trimmed == (0 if memory else 1)
    assert [e.seq for e in (await must_get(svc, key("s1"))).events] == [9, 10, 11, 12, 13]
    assert (await svc.cleanup()).total == 0


async def test_event_limit_none_keeps_and_reads_every_event(backend, make_service, clock):
    """event_limit=None: nothing is trimmed, at write time or by cleanup; reads return the whole
    history unless event_num/after narrow it."""
    svc = await make_service(session_ttl=TTL, event_limit=None, cleanup_batch_size=2)
    assert svc.options.event_limit is None
    s1 = await fill(svc, "s1", 12)
    clock.advance(minutes=1)
    result = await svc.cleanup()
    assert counts(result) == expect()  # nothing trimmed (nor expired)
    assert [e.seq for e in (await must_get(svc, key("s1"))).events] == list(range(1, 13))
    assert [e.seq for e in (await svc.get_session(key("s1"), event_num=3)).events] == [10, 11, 12]
    assert (await svc.append_event(s1, event())).seq == 13
    assert len((await must_get(svc, key("s1"))).events) == 13


# ---------------------------------------------------------------------------- tombstones


async def test_tombstones_are_purged_only_after_retention(make_service, clock):
    day = timedelta(days=1)
    svc = await make_service(session_ttl=TTL, app_state_ttl=TTL, tombstone_retention=day)
    t0 = clock.now
    await fill(svc, "expires", 3)
    await fill(svc, "deleted", 2)
    await svc.update_app_state(APP, {"gone": 1, "expires": 1})
    await svc.delete_session(key("deleted"))  # tombstone at t0
    await svc.delete_app_state(APP, "gone")  # tombstone at t0
    clock.advance(minutes=11)
    assert counts(await svc.cleanup()) == expect(sessions_expired=1, app_state_expired=1)  # tombstones at t0+11m
    assert await storage(svc) == {
        "sessions": 0, "session_tombstones": 2, "events": 5, "state": 0, "state_tombstones": 2,
    }

    clock.now = t0 + day - TINY
    assert (await svc.cleanup()).total == 0
    clock.now = t0 + day
    assert counts(await svc.cleanup()) == expect(tombstones_purged=2, events_removed=2)
    clock.now = t0 + day + timedelta(minutes=11) - TINY
    assert (await svc.cleanup()).total == 0
    clock.advance(TINY)
    assert counts(await svc.cleanup()) == expect(tombstones_purged=2, events_removed=3)
    assert await storage(svc) == dict.fromkeys(
        ("sessions", "session_tombstones", "events", "state", "state_tombstones"), 0
    )


async def test_hard_delete_keeps_no_tombstones(make_service, clock):
    svc = await make_service(session_ttl=TTL, app_state_ttl=TTL, soft_delete=False)
    await fill(svc, "expires", 3)
    await fill(svc, "deleted", 2, state={"app:gone": 1, "app:expires": 1})
    await svc.delete_session(key("deleted"))
    await svc.delete_app_state(APP, "gone")
    assert await storage(svc) == {"sessions": 1, "session_tombstones": 0, "events": 3, "state": 1, "state_tombstones": 0}
    clock.advance(minutes=11)
    assert counts(await svc.cleanup()) == expect(sessions_expired=1, events_removed=3, app_state_expired=1)
    assert await storage(svc) == dict.fromkeys(
        ("sessions", "session_tombstones", "events", "state", "state_tombstones"), 0
    )


# ---------------------------------------------------------------------------- re-creating ids


@pytest.mark.parametrize("soft_delete", [True, False], ids=["soft", "hard"])
async def test_an_expired_id_can_be_created_again_before_or_after_cleanup(make_service, clock, soft_delete):
    retention = timedelta(minutes=1)
    svc = await make_service(session_ttl=TTL, soft_delete=soft_delete, tombstone_retention=retention)
    await fill(svc, "before", 3, state={"old": 1})
    await fill(svc, "after", 2, state={"old": 1})
    clock.advance(TTL)

    before = await fill(svc, "before", 1, state={"new": 1})  # re-created before any cleanup ran
    assert counts(await svc.cleanup()) == expect(sessions_expired=1, events_removed=0 if soft_delete else 2)
    after = await fill(svc, "after", 1, state={"new": 1})  # re-created after cleanup
    for s in (before, after):
        got = await must_get(svc, s.key)
        assert got.state == {"new": 1} and [e.seq for e in got.events] == [1] and got.version == 1

    clock.advance(retention)  # the old incarnations' tombstones are due; the new sessions are not
    purged = await svc.cleanup()
    assert counts(purged) == (expect(tombstones_purged=2, events_removed=5) if soft_delete else expect())
    for s in (before, after):
        got = await must_get(svc, s.key)
        assert got.state == {"new": 1} and [e.content for e in got.events] == [0]
    assert await storage(svc) == {"sessions": 2, "session_tombstones": 0, "events": 2, "state": 0, "state_tombstones": 0}


# ---------------------------------------------------------------------------- concurrent cleaners


@pytest.mark.parametrize("soft_delete", [True, False], ids=["soft", "hard"])
async def test_two_services_cleaning_at_once_never_double_delete_or_deadlock(backend, make_service, clock, soft_delete):
    options = {**ALL_TTLS, "soft_delete": soft_delete, "cleanup_batch_size": 4, "event_limit": 5}
    svc1 = await make_service(**options)
    # The in-memory backend keeps data per service: there, one service runs two rounds at once.
    svc2 = await make_service(**options) if backend.shared_storage else svc1
    for i in range(30):
        await fill(svc1, f"s{i}", 3, state={f"app:a{i}": i, f"user:u{i}": i})
    long = await fill(svc1, "long", 9)  # live: 4 events beyond event_limit
    clock.advance(TTL - TINY)
    await svc1.append_event(long, event())  # keeps it alive; 5 beyond the limit now
    clock.advance(TINY)

    async def keep_appending() -> int:
        n = 0
        while not all(t.done() for t in cleaners):
            await svc2.append_event(await must_get(svc2, key("writer")), event())
            n += 1
        return n

    await new_session(svc2, "writer")
    cleaners = [asyncio.ensure_future(svc1.cleanup()), asyncio.ensure_future(svc2.cleanup())]
    results, appended = await asyncio.wait_for(
        asyncio.gather(asyncio.gather(*cleaners), keep_appending()), timeout=60
    )
    total = {name: sum(counts(r)[name] for r in results) for name in counts(results[0])}
    memory = trims_on_write(svc1)
    trimmed = 0 if memory else 5 + max(0, appended - 5)
    assert total["sessions_expired"] == 30
    assert total["events_removed"] == (0 if soft_delete else 90)
    assert total["app_state_expired"] == 30 and total["user_state_expired"] == 30
    assert total["tombstones_purged"] == 0
    assert total["events_trimmed"] <= trimmed
    skipped = [r.skipped for r in results]
    print(f"\n{backend.name} ({'soft' if soft_delete else 'hard'}): skipped={skipped} appends during={appended}")
    follow_up = await svc1.cleanup()  # only trimming can be left (of the writer's newest appends)
    assert follow_up.total == follow_up.events_trimmed
    final = await storage(svc1)
    assert final["sessions"] == 2 and final["state"] == 0
    assert final["session_tombstones"] == (30 if soft_delete else 0)
    assert final["events"] == 5 + min(appended, 5) + (90 if soft_delete else 0)  # event_limit per live session


# ---------------------------------------------------------------------------- the periodic job


async def test_start_runs_cleanup_periodically_and_close_stops_it(make_service, clock):
    svc = await make_service(session_ttl=TTL, soft_delete=False, cleanup_interval=timedelta(milliseconds=50))
    rounds: list[CleanupResult] = []
    real_cleanup = svc.cleanup

    async def counting_cleanup(**kw: Any) -> CleanupResult:
        result = await real_cleanup(**kw)
        rounds.append(result)
        return result

    svc.cleanup = counting_cleanup  # type: ignore[method-assign]  # what the job calls
    task = svc._cleanup_task
    assert task is not None and not task.done()
    await fill(svc, "s1", 2)
    clock.advance(minutes=11)

    deadline = perf_counter() + 0.9
    while not any(r.sessions_expired for r in rounds) and perf_counter() < deadline:
        await asyncio.sleep(0.01)
    assert [r.sessions_expired for r in rounds if r.sessions_expired] == [1], rounds
    assert (await storage(svc))["sessions"] == 0

    await svc.close()
    assert task.done() and svc._cleanup_task is None
    seen = len(rounds)
    await asyncio.sleep(0.15)
    assert len(rounds) == seen  # nothing runs after close()
    await svc.close()  # a second close is harmless


async def test_no_periodic_job_without_cleanup_interval(make_service):
    svc = await make_service(cleanup_interval=None)
    assert svc._cleanup_task is None


# ---------------------------------------------------------------------------- result and log line


async def test_each_round_returns_a_result_and_logs_one_structured_line(make_service, clock, caplog):
    svc = await make_service(session_ttl=TTL, soft_delete=False)
    await fill(svc, "s1", 2)
    clock.advance(minutes=11)
    with caplog.at_level(logging.INFO, logger="sessionstore.cleanup"):
        result = await svc.cleanup()
    assert isinstance(result, CleanupResult) and result.seconds >= 0
    assert result.total == 3 == result.sessions_expired + result.events_removed
    lines = [r for r in caplog.records if r.name == "sessionstore.cleanup"]
    assert len(lines) == 1
    assert lines[0].getMessage() == f"sessionstore cleanup {result.log_line()}"
    assert lines[0].cleanup == result.as_dict()  # type: ignore[attr-defined]
    line = result.log_line()
    for field in ("sessions_expired=1", "events_removed=2", "events_trimmed=0", "app_state_expired=0",
                  "user_state_expired=0", "tombstones_purged=0", "dry_run=False", "skipped=False", "total=3"):
        assert field in line.split()


# ---------------------------------------------------------------------------- SQL only: lock and load


@pytest.fixture(scope="module", params=SQL_BACKENDS)
async def sql_backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    async with provision(request.param) as provisioned:
        yield provisioned


@pytest.fixture
async def make_sql(sql_backend: Backend, clock: FakeClock) -> AsyncIterator[Any]:
    """Like make_service, on the SQL backends only."""
    async with service_factory(sql_backend, clock) as factory:
        yield factory


async def test_the_cleanup_lock_lets_one_cleaner_work_at_a_time(sql_backend, make_sql, clock, caplog):
    """PostgreSQL and MySQL/MariaDB: a cleaner that finds the lock taken skips its round.
    SQLite has no named locks: a cleaner waits for the database's write lock, batch by batch."""
    svc = await make_sql(session_ttl=TTL, soft_delete=False)
    other = await make_sql(session_ttl=TTL, soft_delete=False)
    await fill(svc, "s1", 2)
    clock.advance(minutes=11)
    name = lock_name(svc.table_prefix)
    assert name == f"sessionstore-cleanup-{svc.table_prefix}"

    if sql_backend.name == "sqlite":
        async with svc.db.writer.begin() as holder:  # BEGIN IMMEDIATE: holds the write lock
            await holder.execute(select(1))
            waiting = asyncio.ensure_future(other.cleanup())
            await asyncio.sleep(0.3)
            assert not waiting.done()
        result = await asyncio.wait_for(waiting, 30)
        assert not result.skipped and counts(result) == expect(sessions_expired=1, events_removed=2)
        return

    async with svc.engine.connect() as holder:
        assert await svc.rules.try_lock(holder, name)
        await holder.commit()
        with caplog.at_level(logging.INFO, logger="sessionstore.cleanup"):
            skipped = await other.cleanup()
        assert skipped.skipped and skipped.total == 0
        assert "skipped" in caplog.text
        assert (await storage(svc))["events"] == 2  # nothing was touched
        await svc.rules.unlock(holder, name)
        await holder.commit()
    result = await other.cleanup()
    assert not result.skipped and counts(result) == expect(sessions_expired=1, events_removed=2)


async def test_overlapping_rounds_on_one_database_count_each_row_once(sql_backend, make_sql, clock):
    """With a real lock, rounds that truly overlap skip (each round here runs 500+ batches, so the
    three always overlap); on SQLite they interleave batch by batch. Either way the totals are exact."""
    svc1 = await make_sql(session_ttl=TTL, soft_delete=False, cleanup_batch_size=10)
    svc2 = await make_sql(session_ttl=TTL, soft_delete=False, cleanup_batch_size=10)
    await fill_expired(svc1, 5_000, expires_at=clock.now + TTL, per_session=100)
    clock.advance(TTL)
    results = await asyncio.wait_for(asyncio.gather(svc1.cleanup(), svc2.cleanup(), svc1.cleanup()), 120)
    assert sum(r.sessions_expired for r in results) == 50
    assert sum(r.events_removed for r in results) == 5_000
    skipped = sum(r.skipped for r in results)
    print(f"\n{sql_backend.name}: {skipped} of 3 overlapping rounds skipped")
    if sql_backend.name != "sqlite":
        assert skipped >= 1  # 500 batches each: they overlap
    else:
        assert skipped == 0  # SQLite interleaves batch by batch instead


LOAD_EVENTS = 40_000
"""Enough for the cleaner to run hundreds of batches among the appends; the volume itself
(200,000, and rows per second) is the cleanup benchmark's: on SQLite, where the cleaner
shares one write lock with a task appending without pause, a round of 200,000 here took
two to three minutes."""
RATIO_BOUND = 10.0  # generous for CI; the benchmark reports the real ratio against the 3x target


async def test_appends_keep_flowing_while_expired_events_are_cleaned(sql_backend, make_sql, clock):
    svc = await make_sql(session_ttl=TTL, soft_delete=False, event_limit=1_000_000)
    started = perf_counter()
    sessions = await fill_expired(svc, LOAD_EVENTS, expires_at=clock.now + TTL)
    loaded = perf_counter() - started
    clock.advance(TTL)
    live = await new_session(svc, "writer")

    result, idle, during = await appends_during(svc, live, svc.cleanup())
    assert counts(result) == expect(sessions_expired=sessions, events_removed=LOAD_EVENTS)
    ratio = during.p99 / idle.p99
    print(
        f"\n{sql_backend.name}: loaded {LOAD_EVENTS} expired events in {loaded:.1f}s; cleanup removed "
        f"{result.total} rows in {result.seconds:.2f}s ({result.total / result.seconds:,.0f} rows/s) while "
        f"{len(during.samples)} appends ran: append p99 idle {idle.p99 * 1e3:.2f} ms, during cleanup "
        f"{during.p99 * 1e3:.2f} ms, ratio {ratio:.2f} (p50 {idle.p50 * 1e3:.2f} -> {during.p50 * 1e3:.2f} ms)"
    )
    assert len(during.samples) >= 50, "appends stalled while the cleanup ran"
    assert ratio <= RATIO_BOUND
    newest = (await must_get(svc, live.key, event_num=1)).events
    assert [e.seq for e in newest] == [50 + len(idle.samples) + len(during.samples)]  # every append landed


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
async def test_two_databases_on_one_server_clean_independently(kind: str, clock: FakeClock) -> None:
    """Named locks are per database: a cleaner holding the lock in one database (same
    table prefix) does not make a cleaner of another database on the same server skip.
    (MySQL's GET_LOCK is server-wide; the name is qualified with the database.)"""
    from sqlalchemy.ext.asyncio import AsyncEngine

    from sessionstore.sql.migrate import migrate
    from tests.dbs import scratch_database

    async with scratch_database(kind) as url_a, scratch_database(kind) as url_b:
        services = []
        for url in (url_a, url_b):
            await migrate(url)
            svc = ss.open_service(url, session_ttl=TTL, cleanup_interval=None, clock=clock)
            assert isinstance(svc, SQLSessionService)
            await svc.start()
            services.append(svc)
        a, b = services
        try:
            engine: AsyncEngine = a.engine
            async with engine.connect() as holder:
                assert await a.rules.try_lock(holder, lock_name(a.table_prefix))
                await holder.commit()
                assert (await a.cleanup()).skipped  # its own database's lock is taken
                assert not (await b.cleanup()).skipped  # the other database's is not
                await a.rules.unlock(holder, lock_name(a.table_prefix))
                await holder.commit()
        finally:
            for svc in services:
                await svc.close()
