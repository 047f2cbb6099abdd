"""The service on a 3-node MariaDB Galera cluster: writes through every node at once.

One cluster (tests/galera.py) is started for the whole run: node 1 bootstraps
it, nodes 2 and 3 join. Each test makes its own database (Galera replicates
CREATE DATABASE to every node) and opens one service per node on it.

What is proved here:

- appends from three nodes to the same sessions: every event and state key
  stored once, seq gap-free, although Galera aborts many of the racing commits
  (certification conflicts, error 1213) and the retry loop reruns them;
- the cleanup lock and the migration lock hold across nodes (GET_LOCK does not:
  it is node-local, and a test shows it), so two cleaners on two nodes never
  run a round at the same time and two migrators never migrate at once;
- a node killed mid-run: the services on the other two carry on, and no append
  that was acknowledged (from any node, the killed one included) is lost.
  This test kills node 3, so it runs last.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import text

import sessionstore as ss
from sessionstore.retry import RETRIES
from sessionstore.sql import leases
from sessionstore.sql.engine import make_engine
from sessionstore.sql.migrate import migrate
from tests.conftest import FakeClock
from tests.galera import GaleraCluster
from tests.private_servers import started

pytestmark = pytest.mark.slow

APP = "galera-app"


@pytest.fixture(scope="session")
async def galera() -> AsyncIterator[GaleraCluster]:
    async with started(GaleraCluster.create, "sessionstore-galera-") as cluster:
        yield cluster


@pytest.fixture
async def database(galera: GaleraCluster) -> AsyncIterator[list[str]]:
    """A new database on the cluster: its URL through each node (created through node 1)."""
    name = f"ss_galera_{secrets.token_hex(4)}"
    admin = make_engine(galera.nodes[0].url())
    async with admin.connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {name}"))
    await admin.dispose()
    for node in galera.nodes:  # DDL runs on every node in one order, but node 1 answers first
        await _visible(node.url(), f"SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '{name}'")
    try:
        yield [node.url(database=name) for node in galera.nodes]
    finally:
        live = next((n for n in galera.nodes if n.proc is not None and n.proc.returncode is None), None)
        if live is not None:
            admin = make_engine(live.url())
            async with admin.connect() as conn:
                await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            await admin.dispose()


async def _visible(url: str, query: str) -> None:
    """Wait until `query` counts a row on this node (its replication queue applied that far)."""
    engine = make_engine(url)
    try:
        for _ in range(200):
            async with engine.connect() as conn:
                if await conn.scalar(text(query)):
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"not replicated to {url} within 10 s: {query}")
    finally:
        await engine.dispose()


async def _migrated(database: list[str]) -> None:
    """Migrate through node 1, then wait until every node has applied the version row: DDL runs
    on all nodes in step, but the row is ordinary data, applied on the others a moment later."""
    await migrate(database[0])
    for url in database:
        await _visible(url, "SELECT COUNT(*) FROM ss_alembic_version")


async def _session_on(svc: ss.SessionService, sid: str) -> ss.Session:
    """The session as this node sees it, once the node has applied its creation: a read on
    another node than the writer's can lag (unless wsrep_sync_wait is set; docs/scaling.md)."""
    for _ in range(200):
        got = await svc.get_session(ss.Key(APP, "u", sid), event_num=0)
        if got is not None:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"session {sid} not replicated within 10 s")


async def _caught_up(svc: ss.SessionService, sid: str, done: Callable[[ss.Session], bool]) -> ss.Session:
    """The session read through `svc` once `done(session)` (its node has applied that far), or
    as it stands after 10 s for the caller's asserts to show."""
    for _ in range(200):
        got = await svc.get_session(ss.Key(APP, "u", sid))
        assert got is not None
        if done(got):
            return got
        await asyncio.sleep(0.05)
    return got


async def test_appends_through_three_nodes_lose_nothing(database: list[str]) -> None:
    await _migrated(database)  # one migrator (two at once: test_two_migrators_on_two_nodes)
    services = [ss.open_service(url, cleanup_interval=None, pool_size=8) for url in database]
    sessions, per_writer = 3, 30
    before = RETRIES.snapshot()["retried"]
    try:
        for svc in services:
            await svc.start()
        ids = [(await services[0].create_session(ss.Key(APP, "u", f"s{i}"))).id for i in range(sessions)]

        async def writer(n: int, svc: ss.SessionService, sid: str) -> None:
            session = await _session_on(svc, sid)
            for i in range(per_writer):
                await svc.append_event(
                    session, ss.Event(author="a", content=f"{n}-{i}", state_delta={f"n{n}-{i}": i, f"user:n{n}": i})
                )
                await asyncio.sleep(random.uniform(0, 0.01))  # writers still overlap: a commit takes longer

        await asyncio.gather(*(writer(n, svc, sid) for n, svc in enumerate(services) for sid in ids))
        retried = RETRIES.snapshot()["retried"] - before
        assert retried > 0  # Galera aborted racing commits (certification), and they were rerun

        for svc in services:  # every node answers the same
            for sid in ids:
                total = len(services) * per_writer
                got = await _caught_up(svc, sid, lambda s, total=total: s.version >= total)
                assert [e.seq for e in got.events] == list(range(1, total + 1))  # gap-free, no duplicate
                assert sorted(str(e.content) for e in got.events) == sorted(
                    f"{n}-{i}" for n in range(len(services)) for i in range(per_writer)
                )
                assert {k for k in got.state if not k.startswith("user:")} == {
                    f"n{n}-{i}" for n in range(len(services)) for i in range(per_writer)
                }
                assert got.version == total
        print(f"galera: {retried} retried commits for {len(services) * sessions * per_writer} appends")
    finally:
        for svc in services:
            await svc.close()


async def test_wsrep_sync_wait_gives_cross_node_read_after_write(database: list[str]) -> None:
    """docs/scaling.md's advice: with wsrep_sync_wait=1 a read on node 2 sees what node 1 just committed."""
    await _migrated(database)
    sync = {"connect_args": {"init_command": "SET SESSION wsrep_sync_wait=1"}}
    writer = ss.open_service(database[0], cleanup_interval=None)
    reader = ss.open_service(database[1], cleanup_interval=None, **sync)
    try:
        for i in range(20):
            s = await writer.create_session(ss.Key(APP, "u", f"w{i}"))
            await writer.append_event(s, ss.Event(author="a", content=i))
            got = await reader.get_session(ss.Key(APP, "u", f"w{i}"))  # at once, no polling
            assert got is not None and [e.content for e in got.events] == [i]
    finally:
        await writer.close()
        await reader.close()


async def test_get_lock_is_node_local_but_leases_are_cluster_wide(database: list[str]) -> None:
    """Why the lease exists: GET_LOCK taken on two nodes succeeds on both."""
    engines = [make_engine(url) for url in database[:2]]
    try:
        conns = [await engine.connect() for engine in engines]
        got = [await c.scalar(text("SELECT GET_LOCK('sessionstore-probe', 0)")) for c in conns]
        assert got == [1, 1]  # both "hold" it: useless as a cluster-wide lock
        for round_ in range(15):
            name = f"probe-{round_}"
            taken = await asyncio.gather(*(leases.try_take(c, name) for c in conns))
            assert sorted(taken) == [False, True], taken
            holder = conns[taken.index(True)]
            assert await leases.renew(holder, name)
            await leases.release(holder, name)
        for c in conns:
            await c.close()
    finally:
        for engine in engines:
            await engine.dispose()


async def test_cleanup_on_two_nodes_at_once_runs_once(database: list[str]) -> None:
    await _migrated(database)
    clock = FakeClock()
    options = {"cleanup_interval": None, "session_ttl": timedelta(hours=1), "clock": clock, "soft_delete": False}
    services = [ss.open_service(url, cleanup_batch_size=20, **options) for url in database[:2]]
    try:
        for round_ in range(3):
            for i in range(60):
                await services[i % 2].create_session(ss.Key(APP, "u", f"r{round_}-{i}"))
            clock.advance(hours=2)
            results = await asyncio.gather(*(svc.cleanup() for svc in services))
            ran = [r for r in results if not r.skipped]
            # One ran and removed all 60; the other found the lease taken (or, if it came
            # after the first finished, found nothing left): never both removing rows.
            assert sum(r.sessions_expired for r in ran) == 60, results
            assert sum(1 for r in ran if r.sessions_expired) == 1, results
            assert (await services[0].list_sessions(ss.UserKey(APP, "u"))).sessions == []
    finally:
        for svc in services:
            await svc.close()


async def test_two_migrators_on_two_nodes(database: list[str]) -> None:
    """Two processes migrating at once through two nodes: the lease serialises them."""
    await asyncio.gather(migrate(database[0]), migrate(database[1]))
    for url in database:
        await _visible(url, "SELECT COUNT(*) FROM ss_alembic_version")
    async with ss.open_service(database[2], cleanup_interval=None) as svc:  # the schema works from node 3
        s = await svc.create_session(ss.Key(APP, "u", "m"))
        await svc.append_event(s, ss.Event(author="a"))


async def test_node_killed_mid_run_loses_nothing_acknowledged(galera: GaleraCluster, database: list[str]) -> None:
    """Runs last: it leaves node 3 dead."""
    await _migrated(database)
    services = [ss.open_service(url, cleanup_interval=None, pool_size=4, event_limit=100_000) for url in database]
    acknowledged: dict[str, set[str]] = {}
    failures: list[BaseException] = []
    stop = asyncio.Event()
    try:
        for svc in services:
            await svc.start()
        sids = [f"k{i}" for i in range(2)]
        for sid in sids:
            await services[0].create_session(ss.Key(APP, "u", sid))
            acknowledged[sid] = set()

        async def writer(n: int, svc: ss.SessionService, sid: str) -> int:
            session = await _session_on(svc, sid)
            done = 0
            while not stop.is_set():
                event = ss.Event(author="a", content=n)
                try:
                    await svc.append_event(session, event)
                except ss.DatabaseError as exc:
                    if n != 2:  # only the killed node's service may fail
                        failures.append(exc)
                    if n == 2:
                        return done
                    await asyncio.sleep(0.05)
                    continue
                acknowledged[sid].add(event.id)
                done += 1
                await asyncio.sleep(random.uniform(0, 0.02))  # an agent's think time, short
            return done

        tasks = [asyncio.create_task(writer(n, svc, sid)) for n, svc in enumerate(services) for sid in sids]
        await asyncio.sleep(1.5)
        before_kill = {sid: len(ids) for sid, ids in acknowledged.items()}
        await galera.kill(galera.nodes[2])
        await asyncio.sleep(12)  # the survivors notice (evs.suspect_timeout 3 s) and carry on
        after_kill_marks = {sid: len(ids) for sid, ids in acknowledged.items()}
        await asyncio.sleep(3)
        stop.set()
        done = await asyncio.gather(*tasks)

        assert not failures, failures[:3]
        assert all(after := [len(acknowledged[sid]) > after_kill_marks[sid] for sid in sids]), after  # still writing
        assert all(before_kill[sid] > 0 for sid in sids)
        for sid in sids:
            want = acknowledged[sid]
            got = await _caught_up(services[1], sid, lambda s, want=want: want <= {e.id for e in s.events})
            stored = {e.id for e in got.events}
            assert acknowledged[sid] <= stored  # nothing acknowledged lost
            assert [e.seq for e in got.events] == list(range(1, len(got.events) + 1))
        print(f"galera kill: appends per writer {done}")
    finally:
        stop.set()
        for svc in services:
            try:
                await asyncio.wait_for(svc.close(), 10)
            except Exception:  # noqa: BLE001, S110 - the dead node's pool may not close cleanly
                pass
