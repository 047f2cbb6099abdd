"""Servers that go away and come back: restarts, crashes, killed connections, start-up, shutdown.

After a restart or failover the pool still holds connections the server has
dropped. A service must get over that by itself, without being recreated:
writes discard dead connections and rerun once on a fresh one when nothing
can have been committed; errors while the server is away are typed
(DatabaseError or a subclass), never a driver's or SQLAlchemy's own; and no
acknowledged append is lost.

The servers that are stopped, killed and restarted here are private ones
the module starts (tests/private_servers.py): a PostgreSQL and a MariaDB on
free loopback ports in temporary directories, started once for the module.
pg_terminate_backend is also tried on the shared PostgreSQL, on the
connections to the scratch database the test created and on nothing else.

Each restart runs two services at once under load, one that only appends
(nothing else would ever discard its dead connections) and one with a mixed
workload, and measures each one's recovery: the time from the server
accepting connections again to that service's first successful append.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

import sessionstore as ss
from sessionstore.sql.engine import make_engine
from sessionstore.sql.migrate import migrate
from sessionstore.sql.service import SQLSessionService
from tests.dbs import scratch_database
from tests.fault_checks import Acknowledged, compare_acknowledged, every_operation
from tests.private_servers import PrivateMariaDB, PrivatePostgres, started

RECOVERY_BOUND_S = 5.0  # after the server is back, each service appends again within this
HUNG_S = 10.0
PASSWORD = "S3cr3tPassw0rd"


# --------------------------------------------------------------------------- servers and databases


@pytest.fixture(scope="module")
async def private_pg() -> AsyncIterator[PrivatePostgres]:
    async with started(PrivatePostgres.create, "sessionstore-pg-") as server:
        yield server


@pytest.fixture(scope="module")
async def private_mariadb() -> AsyncIterator[PrivateMariaDB]:
    async with started(PrivateMariaDB.create, "sessionstore-mariadb-") as server:
        yield server


async def admin(url: str, *statements: str) -> None:
    engine = make_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def new_database(server: PrivatePostgres | PrivateMariaDB) -> str:
    """A new database on a private server, migrated; its URL (as the server's superuser)."""
    name = f"ss_fault_{uuid.uuid4().hex[:8]}"
    await admin(server.url(), f"CREATE DATABASE {name}")
    url = server.url(database=name)
    await migrate(url)
    return url


async def open_started(url: str, **options: Any) -> SQLSessionService:
    svc = ss.open_service(url, cleanup_interval=None, **options)
    await svc.start()
    assert isinstance(svc, SQLSessionService)
    return svc


# --------------------------------------------------------------------------- load


@dataclass
class Load:
    """Workers appending (and, if mixed, reading and updating state) through one service."""

    name: str
    svc: SQLSessionService
    app: str
    mixed: bool
    sessions: list[ss.Session] = field(default_factory=list)
    acked: Acknowledged = field(default_factory=Acknowledged)
    appended_at: list[float] = field(default_factory=list)
    typed_errors: list[ss.DatabaseError] = field(default_factory=list)
    other_errors: list[BaseException] = field(default_factory=list)

    @classmethod
    async def open(cls, name: str, url: str, *, mixed: bool, sessions: int = 3) -> Load:
        svc = await open_started(url, pool_size=3, max_overflow=0)
        load = cls(name, svc, f"{name}-{uuid.uuid4().hex[:6]}", mixed)
        load.sessions = [await svc.create_session(ss.Key(load.app, "u1", f"s{i}")) for i in range(sessions)]
        return load

    async def one(self, session: ss.Session, rng: random.Random) -> None:
        op = rng.choice(["append", "append", "read", "state", "list"]) if self.mixed else "append"
        if op == "append":
            stored = await self.svc.append_event(session, ss.Event(author="agent", id=uuid.uuid4().hex, content=1))
            self.acked.add(session.id, stored.id, stored.seq)
            self.appended_at.append(time.monotonic())
        elif op == "read":
            await self.svc.get_session(session.key, event_num=3)
        elif op == "state":
            await self.svc.update_session_state(session.key, {"n": rng.random(), "user:m": 1})
        else:
            await self.svc.list_sessions(ss.UserKey(self.app, "u1"), limit=3)

    async def work(self, session: ss.Session, seed: int, stop: asyncio.Event) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.one(session, rng), HUNG_S)
            except ss.DatabaseError as exc:
                self.typed_errors.append(exc)
                await asyncio.sleep(0.005)  # the server is away: do not spin
            except Exception as exc:  # noqa: BLE001 - anything untyped (or hung) is a failure
                self.other_errors.append(exc)
                await asyncio.sleep(0.005)

    def first_append_after(self, moment: float) -> float | None:
        later = [t for t in self.appended_at if t >= moment]
        return min(later) - moment if later else None


async def restart_under_load(
    url: str, stop_server: Callable[[], Awaitable[None]], start_server: Callable[[], Awaitable[float]]
) -> dict[str, float]:
    """Stop and restart the server while an append-only and a mixed service work; check them; their recovery times."""
    loads = [await Load.open("append_only", url, mixed=False), await Load.open("mixed", url, mixed=True)]
    stop = asyncio.Event()
    workers = [
        asyncio.create_task(load.work(session, seed, stop))
        for load in loads
        for seed, session in enumerate(load.sessions)
    ]
    try:
        await asyncio.sleep(0.3)
        await stop_server()
        await asyncio.sleep(0.3)  # writes and reads fail meanwhile
        ready = await start_server()  # the moment it accepts connections again
        while any(load.first_append_after(ready) is None for load in loads) and time.monotonic() < ready + RECOVERY_BOUND_S:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.gather(*workers)
    recovery = {}
    try:
        for load in loads:
            assert not load.other_errors, f"{load.name}: untyped errors: " + "".join(
                traceback.format_exception(load.other_errors[0])
            )
            assert load.typed_errors, f"{load.name}: the outage went unnoticed"
            took = load.first_append_after(ready)
            assert took is not None, f"{load.name}: no append succeeded within {RECOVERY_BOUND_S}s of the restart"
            recovery[load.name] = took
            for n in range(10):  # and it stays recovered
                for session in load.sessions:
                    stored = await load.svc.append_event(session, ss.Event(author="after", id=uuid.uuid4().hex, content=n))
                    load.acked.add(session.id, stored.id, stored.seq)
            verdict = await compare_acknowledged(url, load.app, load.acked)
            verdict.check()
            recovery[f"{load.name}_acknowledged"] = verdict.acknowledged
    finally:
        for load in loads:
            await load.svc.close()
    return recovery


def report(what: str, figures: dict[str, float], record_property: Callable[[str, Any], None]) -> None:
    print(
        f"\n{what}: recovery after the server accepted connections again: "
        f"append-only {figures['append_only'] * 1000:.1f} ms, mixed {figures['mixed'] * 1000:.1f} ms "
        f"({figures['append_only_acknowledged'] + figures['mixed_acknowledged']:.0f} acknowledged appends, none lost)"
    )
    record_property(f"recovery_{what}", figures)


# --------------------------------------------------------------------------- restarts


@pytest.mark.parametrize(("mode", "driver"), [("fast", "asyncpg"), ("immediate", "asyncpg"), ("immediate", "psycopg")])
async def test_postgres_restart_append_only_and_mixed_services_recover_and_lose_nothing(
    private_pg: PrivatePostgres, mode: str, driver: str, record_property: Callable[[str, Any], None]
) -> None:
    url = (await new_database(private_pg)).replace("postgresql://", f"postgresql+{driver}://", 1)
    figures = await restart_under_load(url, lambda: private_pg.stop(mode), private_pg.start)
    report(f"postgresql_{driver}_{mode}", figures, record_property)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_mariadb_restart_append_only_and_mixed_services_recover_and_lose_nothing(
    private_mariadb: PrivateMariaDB, sig: signal.Signals, record_property: Callable[[str, Any], None]
) -> None:
    url = await new_database(private_mariadb)
    figures = await restart_under_load(url, lambda: private_mariadb.stop(sig), private_mariadb.start)
    report(f"mariadb_{sig.name.lower()}", figures, record_property)


# --------------------------------------------------------------------------- killed connections


async def terminate_our_connections(url: str) -> int:
    """pg_terminate_backend every client connection to this (scratch) database but the asking
    one; wait until they are gone. How many there were."""
    # (autocommit: within a transaction pg_stat_activity is one snapshot)
    engine = make_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    ours = (
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'"
    )
    try:
        async with engine.connect() as conn:
            pids = list(await conn.scalars(text(f"SELECT pid {ours}")))
            for pid in pids:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and await conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"), {"pids": pids}
            ):
                await asyncio.sleep(0.01)
    finally:
        await engine.dispose()
    return len(pids)


async def test_postgres_connections_killed_by_pg_terminate_backend_are_replaced() -> None:
    async with scratch_database("postgresql", prefix="ss_terminate_") as url:
        await migrate(url)
        svc = await open_started(url, pool_size=5, max_overflow=0)
        try:
            session = await svc.create_session(ss.Key("app", "u1", "s1"))
            # Fill the pool: five connections, all killed below.
            await asyncio.gather(*(svc.append_event(session, ss.Event(author="a", content=i)) for i in range(10)))
            assert await terminate_our_connections(url) >= 5
            await asyncio.sleep(0.05)  # the service idles a moment, as after any outage

            # The report: 0 of 100 appends succeeded after one pg_terminate_backend.
            for i in range(100):
                await svc.append_event(session, ss.Event(author="a", content=i))
            for _ in range(5):  # the same for the general transaction and the other writes
                await svc.append_event(session, ss.Event(author="a", content=0, state_delta={"k": 1}))
                await svc.update_session_state(session.key, {"k": 2})
            got = await svc.get_session(session.key)
            assert got is not None and got.version == 120
        finally:
            await svc.close()


async def test_postgres_connections_killed_under_load_are_replaced_and_nothing_acknowledged_is_lost() -> None:
    async with scratch_database("postgresql", prefix="ss_terminate_") as url:
        await migrate(url)
        loads = [await Load.open("append_only", url, mixed=False), await Load.open("mixed", url, mixed=True)]
        stop = asyncio.Event()
        workers = [
            asyncio.create_task(load.work(session, seed, stop)) for load in loads for seed, session in enumerate(load.sessions)
        ]
        try:
            for _ in range(3):
                await asyncio.sleep(0.3)
                killed_at = time.monotonic()
                await terminate_our_connections(url)
            await asyncio.sleep(0.3)
        finally:
            stop.set()
            await asyncio.gather(*workers)
        try:
            for load in loads:
                assert not load.other_errors, f"{load.name}: untyped errors: {load.other_errors[:3]}"
                assert load.first_append_after(killed_at) is not None, f"{load.name} did not recover"
                verdict = await compare_acknowledged(url, load.app, load.acked)
                verdict.check()
        finally:
            for load in loads:
                await load.svc.close()


# --------------------------------------------------------------------------- refused connections, typed


async def assert_all_fail_typed(
    ops: dict[str, Callable[[], Awaitable[Any]]], says: str, *, password: str | None = None
) -> None:
    for name, op in ops.items():
        with pytest.raises(ss.DatabaseError) as raised:
            await op()
        assert says in str(raised.value), f"{name}: {raised.value!r}"
        assert "://" in str(raised.value), f"{name}: the message should name the (redacted) URL"
        if password:
            chain: BaseException | None = raised.value
            while chain is not None:
                assert password not in str(chain) and password not in repr(chain), f"{name}: password shown"
                chain = chain.__cause__ or chain.__context__
            assert password not in "".join(traceback.format_exception(raised.value))


async def assert_all_work(ops: dict[str, Callable[[], Awaitable[Any]]]) -> None:
    for op in ops.values():
        await op()


async def until(condition: Callable[[], Awaitable[bool]], within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def refused_with(server: PrivatePostgres, says: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(server.url(), timeout=2)
    except Exception as exc:  # noqa: BLE001
        return says in str(exc)
    await conn.close()
    return False


async def test_postgres_starting_up_is_a_typed_error_and_everything_works_once_it_is_up(private_pg: PrivatePostgres) -> None:
    url = await new_database(private_pg)
    svc = await open_started(url)
    try:
        session = await svc.create_session(ss.Key("app", "u1", "s1"))
        ops = every_operation(svc, session)
        await assert_all_work(ops)

        await private_pg.stop("fast")
        await private_pg.start_held_in_startup()
        try:
            await until(lambda: refused_with(private_pg, "starting up"))
            await assert_all_fail_typed(ops, "the database system is starting up")
        finally:
            await private_pg.release_from_startup()
            await private_pg.start()
        await assert_all_work(ops)
    finally:
        await svc.close()


async def test_postgres_shutting_down_is_a_typed_error_and_everything_works_after_a_restart(
    private_pg: PrivatePostgres,
) -> None:
    import asyncpg

    url = await new_database(private_pg)
    svc = await open_started(url, poolclass=NullPool)  # every call connects: a smart shutdown refuses new connections only
    try:
        session = await svc.create_session(ss.Key("app", "u1", "s1"))
        ops = every_operation(svc, session)
        await assert_all_work(ops)

        holder = await asyncpg.connect(private_pg.url())  # keeps the smart shutdown waiting
        try:
            await private_pg.stop("smart", wait=False)
            await until(lambda: refused_with(private_pg, "shutting down"))
            await assert_all_fail_typed(ops, "the database system is shutting down")
        finally:
            await holder.close()
        await until(lambda: _stopped(private_pg))
        await private_pg.start()
        await assert_all_work(ops)
    finally:
        await svc.close()


async def _stopped(server: PrivatePostgres) -> bool:
    return not await server.is_running()


async def test_postgres_a_wrong_password_is_a_typed_error_that_does_not_show_it(private_pg: PrivatePostgres) -> None:
    role = f"app_{uuid.uuid4().hex[:6]}"
    database = f"ss_fault_{uuid.uuid4().hex[:8]}"
    await admin(private_pg.url(), f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'", f"CREATE DATABASE {database} OWNER {role}")
    try:
        as_role = private_pg.url(role, PASSWORD, database)
        await migrate(as_role)
        svc = await open_started(as_role, poolclass=NullPool)  # every call logs in
        try:
            session = await svc.create_session(ss.Key("app", "u1", "s1"))
            ops = every_operation(svc, session)
            await assert_all_work(ops)  # the right password

            await admin(private_pg.url(), f"ALTER ROLE {role} PASSWORD 'something else'")
            await assert_all_fail_typed(ops, "password authentication failed", password=PASSWORD)

            await admin(private_pg.url(), f"ALTER ROLE {role} PASSWORD '{PASSWORD}'")
            await assert_all_work(ops)
        finally:
            await svc.close()
    finally:
        await admin(private_pg.url(), f"DROP DATABASE IF EXISTS {database} WITH (FORCE)", f"DROP ROLE {role}")


async def test_mariadb_a_wrong_password_is_a_typed_error_that_does_not_show_it(private_mariadb: PrivateMariaDB) -> None:
    user = f"app_{uuid.uuid4().hex[:6]}"
    url = await new_database(private_mariadb)
    database = url.rsplit("/", 1)[1]
    await admin(
        private_mariadb.url(),
        f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'",
        f"GRANT ALL ON {database}.* TO '{user}'@'127.0.0.1'",
    )
    try:
        svc = await open_started(private_mariadb.url(user, PASSWORD, database), poolclass=NullPool)
        try:
            session = await svc.create_session(ss.Key("app", "u1", "s1"))
            ops = every_operation(svc, session)
            await assert_all_work(ops)  # the right password

            await admin(private_mariadb.url(), f"ALTER USER '{user}'@'127.0.0.1' IDENTIFIED BY 'something else'")
            await assert_all_fail_typed(ops, "Access denied", password=PASSWORD)

            await admin(private_mariadb.url(), f"ALTER USER '{user}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'")
            await assert_all_work(ops)
        finally:
            await svc.close()
    finally:
        await admin(private_mariadb.url(), f"DROP USER '{user}'@'127.0.0.1'", f"DROP DATABASE {database}")
