"""Concurrency through one service (asyncio.gather): no lost event, no lost state key,
one total order of seq numbers; exactly one winner among racing writers that
use the same expected_version or the same session id; racing retries of one
event id store it once."""

from __future__ import annotations

import asyncio

import pytest

import sessionstore as ss

from .helpers import APP, event, key, must_get, new_session, user_key


async def test_200_concurrent_appends_lose_nothing(make_service):
    svc = await make_service(event_limit=1000)
    s = await new_session(svc, "s1")
    stored = await asyncio.gather(
        *(
            svc.append_event(s, event(content=i, state_delta={f"k{i}": i, f"user:u{i}": i}))
            for i in range(200)
        )
    )
    assert sorted(e.seq for e in stored) == list(range(1, 201))

    got = await must_get(svc, key("s1"))
    assert [e.seq for e in got.events] == list(range(1, 201))
    assert sorted(e.content for e in got.events) == list(range(200))
    by_content = {e.content: e.seq for e in stored}
    assert all(by_content[e.content] == e.seq for e in got.events)  # one total order
    assert got.version == 200
    assert {k: v for k, v in got.state.items() if not k.startswith("user:")} == {f"k{i}": i for i in range(200)}
    assert await svc.list_user_state(user_key()) == {f"u{i}": i for i in range(200)}

    assert len(s.events) == 200 and s.version == 200  # the caller's object saw every commit
    assert [e.seq for e in s.events] == list(range(1, 201))  # in seq order, like every read


async def test_concurrent_appends_to_many_sessions(svc):
    sessions = [await new_session(svc, f"s{i}") for i in range(10)]
    await asyncio.gather(*(svc.append_event(s, event(content=n)) for n in range(10) for s in sessions))
    for s in sessions:
        got = await must_get(svc, s.key)
        assert [e.seq for e in got.events] == list(range(1, 11))
        assert sorted(e.content for e in got.events) == list(range(10))


async def test_only_one_writer_wins_an_expected_version_race(svc):
    s = await new_session(svc, "s1")
    results = await asyncio.gather(
        *(svc.append_event(s, event(content=i), expected_version=0) for i in range(10)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, ss.Event)]
    losers = [r for r in results if isinstance(r, ss.ConflictError)]
    assert len(winners) == 1 and len(losers) == 9, results
    got = await must_get(svc, key("s1"))
    assert [(e.seq, e.content) for e in got.events] == [(1, winners[0].content)]
    assert got.version == 1


async def test_only_one_create_wins_a_race_for_one_id(svc):
    results = await asyncio.gather(
        *(svc.create_session(key("s1"), state={"n": i}) for i in range(10)),
        return_exceptions=True,
    )
    created = [r for r in results if isinstance(r, ss.Session)]
    refused = [r for r in results if isinstance(r, ss.SessionExistsError)]
    assert len(created) == 1 and len(refused) == 9, results
    assert (await must_get(svc, key("s1"))).state == created[0].state


async def test_racing_retries_of_one_event_store_it_once(svc):
    s = await new_session(svc, "s1")
    results = await asyncio.gather(
        *(svc.append_event(s, event(id="e1", content="once", state_delta={"n": 1})) for _ in range(10)),
        return_exceptions=True,
    )
    assert all(isinstance(r, ss.Event) for r in results), results
    assert {(r.id, r.seq, r.content) for r in results} == {("e1", 1, "once")}
    got = await must_get(svc, key("s1"))
    assert [e.id for e in got.events] == ["e1"] and got.version == 1
    assert [e.id for e in s.events] == ["e1"]


@pytest.mark.parametrize("scope", ["session", "app", "user"])
async def test_concurrent_state_updates_lose_no_key(svc, scope):
    await new_session(svc, "s1")
    writes = {
        "session": lambda i: svc.update_session_state(key("s1"), {f"k{i}": i}),
        "app": lambda i: svc.update_app_state(APP, {f"k{i}": i}),
        "user": lambda i: svc.update_user_state(user_key(), {f"k{i}": i}),
    }
    await asyncio.gather(*(writes[scope](i) for i in range(50)))
    got = await must_get(svc, key("s1"))
    expected = {f"k{i}": i for i in range(50)}
    if scope == "session":
        assert got.state == expected and got.version == 50
    elif scope == "app":
        assert await svc.list_app_state(APP) == expected
    else:
        assert await svc.list_user_state(user_key()) == expected


async def test_a_read_during_appends_is_one_snapshot(make_service, backend):
    """Reads racing appends from another service: each read's events, version and state are
    of one moment (its newest event is the version's, and the state holds that event's delta)."""
    writer = await make_service()
    reader = await make_service() if backend.shared_storage else writer
    s = await new_session(writer, "snap")
    done = asyncio.Event()

    async def append() -> None:
        for n in range(1, 151):
            await writer.append_event(s, event(content=n, state_delta={"n": n, "user:n": n}))
        done.set()

    async def read() -> list[tuple[int | None, int, object, object]]:
        seen = []
        while not done.is_set():
            got = await must_get(reader, key("snap"), event_num=5)
            seen.append((got.events[-1].seq if got.events else None, got.version, got.state.get("n"), got.state.get("user:n")))
            await asyncio.sleep(0)
        return seen

    _, seen = await asyncio.gather(append(), read())
    assert seen or not backend.shared_storage, "no read overlapped the appends"  # (memory never yields mid-append)
    for newest, version, n, user_n in seen:
        assert newest == (version or None) and n == (version or None) and user_n == (version or None), seen
