"""append_events (atomic batch), delete_event, list_events (paging both ways),
clear_session_events and trim_session_events, on every backend; bad input
next to good input, and a rejected call changes nothing."""

from __future__ import annotations

import asyncio

import pytest

import sessionstore as ss

from .helpers import at, event, key, must_get, new_session, snapshot


def texts(events: list[ss.Event]) -> list[str]:
    return [e.content for e in events]


async def _history(svc: ss.SessionService, n: int, sid: str = "h") -> ss.Session:
    s = await new_session(svc, sid)
    await svc.append_events(s, [event(content=f"m{i}", timestamp=at(i)) for i in range(1, n + 1)])
    return s


# --------------------------------------------------------------------------- append_events


async def test_batch_is_stored_in_order_with_consecutive_seqs_and_one_version_step(svc):
    s = await new_session(svc, "b")
    await svc.append_event(s, event(content="first"))
    batch = [
        event(content="a", state_delta={"n": 1, "app:shared": "x", "temp:t": 1}),
        event(content="b", state_delta={"n": 2, "user:u": True}),
        event(content="c", state_delta={"n": ss.DELETE, "m": [1]}),
    ]
    stored = await svc.append_events(s, batch)
    assert [e.seq for e in stored] == [2, 3, 4]
    assert [e.id for e in stored] == [e.id for e in batch]
    assert "temp:t" not in stored[0].state_delta
    got = await must_get(svc, key("b"))
    assert texts(got.events) == ["first", "a", "b", "c"]
    assert got.version == 2  # one append, one batch
    assert got.state == {"m": [1], "app:shared": "x", "user:u": True}
    # The caller's object is up to date, temp: keys included, as with append_event.
    assert texts(s.events) == ["first", "a", "b", "c"] and s.version == 2
    assert s.state["temp:t"] == 1 and s.state["m"] == [1] and "n" not in s.state


async def test_batch_deltas_apply_in_order(svc):
    s = await new_session(svc, "order", state={"k": "start"})
    await svc.append_events(s, [event(state_delta={"k": 1}), event(state_delta={"k": ss.DELETE}), event(state_delta={"k": 3})])
    assert (await must_get(svc, key("order"))).state == {"k": 3}
    await svc.append_events(s, [event(state_delta={"k": 4}), event(state_delta={"k": ss.DELETE})])
    assert (await must_get(svc, key("order"))).state == {}


async def test_retried_batch_is_stored_once_and_never_conflicts(svc):
    s = await new_session(svc, "retry")
    batch = [event(content="x"), event(content="y")]
    first = await svc.append_events(s, batch, expected_version=0)
    again = await svc.append_events(s, batch, expected_version=0)  # the reply was "lost"
    assert [(e.id, e.seq) for e in again] == [(e.id, e.seq) for e in first]
    got = await must_get(svc, key("retry"))
    assert texts(got.events) == ["x", "y"] and got.version == 1
    # A batch that overlaps the stored events stores only the new ones.
    mixed = await svc.append_events(s, [batch[1], event(content="z")])
    assert [e.seq for e in mixed] == [2, 3]
    assert texts((await must_get(svc, key("retry"))).events) == ["x", "y", "z"]


async def test_batch_with_a_stale_expected_version_stores_nothing(svc):
    s = await new_session(svc, "stale")
    await svc.append_event(s, event())
    before = await snapshot(svc, key("stale"))
    with pytest.raises(ss.ConflictError) as info:
        await svc.append_events(s, [event(), event(state_delta={"k": 1})], expected_version=0)
    assert (info.value.expected, info.value.actual) == (0, 1)
    assert await snapshot(svc, key("stale")) == before


async def test_partial_events_in_a_batch_are_skipped(svc):
    s = await new_session(svc, "partial")
    out = await svc.append_events(s, [event(content="p", partial=True), event(content="full")])
    assert [e.seq for e in out] == [None, 1]
    assert texts((await must_get(svc, key("partial"))).events) == ["full"]
    assert [e.seq for e in await svc.append_events(s, [event(partial=True)])] == [None]
    assert await svc.append_events(s, []) == []
    assert (await must_get(svc, key("partial"))).version == 1


async def test_one_bad_event_rejects_the_whole_batch_before_anything_is_written(svc):
    s = await new_session(svc, "bad")
    before = await snapshot(svc, key("bad"))
    for bad in (
        [event(), event(content={1, 2})],  # not JSON
        [event(), "not an event"],
        [event(id="same"), event(id="same")],  # twice in one batch
    ):
        with pytest.raises(ss.InvalidEventError):
            await svc.append_events(s, bad)
    with pytest.raises(ss.EventTooLargeError):
        await svc.append_events(s, [event(), event(content="x" * (svc.options.max_event_bytes + 1))])
    with pytest.raises(ss.InvalidArgumentError):
        await svc.append_events(s, event())  # type: ignore[arg-type]
    with pytest.raises(ss.InvalidArgumentError):
        await svc.append_events(s, [event()], expected_version=-1)
    with pytest.raises(ss.InvalidKeyError):
        await svc.append_events(key("bad"), [event()])  # type: ignore[arg-type]
    assert await snapshot(svc, key("bad")) == before


async def test_batch_on_a_missing_session_raises_not_found(svc):
    with pytest.raises(ss.SessionNotFoundError):
        await svc.append_events(ss.Session(id="ghost", app_name="agent-app", user_id="u1"), [event()])


async def test_batch_larger_than_the_event_limit_keeps_the_newest_on_read(make_service):
    svc = await make_service(event_limit=3)
    s = await new_session(svc, "lim")
    await svc.append_events(s, [event(content=f"m{i}") for i in range(5)])
    got = await must_get(svc, key("lim"))
    assert texts(got.events) == ["m2", "m3", "m4"]


# --------------------------------------------------------------------------- list_events


async def test_list_events_pages_forward_through_the_whole_history(svc):
    await _history(svc, 7)
    seen, cursor, pages = [], 0, 0
    while cursor is not None:
        page = await svc.list_events(key("h"), after_seq=cursor, limit=3)
        assert [e.seq for e in page.events] == sorted(e.seq for e in page.events)
        seen += texts(page.events)
        cursor, pages = page.next_cursor, pages + 1
    assert seen == [f"m{i}" for i in range(1, 8)] and pages == 3


async def test_list_events_pages_back_from_the_newest(svc):
    await _history(svc, 7)
    page = await svc.list_events(key("h"), limit=3)
    assert texts(page.events) == ["m5", "m6", "m7"] and page.next_cursor == 5
    page = await svc.list_events(key("h"), before_seq=page.next_cursor, limit=3)
    assert texts(page.events) == ["m2", "m3", "m4"] and page.next_cursor == 2
    page = await svc.list_events(key("h"), before_seq=page.next_cursor, limit=3)
    assert texts(page.events) == ["m1"] and page.next_cursor is None


async def test_list_events_between_two_seqs_and_exact_ends(svc):
    await _history(svc, 6)
    page = await svc.list_events(key("h"), after_seq=1, before_seq=5, limit=2)
    assert texts(page.events) == ["m2", "m3"] and page.next_cursor == 3
    page = await svc.list_events(key("h"), after_seq=3, before_seq=5, limit=2)
    assert texts(page.events) == ["m4"] and page.next_cursor is None
    full = await svc.list_events(key("h"), after_seq=0, limit=6)
    assert len(full.events) == 6 and full.next_cursor is None
    assert (await svc.list_events(key("h"), after_seq=6)).events == []
    got = full.events[0]
    assert got.author == "user" and got.timestamp == at(1) and got.seq == 1


async def test_list_events_checks_its_arguments(svc):
    await _history(svc, 1)
    for bad in ({"after_seq": -1}, {"before_seq": "3"}, {"limit": 0}, {"limit": 1001}, {"after_seq": True}):
        with pytest.raises(ss.InvalidArgumentError):
            await svc.list_events(key("h"), **bad)
    with pytest.raises(ss.SessionNotFoundError):
        await svc.list_events(key("nope"))
    with pytest.raises(ss.InvalidKeyError):
        await svc.list_events(key(""))


# --------------------------------------------------------------------------- delete, clear, trim


async def test_delete_event_removes_one_event_and_keeps_the_rest(svc):
    s = await _history(svc, 3)
    version, state = s.version, (await must_get(svc, key("h"))).state
    middle = (await must_get(svc, key("h"))).events[1]
    assert await svc.delete_event(key("h"), middle.id) is True
    assert await svc.delete_event(key("h"), middle.id) is False
    assert await svc.delete_event(key("nope"), middle.id) is False
    got = await must_get(svc, key("h"))
    assert texts(got.events) == ["m1", "m3"] and got.version == version and got.state == state
    # seqs are never reused; the id may be stored again.
    again = await svc.append_event(got, ss.Event(author="user", id=middle.id, content="back"))
    assert again.seq == 4
    with pytest.raises(ss.InvalidArgumentError):
        await svc.delete_event(key("h"), "")


async def test_clear_keeps_the_session_and_its_state(svc):
    s = await new_session(svc, "c", state={"k": 1})
    await svc.append_events(s, [event(state_delta={"j": 2}), event()])
    assert await svc.clear_session_events(key("c")) == 2
    got = await must_get(svc, key("c"))
    assert got.events == [] and got.state == {"k": 1, "j": 2} and got.version == 1
    assert await svc.clear_session_events(key("c")) == 0
    stored = await svc.append_event(got, event(content="after"))
    assert stored.seq == 3
    with pytest.raises(ss.SessionNotFoundError):
        await svc.clear_session_events(key("nope"))


async def test_trim_keeps_the_newest(svc):
    await _history(svc, 5)
    assert await svc.trim_session_events(key("h"), 2) == 3
    assert texts((await must_get(svc, key("h"))).events) == ["m4", "m5"]
    assert await svc.trim_session_events(key("h"), 10) == 0
    assert await svc.trim_session_events(key("h"), 0) == 2
    with pytest.raises(ss.InvalidArgumentError):
        await svc.trim_session_events(key("h"), -1)
    with pytest.raises(ss.SessionNotFoundError):
        await svc.trim_session_events(key("nope"), 1)


async def test_concurrent_batches_each_land_whole_and_in_one_order(svc):
    await new_session(svc, "cc")
    batches = [[event(content=f"{n}-{i}") for i in range(3)] for n in range(6)]
    copies = [await must_get(svc, key("cc")) for _ in batches]
    twice = [event(content="dup-a"), event(content="dup-b")]
    results = await asyncio.gather(
        *(svc.append_events(copy, batch) for copy, batch in zip(copies, batches, strict=True)),
        svc.append_events(await must_get(svc, key("cc")), twice),
        svc.append_events(await must_get(svc, key("cc")), twice),  # the same batch sent twice at once
    )
    for stored in results:
        assert [e.seq for e in stored] == list(range(stored[0].seq, stored[0].seq + len(stored)))
    got = await must_get(svc, key("cc"))
    assert [e.seq for e in got.events] == list(range(1, 21))
    assert sorted(texts(got.events)) == sorted([f"{n}-{i}" for n in range(6) for i in range(3)] + ["dup-a", "dup-b"])
    assert got.version == 7


async def test_a_large_batch_spans_several_insert_statements(svc):
    s = await new_session(svc, "big")
    batch = [event(content=f"m{i}", state_delta={f"k{i % 7}": i}) for i in range(250)]
    stored = await svc.append_events(s, batch)
    assert [e.seq for e in stored] == list(range(1, 251))
    seen, cursor = [], 0
    while cursor is not None:
        page = await svc.list_events(key("big"), after_seq=cursor, limit=100)
        seen += texts(page.events)
        cursor = page.next_cursor
    assert seen == [f"m{i}" for i in range(250)]
    assert (await must_get(svc, key("big"))).state == {f"k{j}": max(i for i in range(250) if i % 7 == j) for j in range(7)}
