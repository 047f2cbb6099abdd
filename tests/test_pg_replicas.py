"""Reads from a PostgreSQL streaming replica (read_url): served there, read-your-writes, the staleness bound.

A private primary (initdb in a temporary directory, never the shared server)
and a streaming replica made from it with ``pg_basebackup -R`` into another
temporary directory, on another port, are started once for the module. To
make the replica's lag certain rather than a matter of timing, the tests
pause its WAL replay (``pg_wal_replay_pause()``): then it is stale for as
long as they wish.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

import sessionstore as ss
from sessionstore.sql.engine import make_engine
from sessionstore.sql.migrate import migrate
from sessionstore.sql.replicas import PROBE_INTERVAL_S
from sessionstore.sql.service import SQLSessionService
from tests.pg_replica import primary_and_replica
from tests.private_servers import PrivatePostgres, free_port

pytestmark = pytest.mark.slow

APP = "replica-app"
BOUND_S = 1.0


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[tuple[PrivatePostgres, PrivatePostgres]]:
    root = Path(tempfile.mkdtemp(prefix="sessionstore-pgrep-"))
    primary = replica = None
    try:
        primary, replica = await primary_and_replica(root)
        await migrate(primary.url())
        yield primary, replica
    finally:
        for server in (replica, primary):
            if server is not None:
                await server.destroy()
        shutil.rmtree(root, ignore_errors=True)


async def _replay(replica: PrivatePostgres, on: bool) -> None:
    engine = make_engine(replica.url())
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_wal_replay_resume()" if on else "SELECT pg_wal_replay_pause()"))
            await conn.commit()
    finally:
        await engine.dispose()


def _router(svc: ss.SessionService) -> object:
    assert isinstance(svc, SQLSessionService) and svc.router is not None
    return svc.router


async def test_reads_go_to_the_replica_and_writers_read_their_writes(servers) -> None:
    primary, replica = servers
    options = {"read_url": replica.url(), "cleanup_interval": None, "max_replica_staleness": BOUND_S}
    writer = ss.open_service(primary.url(), **options)
    reader = ss.open_service(primary.url(), **options)
    try:
        s = await writer.create_session(ss.Key(APP, "u", "s1"))
        await writer.append_event(s, ss.Event(author="a", content="first"))
        await asyncio.sleep(3 * PROBE_INTERVAL_S)  # replicated; the routers learn it
        for _ in range(20):
            got = await reader.get_session(ss.Key(APP, "u", "s1"))
            assert got is not None and [e.content for e in got.events] == ["first"]
        router = reader.router  # type: ignore[attr-defined]
        assert router.replicas[0].reads >= 19, (router.replicas[0].reads, router.primary_reads)  # served by the replica
        page = await reader.list_sessions(ss.UserKey(APP, "u"))
        assert [p.id for p in page.sessions] == ["s1"]

        await _replay(replica, on=False)  # from here the replica is stale
        try:
            await writer.append_event(s, ss.Event(author="a", content="second"))
            # The writer reads its write at once (the primary serves it: the replica has not replayed it)...
            mine = await writer.get_session(ss.Key(APP, "u", "s1"))
            assert mine is not None and [e.content for e in mine.events] == ["first", "second"]
            # ...so does its listing of that user's sessions...
            assert (await writer.list_sessions(ss.UserKey(APP, "u"))).sessions[0].version == 2
            # ...while another process, within the staleness bound, may be served the replica's older copy:
            theirs = await reader.get_session(ss.Key(APP, "u", "s1"))
            assert theirs is not None and [e.content for e in theirs.events] == ["first"]
            # Past the bound (plus a probe), a replica that has not caught up is not used any more.
            await asyncio.sleep(BOUND_S + 2 * PROBE_INTERVAL_S)
            for _ in range(5):
                later = await reader.get_session(ss.Key(APP, "u", "s1"))
                assert later is not None and [e.content for e in later.events] == ["first", "second"]
        finally:
            await _replay(replica, on=True)
        await asyncio.sleep(3 * PROBE_INTERVAL_S)
        before = router.replicas[0].reads
        await reader.get_session(ss.Key(APP, "u", "s1"))
        assert router.replicas[0].reads == before + 1  # caught up: back on the replica
    finally:
        await writer.close()
        await reader.close()


async def test_a_dead_replica_falls_back_to_the_primary(servers) -> None:
    primary, _ = servers
    async with ss.open_service(
        primary.url(), read_url=f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", cleanup_interval=None
    ) as svc:
        await svc.create_session(ss.Key(APP, "u", "d1"))
        await asyncio.sleep(2 * PROBE_INTERVAL_S)
        assert await svc.get_session(ss.Key(APP, "u", "d1")) is not None


async def test_read_url_is_refused_where_replicas_are_not_supported(tmp_path) -> None:
    with pytest.raises(ss.ConfigurationError, match="PostgreSQL only"):
        ss.open_service(f"sqlite:///{tmp_path / 'x.db'}", read_url=f"sqlite:///{tmp_path / 'y.db'}")
    with pytest.raises(ss.ConfigurationError, match="read_url must be"):
        ss.open_service("postgresql://postgres@127.0.0.1:5432/postgres", read_url=5)
    with pytest.raises(ss.ConfigurationError, match="max_replica_staleness"):
        ss.open_service("postgresql://postgres@127.0.0.1:5432/postgres", read_url="postgresql://x@h/db", max_replica_staleness=0)
