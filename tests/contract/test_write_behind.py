"""Write-behind persistence (async_persist=True) on every backend: queued appends, per-session
order under concurrency, flush() durability seen from a second service (another engine),
read-your-writes, ordering against synchronous writes, and failures surfaced by flush()/close().
The database going away mid-run is in tests/test_write_behind_faults.py."""

from __future__ import annotations

import asyncio

import pytest

import sessionstore as ss

from .helpers import event, key, must_get, new_session, seqs

WB = {"async_persist": True, "persist_workers": 4}


async def durable_reader(make_service, backend, svc):
    """A second service on the same storage (another engine), or the writer itself for memory."""
    return await make_service() if backend.shared_storage else svc


async def test_append_returns_queued_and_flush_makes_it_durable(make_service, backend):
    svc = await make_service(**WB)
    s = await new_session(svc, "s1")
    returned = [await svc.append_event(s, event(content=i, state_delta={"n": i})) for i in range(5)]
    assert [e.content for e in s.events] == [0, 1, 2, 3, 4]  # the caller's Session has them at once
    assert s.state["n"] == 4 and s.version == 5
    await svc.flush()
    assert svc.persist_queue_depth == 0 and svc.persist_errors == 0
    assert [e.seq for e in returned] == [1, 2, 3, 4, 5]  # filled in once stored
    assert seqs(s) == [1, 2, 3, 4, 5] and s.version == 5
    reader = await durable_reader(make_service, backend, svc)
    got = await must_get(reader, key("s1"))
    assert [e.content for e in got.events] == [0, 1, 2, 3, 4] and seqs(got) == [1, 2, 3, 4, 5]
    assert got.state["n"] == 4 and got.version == 5


async def test_per_session_order_holds_under_50_concurrent_sessions(make_service, backend):
    svc = await make_service(async_persist=True, persist_workers=3)
    sessions = [await new_session(svc, f"c{i}") for i in range(50)]

    async def writer(s: ss.Session) -> None:
        for n in range(8):
            await svc.append_event(s, event(content=n, state_delta={"last": n}))
            if n % 3 == 0:
                await asyncio.sleep(0)  # interleave the sessions

    await asyncio.gather(*(writer(s) for s in sessions))
    await svc.flush()
    reader = await durable_reader(make_service, backend, svc)
    for i in range(50):
        got = await must_get(reader, key(f"c{i}"))
        assert [e.content for e in got.events] == list(range(8)), f"session c{i}"
        assert seqs(got) == list(range(1, 9)) and got.state["last"] == 7


async def test_reads_see_queued_events_and_their_state(make_service):
    svc = await make_service(**WB)
    s = await new_session(svc, "s1")
    await svc.append_event(s, event(id="e0", state_delta={"a": 1, "app:shared": "x", "temp:t": 1}))
    await svc.append_event(s, event(id="e1", state_delta={"a": 2}))
    await svc.append_event(s, event(id="e2"))
    got = await must_get(svc, key("s1"))  # before any flush
    assert [e.id for e in got.events] == ["e0", "e1", "e2"]
    assert got.state["a"] == 2 and got.state["app:shared"] == "x" and "temp:t" not in got.state
    assert got.version == 3
    newest = await must_get(svc, key("s1"), event_num=2)
    assert [e.id for e in newest.events] == ["e1", "e2"]
    await svc.flush()
    after = await must_get(svc, key("s1"))
    assert [e.id for e in after.events] == ["e0", "e1", "e2"] and seqs(after) == [1, 2, 3]
    assert after.state == got.state and after.version == 3


async def test_synchronous_writes_wait_for_the_sessions_queued_events(make_service):
    svc = await make_service(**WB)
    s = await new_session(svc, "s1")
    await svc.append_event(s, event(state_delta={"x": 1, "user:u": 1}))
    await svc.update_session_state(key("s1"), {"x": 2})  # lands after the queued event
    await svc.update_user_state(ss.UserKey("agent-app", "u1"), {"u": 2})
    stored = await svc.append_event(s, event(id="checked"), expected_version=s.version + 1)
    assert stored.seq == 2  # a version-checked append is synchronous, after the queue
    got = await must_get(svc, key("s1"))
    assert got.state["x"] == 2 and got.state["user:u"] == 2 and got.version == 3
    with pytest.raises(ss.ConflictError):
        await svc.append_event(s, event(), expected_version=0)


async def test_close_drains_the_queue(make_service, backend):
    svc = await make_service(**WB)
    s = await new_session(svc, "s1")
    for i in range(20):
        await svc.append_event(s, event(content=i))
    await svc.close()
    reader = await durable_reader(make_service, backend, svc)
    got = await must_get(reader, key("s1"))
    assert [e.content for e in got.events] == list(range(20))


async def test_a_failed_queued_write_is_counted_and_raised_by_flush(make_service):
    svc = await make_service(**WB)
    ghost = ss.Session(id="never-created", app_name="agent-app", user_id="u1")
    returned = await svc.append_event(ghost, event(id="lost"))  # queued: the failure comes later
    await svc.append_event(ghost, event(id="after"))
    assert returned.seq is None
    with pytest.raises(ss.PersistError) as raised:
        await svc.flush()
    err = raised.value
    assert isinstance(err.__cause__, ss.SessionNotFoundError)
    # the event queued behind the failed one is not stored after the gap: it fails too
    assert [event_id for _, event_id, _ in err.failures] == ["lost", "after"]
    assert err.count == svc.persist_errors == 2
    await svc.flush()  # reported once, then cleared; the count stays
    assert svc.persist_errors == 2


async def test_appending_to_a_session_whose_queued_write_failed_raises_until_flushed(make_service):
    svc = await make_service(**WB)
    ghost = ss.Session(id="never-created", app_name="agent-app", user_id="u1")
    await svc.append_event(ghost, event())
    for _ in range(100):
        if svc.persist_errors:
            break
        await asyncio.sleep(0.01)
    with pytest.raises(ss.PersistError):
        await svc.append_event(ghost, event())
    with pytest.raises(ss.PersistError):
        await svc.flush()
    s = await new_session(svc, "s1")  # other sessions were never affected
    await svc.append_event(s, event())
    await svc.flush()


async def test_close_raises_what_flush_did_not_report(make_service):
    svc = await make_service(**WB)
    ghost = ss.Session(id="never-created", app_name="agent-app", user_id="u1")
    await svc.append_event(ghost, event())
    with pytest.raises(ss.PersistError):
        await svc.close()
    await svc.close()  # reported once


async def test_partial_events_are_not_queued(make_service):
    svc = await make_service(**WB)
    s = await new_session(svc, "s1")
    await svc.append_event(s, event(partial=True))
    assert svc.persist_queue_depth == 0 and s.events == []


async def test_the_default_worker_count_suits_the_database(make_service, backend):
    """persist_workers=None: 4 workers, but 1 on SQLite, whose writers only take turns."""
    svc = await make_service(async_persist=True)
    assert svc.options.persist_workers == (1 if backend.name == "sqlite" else None)
    s = await new_session(svc, "s1")
    await svc.append_event(s, event(content=1))
    await svc.flush()
    assert seqs(await must_get(svc, s.key)) == [1]
    chosen = await make_service(async_persist=True, persist_workers=2)  # a chosen count is kept
    assert chosen.options.persist_workers == 2


@pytest.mark.parametrize("bad", [0, -1, True, "2"])
async def test_bad_write_behind_options_are_rejected(bad):
    with pytest.raises(ss.ConfigurationError):
        ss.ServiceOptions(async_persist=True, persist_workers=bad)
    with pytest.raises(ss.ConfigurationError):
        ss.ServiceOptions(persist_queue_size=bad)


async def test_reads_while_workers_commit_never_show_an_event_twice_or_miss_one(make_service):
    svc = await make_service(**WB)
    s = await new_session(svc, "s1")
    seen: list[list[int]] = []

    async def reader() -> None:
        for _ in range(30):
            got = await must_get(svc, key("s1"))
            seen.append([e.content for e in got.events])
            assert got.state.get("n", -1) == (got.events[-1].content if got.events else -1)
            await asyncio.sleep(0)

    async def writer() -> None:
        for i in range(40):
            await svc.append_event(s, event(content=i, state_delta={"n": i}))
            if i % 4 == 0:
                await asyncio.sleep(0)

    await asyncio.gather(writer(), reader())
    for contents in seen:
        assert contents == list(range(len(contents)))  # a prefix of the appends, in order, no repeats
    await svc.flush()
    assert seqs(await must_get(svc, key("s1"))) == list(range(1, 41))


async def test_a_full_queue_makes_appends_wait_not_drop(make_service):
    svc = await make_service(async_persist=True, persist_workers=1, persist_queue_size=2)
    s = await new_session(svc, "s1")
    for i in range(12):
        await svc.append_event(s, event(content=i))
        assert svc.persist_queue_depth <= 3  # two queued and at most one being written
    await svc.flush()
    assert [e.content for e in (await must_get(svc, key("s1"))).events] == list(range(12))


async def test_flush_does_not_wait_for_events_queued_after_it_began(make_service):
    svc = await make_service(**WB)
    s = await new_session(svc, "s1")
    first = await svc.append_event(s, event(content="before"))
    stop = asyncio.Event()

    async def stream() -> None:
        while not stop.is_set():
            await svc.append_event(s, event(content="during"))
            await asyncio.sleep(0)

    streaming = asyncio.create_task(stream())
    await asyncio.sleep(0)
    await asyncio.wait_for(svc.flush(), timeout=30)
    assert first.seq == 1
    stop.set()
    await streaming
    await svc.flush()


async def test_order_holds_when_appenders_wait_for_room_in_a_full_queue(make_service, backend):
    svc = await make_service(async_persist=True, persist_workers=2, persist_queue_size=1)
    sessions = [await new_session(svc, f"q{i}") for i in range(10)]

    async def writer(s: ss.Session) -> None:
        for n in range(10):
            await svc.append_event(s, event(content=n))

    await asyncio.gather(*(writer(s) for s in sessions))
    await svc.flush()
    reader = await durable_reader(make_service, backend, svc)
    for i in range(10):
        got = await must_get(reader, key(f"q{i}"))
        assert [e.content for e in got.events] == list(range(10)), f"session q{i}"


async def test_batches_and_history_calls_come_after_the_queued_events(make_service):
    svc = await make_service(**WB)
    s = await new_session(svc, "s1")
    await svc.append_event(s, event(content="queued"))
    page = await svc.list_events(key("s1"))  # waits for the session's queued events
    assert [e.content for e in page.events] == ["queued"]
    stored = await svc.append_events(s, [event(content="b1"), event(content="b2")])
    assert [e.seq for e in stored] == [2, 3]
    await svc.append_event(s, event(content="queued again"))
    assert await svc.trim_session_events(key("s1"), 1) == 3
    got = await must_get(svc, key("s1"))
    assert [e.content for e in got.events] == ["queued again"] and seqs(got) == [4]
