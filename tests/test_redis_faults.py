"""A Redis restart mid-run, on a private redis-server with AOF (appendfsync always), never the shared one.

While a writer appends without pause, the server is killed (SIGKILL: no
shutdown save) and started again on the same port and data directory. The
same service object carries on: calls during the outage raise the typed
DatabaseError (or OutcomeUnknownError) with the URL redacted, the first calls
after the restart succeed (fresh connections, scripts loaded again), and
every append that was acknowledged is there afterwards, in seq order without
gaps, once a retry of each unacknowledged one by its event id has run.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import sessionstore as ss
from tests.redis_servers import PrivateRedis

from .contract.helpers import event, key, new_session

PASSWORD = "pw-not-shown"


async def test_the_service_reconnects_after_a_restart_and_loses_nothing_acknowledged() -> None:
    with tempfile.TemporaryDirectory(prefix="sessionstore-redis-") as tmp:
        server = PrivateRedis(Path(tmp) / "data")
        await server.start()
        svc = ss.open_service(server.url(), key_prefix="restart:", cleanup_interval=None)
        try:
            await _run(svc, server)
        finally:
            await svc.close()
            await server.destroy()


async def _run(svc: ss.SessionService, server: PrivateRedis) -> None:
    s = await new_session(svc, "s1", state={"n": 0})
    acknowledged: list[str] = []
    unsure: list[ss.Event] = []
    errors: list[Exception] = []
    stop = asyncio.Event()

    async def writer() -> None:
        i = 0
        while not stop.is_set():
            e = event(id=f"e{i}", content=i, state_delta={f"k{i}": i})
            i += 1
            try:
                await svc.append_event(s, e)
                acknowledged.append(e.id)
            except ss.DatabaseError as exc:  # the outage: typed, and no password in it
                errors.append(exc)
                unsure.append(e)
                await asyncio.sleep(0.01)

    task = asyncio.ensure_future(writer())
    while len(acknowledged) < 50:
        await asyncio.sleep(0.01)
    await server.kill()
    await asyncio.sleep(1.0)  # long enough for the writer's retries to give up
    await server.start()
    before_restart = len(acknowledged)
    deadline = asyncio.get_running_loop().time() + 30
    while len(acknowledged) < before_restart + 50:
        assert asyncio.get_running_loop().time() < deadline, "the service did not reconnect"
        await asyncio.sleep(0.01)
    stop.set()
    await task

    assert errors, "the outage was not noticed"
    assert all("127.0.0.1" in str(exc) for exc in errors)
    for e in unsure:  # retries by event id: stored at most once
        await svc.append_event(s, e)
    got = await svc.get_session(key("s1"))
    assert got is not None
    ids = [e.id for e in got.events]
    assert set(acknowledged) <= set(ids)  # nothing acknowledged was lost
    assert [e.seq for e in got.events] == list(range(1, len(ids) + 1))  # no gaps, no duplicates
    assert len(ids) == len(set(ids))
    assert got.version == len(ids)
    assert all(got.state[f"k{e.content}"] == e.content for e in got.events)


async def test_errors_name_the_server_without_its_password() -> None:
    with tempfile.TemporaryDirectory(prefix="sessionstore-redis-") as tmp:
        server = PrivateRedis(Path(tmp) / "data")
        await server.start()
        url = server.url().replace("redis://", f"redis://default:{PASSWORD}@")
        svc = ss.open_service(url, cleanup_interval=None)
        try:
            try:
                await svc.get_session(key("s1"))  # the server has no password: AUTH fails
            except ss.DatabaseError as exc:
                assert PASSWORD not in str(exc) and "***" in str(exc)
            await server.kill()
            try:
                await svc.create_session(key("s2"))
                raise AssertionError("a write to a dead server succeeded")
            except ss.DatabaseError as exc:
                assert PASSWORD not in str(exc) and "***" in str(exc)
        finally:
            await svc.close()
            await server.destroy()
