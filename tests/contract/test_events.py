"""Events: seq numbering and order, field round trips, partial events, the caller's
Session object, reads (event_num / after / event_limit), versions, optimistic
concurrency with expected_version, and retry-safe appends by event id."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import sessionstore as ss

from .helpers import (
    APP,
    USER,
    at,
    event,
    event_ids,
    key,
    must_get,
    new_session,
    seqs,
    snapshot,
)

# ---------------------------------------------------------------- seq and order


async def test_seq_is_gap_free_from_one(svc):
    s = await new_session(svc, "s1")
    stored = [await svc.append_event(s, event(content=i)) for i in range(3)]
    assert [e.seq for e in stored] == [1, 2, 3]
    got = await must_get(svc, key("s1"))
    assert seqs(got) == [1, 2, 3]
    assert [e.content for e in got.events] == [0, 1, 2]


async def test_events_read_back_in_seq_order_whatever_their_timestamps(svc):
    s = await new_session(svc, "s1")
    stamps = [at(60), at(0), at(0), at(120), at(-525600)]  # back-dated, equal, a year earlier
    for i, stamp in enumerate(stamps):
        await svc.append_event(s, event(id=f"e{i}", timestamp=stamp))
    got = await must_get(svc, key("s1"))
    assert event_ids(got) == ["e0", "e1", "e2", "e3", "e4"]
    assert seqs(got) == [1, 2, 3, 4, 5]
    assert [e.timestamp for e in got.events] == stamps


async def test_event_fields_round_trip(svc):
    stamp = datetime(2026, 2, 3, 4, 5, 6, 123456, tzinfo=timezone(timedelta(hours=2)))
    sent = ss.Event(
        id="evt-1",
        author="model",
        content={"parts": [{"text": "hi"}], "n": 1.5, "ok": True, "none": None},
        invocation_id="inv-1",
        timestamp=stamp,
        state_delta={"k": "v"},
        branch="root.child",
        metadata={"model": "m", "usage": {"in": 3, "out": 4}},
    )
    s = await new_session(svc, "s1")
    stored = await svc.append_event(s, sent)
    got = (await must_get(svc, key("s1"))).events[0]
    for e in (stored, got):
        assert e.seq == 1
        assert (e.id, e.author, e.invocation_id, e.branch) == ("evt-1", "model", "inv-1", "root.child")
        assert e.content == sent.content
        assert e.metadata == sent.metadata
        assert e.state_delta == {"k": "v"}
        assert e.partial is False
        assert e.timestamp == stamp  # same instant, microseconds kept ...
        assert e.timestamp.utcoffset() == timedelta(0)  # ... read back in UTC


async def test_optional_fields_default(svc):
    s = await new_session(svc, "s1")
    await svc.append_event(s, ss.Event(author="user"))
    e = (await must_get(svc, key("s1"))).events[0]
    assert e.content is None and e.invocation_id is None and e.branch is None
    assert e.metadata == {} and e.state_delta == {}
    assert len(e.id) == 32 and e.timestamp.tzinfo is not None


@pytest.mark.parametrize(
    "content",
    [None, "text", 0, -7, 1.25, True, [], {}, [1, "a", None, {"x": [False]}], "ünï 🙂", (1, 2)],
    ids=repr,
)
async def test_any_json_content_round_trips(svc, content):
    s = await new_session(svc, "s1")
    await svc.append_event(s, event(content=content))
    expected = list(content) if isinstance(content, tuple) else content
    assert (await must_get(svc, key("s1"))).events[0].content == expected


async def test_stored_event_delta_drops_temp_keys_and_keeps_delete(svc):
    s = await new_session(svc, "s1", state={"gone": 1})
    stored = await svc.append_event(
        s, event(state_delta={"k": 1, "temp:t": 2, "gone": ss.DELETE, "app:a": None})
    )
    for e in (stored, (await must_get(svc, key("s1"))).events[0]):
        assert set(e.state_delta) == {"k", "gone", "app:a"}
        assert e.state_delta["k"] == 1 and e.state_delta["app:a"] is None
        assert e.state_delta["gone"] is ss.DELETE


# ---------------------------------------------------------------- partial events


async def test_partial_event_is_neither_stored_nor_applied(svc):
    s = await new_session(svc, "s1")
    before = await snapshot(svc, key("s1"))
    returned = await svc.append_event(
        s, event(partial=True, content="chunk", state_delta={"k": 1, "app:a": 1, "user:u": 1})
    )
    assert returned.seq is None and returned.content == "chunk"
    assert await snapshot(svc, key("s1")) == before
    assert s.events == [] and s.state == {} and s.version == 0

    assert (await svc.append_event(s, event())).seq == 1


# ---------------------------------------------------------------- the caller's Session


async def test_callers_session_is_updated_after_append(svc, clock):
    s = await new_session(svc, "s1")
    clock.advance(minutes=1)
    stored = await svc.append_event(
        s, event(state_delta={"k": 1, "app:a": 2, "user:u": 3, "temp:t": 4})
    )
    assert [(e.id, e.seq) for e in s.events] == [(stored.id, 1)]
    assert s.state == {"k": 1, "app:a": 2, "user:u": 3, "temp:t": 4}
    assert s.version == 1
    assert s.updated_at == clock.now


async def test_returned_and_passed_objects_are_copies(svc):
    s = await new_session(svc, "s1")
    sent = event(content={"list": [1]}, metadata={"m": [1]}, state_delta={"k": [1]})
    stored = await svc.append_event(s, sent)

    sent.content["list"].append(2)
    sent.metadata["m"].append(2)
    sent.state_delta["k"].append(2)
    stored.content["list"].append(3)
    s.events[0].metadata["m"].append(3)
    assert s.state == {"k": [1]}  # the caller's Session holds what was committed

    s.state["k"].append(4)
    got = await must_get(svc, key("s1"))
    assert got.events[0].content == {"list": [1]}
    assert got.events[0].metadata == {"m": [1]}
    assert got.events[0].state_delta == {"k": [1]}
    assert got.state == {"k": [1]}


# ---------------------------------------------------------------- reads


async def _five_events(svc) -> None:
    s = await new_session(svc, "s1")
    for i in range(5):
        await svc.append_event(s, event(id=f"e{i + 1}", timestamp=at(i)))


async def test_event_num_returns_the_newest(svc):
    await _five_events(svc)
    assert seqs(await must_get(svc, key("s1"), event_num=2)) == [4, 5]
    assert seqs(await must_get(svc, key("s1"), event_num=5)) == [1, 2, 3, 4, 5]
    assert seqs(await must_get(svc, key("s1"), event_num=50)) == [1, 2, 3, 4, 5]


async def test_event_num_zero_returns_no_events_but_the_session(svc):
    await _five_events(svc)
    got = await must_get(svc, key("s1"), event_num=0)
    assert got.events == [] and got.version == 5


async def test_after_is_inclusive(svc):
    await _five_events(svc)
    assert seqs(await must_get(svc, key("s1"), after=at(2))) == [3, 4, 5]
    assert seqs(await must_get(svc, key("s1"), after=at(2) + timedelta(microseconds=1))) == [4, 5]
    assert seqs(await must_get(svc, key("s1"), after=at(99))) == []
    # another time zone, same instant
    assert seqs(await must_get(svc, key("s1"), after=at(2).astimezone(timezone(timedelta(hours=-5))))) == [3, 4, 5]


async def test_event_num_and_after_together(svc):
    await _five_events(svc)
    assert seqs(await must_get(svc, key("s1"), after=at(1), event_num=2)) == [4, 5]
    assert seqs(await must_get(svc, key("s1"), after=at(3), event_num=10)) == [4, 5]


async def test_after_filters_by_timestamp_and_newest_means_highest_seq(svc):
    s = await new_session(svc, "s1")
    for minutes in (20, 0, 30, 10):  # seq 1..4, timestamps out of order
        await svc.append_event(s, event(timestamp=at(minutes)))
    assert seqs(await must_get(svc, key("s1"), after=at(15))) == [1, 3]
    assert seqs(await must_get(svc, key("s1"), after=at(15), event_num=1)) == [3]
    assert seqs(await must_get(svc, key("s1"), event_num=1)) == [4]


async def test_reads_never_exceed_event_limit(make_service):
    svc = await make_service(event_limit=5)
    s = await new_session(svc, "s1")
    for i in range(8):
        await svc.append_event(s, event(content=i, timestamp=at(i)))
    assert seqs(await must_get(svc, key("s1"))) == [4, 5, 6, 7, 8]
    assert seqs(await must_get(svc, key("s1"), event_num=100)) == [4, 5, 6, 7, 8]
    assert seqs(await must_get(svc, key("s1"), event_num=3)) == [6, 7, 8]
    assert seqs(await must_get(svc, key("s1"), after=at(-10))) == [4, 5, 6, 7, 8]
    assert (await svc.append_event(s, event())).seq == 9
    assert (await svc.list_sessions(s.key.user_key)).sessions[0].version == 9


# ---------------------------------------------------------------- versions


async def test_version_counts_stored_appends_and_session_state_updates(svc):
    s = await new_session(svc, "s1")
    assert s.version == 0
    await svc.append_event(s, event(id="e1"))
    assert s.version == 1
    await svc.append_event(s, event())
    await svc.update_session_state(key("s1"), {"k": 1})
    assert (await must_get(svc, key("s1"))).version == 3

    await svc.append_event(s, event(partial=True))  # not stored
    await svc.append_event(s, event(id="e1"))  # a retry: not stored again
    await svc.update_app_state(APP, {"a": 1})  # not a session write
    await svc.update_user_state(ss.UserKey(APP, USER), {"u": 1})
    assert (await must_get(svc, key("s1"))).version == 3


async def test_expected_version_at_the_current_version_succeeds(svc):
    s = await new_session(svc, "s1")
    await svc.append_event(s, event(), expected_version=0)
    await svc.append_event(s, event(), expected_version=1)
    await svc.update_session_state(key("s1"), {"k": 1})
    await svc.append_event(s, event(), expected_version=3)
    assert (await must_get(svc, key("s1"))).version == 4


async def test_stale_expected_version_conflicts_and_writes_nothing(svc):
    s = await new_session(svc, "s1")
    other = await must_get(svc, key("s1"))
    await svc.append_event(other, event(content="other"))
    before = await snapshot(svc, key("s1"))

    with pytest.raises(ss.ConflictError) as raised:
        await svc.append_event(s, event(state_delta={"k": 1, "app:a": 1}), expected_version=0)
    assert (raised.value.expected, raised.value.actual) == (0, 1)
    with pytest.raises(ss.ConflictError):
        await svc.append_event(s, event(), expected_version=7)

    assert await snapshot(svc, key("s1")) == before
    assert s.events == [] and s.state == {} and s.version == 0


async def test_state_update_makes_expected_version_stale(svc):
    s = await new_session(svc, "s1")
    await svc.update_session_state(key("s1"), {"k": 1})
    with pytest.raises(ss.ConflictError):
        await svc.append_event(s, event(), expected_version=0)


# ---------------------------------------------------------------- retry-safe appends


async def test_retry_with_a_stored_id_returns_the_stored_event(svc):
    s = await new_session(svc, "s1")
    first = await svc.append_event(s, event(id="e1", content="first", state_delta={"n": 1}))
    again = await svc.append_event(s, event(id="e1", content="second", state_delta={"n": 2}))

    assert (again.id, again.seq, again.content) == ("e1", first.seq, "first")
    got = await must_get(svc, key("s1"))
    assert [(e.id, e.content) for e in got.events] == [("e1", "first")]
    assert got.state == {"n": 1} and got.version == 1
    assert event_ids(s) == ["e1"] and s.version == 1 and s.state == {"n": 1}


async def test_retry_after_a_lost_reply_never_conflicts(svc):
    s = await new_session(svc, "s1")
    stale = await must_get(svc, key("s1"))  # the client's view before its reply got lost
    await svc.append_event(s, event(id="e1", state_delta={"k": 1}))

    retried = await svc.append_event(stale, event(id="e1", state_delta={"k": 1}), expected_version=0)
    assert retried.seq == 1
    assert event_ids(stale) == ["e1"] and stale.state == {"k": 1}  # caught up with what committed
    got = await must_get(svc, key("s1"))
    assert event_ids(got) == ["e1"] and got.version == 1


async def test_retry_never_conflicts_even_after_later_writes(svc):
    s = await new_session(svc, "s1")
    stale = await must_get(svc, key("s1"))
    await svc.append_event(s, event(id="e1"))
    await svc.append_event(s, event(id="e2"))
    retried = await svc.append_event(stale, event(id="e1"), expected_version=0)
    assert retried.seq == 1
    got = await must_get(svc, key("s1"))
    assert event_ids(got) == ["e1", "e2"] and got.version == 2


async def test_event_ids_are_scoped_to_their_session(svc):
    a = await new_session(svc, "a")
    b = await new_session(svc, "b")
    await svc.append_event(a, event(id="same", content="a"))
    stored = await svc.append_event(b, event(id="same", content="b"))
    assert stored.seq == 1 and stored.content == "b"
    assert [e.content for e in (await must_get(svc, key("b"))).events] == ["b"]


# ---------------------------------------------------------------- missing sessions


async def test_append_to_a_session_that_never_existed_raises(svc):
    ghost = ss.Session(id="ghost", app_name=APP, user_id=USER)
    with pytest.raises(ss.SessionNotFoundError):
        await svc.append_event(ghost, event(state_delta={"app:a": 1}))
    assert ghost.events == [] and ghost.version == 0
    assert await svc.get_session(key("ghost")) is None
    assert await svc.list_app_state(APP) == {}


async def test_append_to_a_deleted_session_raises(svc):
    s = await new_session(svc, "s1")
    await svc.delete_session(key("s1"))
    with pytest.raises(ss.SessionNotFoundError):
        await svc.append_event(s, event(state_delta={"k": 1}))
    assert s.events == [] and s.state == {} and s.version == 0
    assert await svc.get_session(key("s1")) is None
