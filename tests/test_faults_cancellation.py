"""Cancellation at random points of every write and read, on SQLite, PostgreSQL and MySQL/MariaDB.

Agents cancel all the time (a client goes away, a timeout fires, a TaskGroup
fails), and a cancellation can land on any await of an operation: the pool
checkout, BEGIN, a statement, COMMIT, the rollback after an error. Whatever
it hits, afterwards

- no pooled connection is inside a transaction: asked of the database
  (PostgreSQL's pg_stat_activity, MariaDB's information_schema.innodb_trx,
  SQLite's write lock) and of the driver of every idle pooled connection;
- every acknowledged append (one whose await returned a seq) is stored at
  that seq, read back with raw SQL on a fresh connection, and every session's
  seqs are 1..n without a gap;
- no operation failed with a DatabaseError: a connection left dirty shows up
  as "current transaction is aborted" or "SAVEPOINT can only be used in
  transaction blocks" on its next use.

The timeouts are calibrated on each operation's median latency, measured
first on the same database, and drawn at random fractions of it, so most of
them land inside the database work (the rest let the operation finish).

SQLite runs a whole write transaction in one hop on aiosqlite's thread,
which a cancellation cannot call back; two deterministic tests pin down what
happens then (the transaction commits or rolls back, the connection never
returns to the pool mid-transaction, and the caller is not kept waiting).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.engine import make_url

import sessionstore as ss
from sessionstore.sql.migrate import migrate
from sessionstore.sql.service import SQLSessionService
from tests.backends import DRIVER_VARIANTS, SQL_BACKENDS, MigratedDb, migrated_database, sql_database
from tests.fault_checks import Acknowledged, compare_acknowledged, pooled_in_transaction, wait_no_open_transactions

MAX_OPERATIONS = 1200
TIME_BUDGET_S = 6.0
HUNG_S = 10.0  # an operation left to run that takes this long is stuck (e.g. on a row a dirty connection locks)
WORKERS = 4
SESSIONS = 3


Db = MigratedDb


@pytest.fixture(scope="module", params=[*SQL_BACKENDS, *DRIVER_VARIANTS])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[Db]:
    """A scratch database of each SQL kind (and PostgreSQL through psycopg too), migrated with
    the default prefix, for the whole module."""
    async with migrated_database(request.param) as migrated:
        yield migrated


async def open_started(url: str, **options: Any) -> SQLSessionService:
    svc = ss.open_service(url, cleanup_interval=None, **options)
    await svc.start()
    assert isinstance(svc, SQLSessionService)
    return svc


class Workload:
    """Every public operation, each a coroutine factory; appends record what they were acknowledged."""

    def __init__(self, svc: SQLSessionService, app: str, sessions: list[ss.Session]) -> None:
        self.svc = svc
        self.app = app
        self.sessions = sessions
        self.acked = Acknowledged()
        self.rng = random.Random(8)
        self.scratch: list[ss.Key] = []  # sessions made to be deleted

    def _session(self) -> ss.Session:
        return self.rng.choice(self.sessions)

    def _append(self, **fields: Any) -> Callable[[], Awaitable[Any]]:
        session = self._session()
        event = ss.Event(author="agent", id=uuid.uuid4().hex, content={"n": self.rng.random()}, **fields)

        async def run() -> None:
            stored = await self.svc.append_event(session, event)
            self.acked.add(session.id, stored.id, stored.seq)

        return run

    def operations(self) -> dict[str, Callable[[], Callable[[], Awaitable[Any]]]]:
        def create() -> Callable[[], Awaitable[Any]]:
            k = ss.Key(self.app, "u1", f"new-{uuid.uuid4().hex[:12]}")
            return lambda: self.svc.create_session(k, state={"a": 1, "user:b": 2})

        def delete() -> Callable[[], Awaitable[Any]]:
            k = self.scratch.pop() if self.scratch else ss.Key(self.app, "u1", "nothing-here")
            return lambda: self.svc.delete_session(k)

        def update_session_state() -> Callable[[], Awaitable[Any]]:
            k = self._session().key
            return lambda: self.svc.update_session_state(k, {"s": 1, "user:t": 2})

        def get() -> Callable[[], Awaitable[Any]]:
            k = self._session().key
            return lambda: self.svc.get_session(k, event_num=5)

        return {
            # PostgreSQL: the one-statement append; MySQL: the append at a known version
            "append": lambda: self._append(),
            # the general transaction everywhere
            "append_with_session_state": lambda: self._append(state_delta={"k": 1, "user:u": 2, "app:a": 3}),
            "append_expecting_a_version": lambda: self._expecting(),
            "update_session_state": update_session_state,
            "update_user_state": lambda: (lambda: self.svc.update_user_state(ss.UserKey(self.app, "u1"), {"x": 1})),
            "update_app_state": lambda: (lambda: self.svc.update_app_state(self.app, {"y": 1})),
            "create_session": create,
            "delete_session": delete,
            "get_session": get,
            "list_sessions": lambda: (lambda: self.svc.list_sessions(ss.UserKey(self.app, "u1"), limit=5)),
        }

    def _expecting(self) -> Callable[[], Awaitable[Any]]:
        session = self._session()
        event = ss.Event(author="agent", id=uuid.uuid4().hex, content=1)

        async def run() -> None:
            try:
                stored = await self.svc.append_event(session, event, expected_version=session.version)
            except ss.ConflictError:
                return  # another worker got there first: nothing stored, nothing acknowledged
            self.acked.add(session.id, stored.id, stored.seq)

        return run


async def calibrate(workload: Workload, runs: int = 10) -> dict[str, float]:
    """The median latency of each operation, uncancelled, with WORKERS tasks running it at once
    (as the test will: they queue on locks and on the pool)."""
    medians = {}
    for name in workload.operations():
        if name == "delete_session":
            await add_scratch_sessions(workload, runs * WORKERS)
        took: list[float] = []
        await asyncio.gather(*(timed(workload, name, runs, took) for _ in range(WORKERS)))
        medians[name] = statistics.median(took)
    return medians


async def timed(workload: Workload, name: str, runs: int, took: list[float]) -> None:
    for _ in range(runs):
        op = workload.operations()[name]()
        started = time.perf_counter()
        await op()
        took.append(time.perf_counter() - started)


async def add_scratch_sessions(workload: Workload, count: int) -> None:
    """Sessions for delete_session to take."""
    for _ in range(count):
        k = ss.Key(workload.app, "u1", f"gone-{uuid.uuid4().hex[:12]}")
        await workload.svc.create_session(k)
        workload.scratch.append(k)


async def test_cancelling_any_operation_at_random_points_loses_nothing_and_leaves_no_transaction_open(
    db: Db, record_property: Callable[[str, Any], None]
) -> None:
    app = f"cancel-{uuid.uuid4().hex[:8]}"
    threads_before = sqlite_threads()
    svc = await open_started(db.url, pool_size=WORKERS, max_overflow=0, pool_timeout=30)
    try:
        sessions = [await svc.create_session(ss.Key(app, "u1", f"s{i}")) for i in range(SESSIONS)]
        workload = Workload(svc, app, sessions)
        medians = await calibrate(workload)
        await add_scratch_sessions(workload, 60)

        outcomes: Counter[str] = Counter()
        failures: list[BaseException] = []
        deadline = time.monotonic() + TIME_BUDGET_S
        names = list(medians)

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            while outcomes.total() < MAX_OPERATIONS and time.monotonic() < deadline:
                name = rng.choice(names)
                op = workload.operations()[name]()
                # Half are cut short somewhere in their database work; the other half run to
                # the end, on whatever connections the cut ones gave back.
                cut = rng.random() < 0.5
                try:
                    await asyncio.wait_for(op(), medians[name] * rng.uniform(0.05, 1.2) if cut else HUNG_S)
                except asyncio.TimeoutError:
                    if not cut:
                        failures.append(TimeoutError(f"{name} hung for {HUNG_S}s"))
                    outcomes["cancelled" if cut else "hung"] += 1
                except ss.DatabaseError as exc:
                    failures.append(exc)
                    outcomes["failed"] += 1
                except (ss.SessionNotFoundError, ss.SessionExistsError):
                    outcomes["completed"] += 1  # a delete won the race; nothing to check
                else:
                    outcomes["completed"] += 1

        await asyncio.gather(*(worker(seed) for seed in range(WORKERS)))

        # The service keeps working, on every pooled connection: these must all land too.
        for round_ in range(WORKERS):
            for session in sessions:
                try:
                    stored = await asyncio.wait_for(
                        svc.append_event(session, ss.Event(author="after", id=uuid.uuid4().hex, content=round_)), HUNG_S
                    )
                except (ss.DatabaseError, asyncio.TimeoutError) as exc:
                    failures.append(exc)
                else:
                    workload.acked.add(session.id, stored.id, stored.seq)

        verdict = await compare_acknowledged(db.url, app, workload.acked)
        in_transaction = await pooled_in_transaction(svc)
        left_open = await wait_no_open_transactions(db.url)
    finally:
        await svc.close()
    assert await all_closed(threads_before), "an abandoned SQLite connection was never closed"

    cancelled = outcomes["cancelled"]
    print(f"\n{db.kind}: {outcomes.total()} operations, {cancelled} cancelled, {verdict.acknowledged} "
          f"acknowledged appends, {len(verdict.lost)} lost; medians (ms) "
          + ", ".join(f"{name} {m * 1000:.2f}" for name, m in medians.items()))
    record_property(f"cancellation_{db.kind}", {**outcomes, **verdict.figures()})
    verdict.check()
    assert not failures, f"{len(failures)} operations failed, e.g. {failures[:3]}"
    assert not any(in_transaction), "a pooled connection is inside a transaction"
    assert left_open == 0, "a connection was left inside a transaction"
    # The test means something only if plenty of operations were cut short and plenty finished.
    assert cancelled >= 0.2 * outcomes.total() and outcomes["completed"] >= 0.2 * outcomes.total(), outcomes


# --------------------------------------------------------------------------- SQLite's one-hop transactions


@pytest.fixture
async def sqlite_url() -> AsyncIterator[str]:
    async with sql_database("sqlite") as url:
        await migrate(url)
        yield url


def sqlite_threads() -> int:
    """aiosqlite's worker threads alive: one per open connection."""
    return sum("_connection_worker_thread" in thread.name for thread in threading.enumerate())


async def all_closed(threads_before: int, within_s: float = 5.0) -> bool:
    """Wait until every SQLite connection opened since `threads_before` was counted is closed,
    abandoned ones included (they close on their thread once their transaction is over)."""
    deadline = time.monotonic() + within_s
    while sqlite_threads() > threads_before:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_sqlite_a_write_cancelled_on_the_worker_thread_is_all_or_nothing_and_its_connection_is_not_reused(
    sqlite_url: str,
) -> None:
    # One connection in the pool, and a write long enough (thousands of statements on
    # aiosqlite's thread) to be cancelled in its middle.
    threads_before = sqlite_threads()
    svc = await open_started(sqlite_url, pool_size=1, max_overflow=0)
    try:
        big = {f"k{i}": i for i in range(4000)}
        # The quickest of three whole writes: the first ones run slower (caches, the WAL
        # growing), and a timeout must land inside every later write, not after it.
        timings = []
        for name in ("whole-1", "whole-2", "whole-3"):
            started = time.perf_counter()
            await svc.update_app_state(name, big)
            timings.append(time.perf_counter() - started)
        full = min(timings)
        assert await svc.list_app_state("whole-3") == big  # the good case: all of it

        for fraction in (0.1, 0.4, 0.7):
            app = f"cut-{fraction}"
            timeout = full * fraction
            for _ in range(6):  # a later write may run faster than the ones timed: land earlier then
                try:
                    await asyncio.wait_for(svc.update_app_state(app, big), timeout)
                except asyncio.TimeoutError:
                    break
                timeout /= 2
            else:
                pytest.fail(f"no write of {len(big)} keys was cut (the last timeout was {timeout:.4f} s)")
            # The pool's connection is never the one still running that transaction.
            assert await pooled_in_transaction(svc) in ([], [False])
            async with svc.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                assert not raw.in_transaction
            # All of it or none of it, once the abandoned transaction is over (the next
            # write waits for SQLite's lock until then).
            await svc.update_app_state("other", {"x": fraction})
            assert len(await svc.list_app_state(app)) in (0, len(big))
        assert await wait_no_open_transactions(sqlite_url) == 0
    finally:
        await svc.close()
    assert await all_closed(threads_before), "an abandoned SQLite connection was never closed"


async def test_sqlite_a_write_cancelled_while_another_process_holds_the_lock_returns_at_once_and_writes_nothing(
    sqlite_url: str,
) -> None:
    threads_before = sqlite_threads()
    svc = await open_started(sqlite_url, pool_size=1, max_overflow=0)
    other = sqlite3.connect(make_url(sqlite_url).database, isolation_level=None, check_same_thread=False)
    try:
        session = await svc.create_session(ss.Key("app", "u1", "s1"))
        other.execute("BEGIN IMMEDIATE")  # "another process" holds the write lock
        try:
            started = time.perf_counter()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(svc.append_event(session, ss.Event(author="a", id="blocked", content=1)), 0.2)
            # The caller is not kept until the 30 s busy timeout.
            assert time.perf_counter() - started < 2.0
        finally:
            other.execute("ROLLBACK")
        # The abandoned transaction got the lock after the release, and stopped before writing.
        stored = await svc.append_event(session, ss.Event(author="a", id="after", content=2))
        assert stored.seq == 1
        got = await svc.get_session(session.key)
        assert got is not None and [e.id for e in got.events] == ["after"]
        assert await wait_no_open_transactions(sqlite_url) == 0
    finally:
        other.close()
        await svc.close()
    assert await all_closed(threads_before), "an abandoned SQLite connection was never closed"
