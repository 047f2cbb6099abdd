"""Track events on every backend: a seq of their own per (session, track), order, limit and
after (seq or time), payload round trips, isolation between tracks, sessions and users,
no effect on the session, TTL (invisible at expiry, removed and counted by cleanup), and
bad input refused with nothing stored."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import sessionstore as ss

from .helpers import at, key, must_get, new_session


async def test_each_track_has_its_own_seq_and_order(svc):
    s = await new_session(svc, "s1")
    for i in range(3):
        stored = await svc.append_track_event(s, "tokens", {"in": i, "out": i * 2})
        assert stored.seq == i + 1 and stored.track == "tokens"
    for name in ("search", "fetch"):
        await svc.append_track_event(key("s1"), "tools", {"tool": name})
    tokens = await svc.get_track_events(key("s1"), "tokens")
    assert [(t.seq, t.payload) for t in tokens] == [(1, {"in": 0, "out": 0}), (2, {"in": 1, "out": 2}), (3, {"in": 2, "out": 4})]
    assert [t.payload["tool"] for t in await svc.get_track_events(s, "tools")] == ["search", "fetch"]
    assert await svc.list_tracks(key("s1")) == ["tokens", "tools"]


async def test_limit_and_after_page_through_a_track(svc, clock):
    s = await new_session(svc, "s1")
    for i in range(5):
        await svc.append_track_event(s, "ui", i, timestamp=at(i))
    assert [t.seq for t in await svc.get_track_events(key("s1"), "ui", limit=2)] == [1, 2]
    assert [t.seq for t in await svc.get_track_events(key("s1"), "ui", limit=2, after=2)] == [3, 4]
    assert [t.seq for t in await svc.get_track_events(key("s1"), "ui", after=5)] == []
    assert [t.payload for t in await svc.get_track_events(key("s1"), "ui", after=at(3))] == [3, 4]
    got = await svc.get_track_events(key("s1"), "ui", limit=1, after=at(1.5))
    assert [(t.seq, t.timestamp) for t in got] == [(3, at(2))]


async def test_payloads_and_timestamps_round_trip(svc, clock):
    s = await new_session(svc, "s1")
    payloads = [None, "text", 1.5, [1, "x", None], {"nested": {"ok": True, "n": 10**12}}]
    for payload in payloads:
        await svc.append_track_event(s, "t", payload)
    got = await svc.get_track_events(key("s1"), "t")
    assert [t.payload for t in got] == payloads
    assert all(t.timestamp == clock.now for t in got)  # stamped with the service clock by default


async def test_tracks_are_isolated_between_sessions_and_users(svc):
    mine = await new_session(svc, "s1")
    other_session = await new_session(svc, "s2")
    other_user = await new_session(svc, "s1", user="u2")
    await svc.append_track_event(mine, "t", "mine")
    await svc.append_track_event(other_session, "t", "s2")
    await svc.append_track_event(other_user, "t", "u2")
    await svc.append_track_event(other_user, "t", "u2 again")
    assert [t.payload for t in await svc.get_track_events(key("s1"), "t")] == ["mine"]
    assert [(t.seq, t.payload) for t in await svc.get_track_events(key("s1", user="u2"), "t")] == [
        (1, "u2"), (2, "u2 again")
    ]
    assert await svc.list_tracks(key("s3")) == []
    assert await svc.get_track_events(key("s3"), "t") == []


async def test_track_events_leave_the_session_alone(svc):
    s = await new_session(svc, "s1", state={"k": 1})
    before = await must_get(svc, key("s1"))
    await svc.append_track_event(s, "t", {"x": 1})
    after = await must_get(svc, key("s1"))
    assert (after.version, after.state, after.events, after.updated_at) == (
        before.version, before.state, before.events, before.updated_at
    )
    assert s.events == [] and s.version == 0


async def test_concurrent_appends_to_one_track_get_distinct_seqs(svc):
    s = await new_session(svc, "s1")
    stored = await asyncio.gather(*(svc.append_track_event(s, "t", i) for i in range(20)))
    assert sorted(t.seq for t in stored) == list(range(1, 21))
    got = await svc.get_track_events(key("s1"), "t")
    assert [t.seq for t in got] == list(range(1, 21))
    assert {t.seq: t.payload for t in got} == {t.seq: t.payload for t in stored}


async def test_track_events_go_with_their_deleted_session(svc):
    s = await new_session(svc, "s1")
    await svc.append_track_event(s, "t", 1)
    await svc.delete_session(key("s1"))
    assert await svc.get_track_events(key("s1"), "t") == []
    with pytest.raises(ss.SessionNotFoundError):
        await svc.append_track_event(s, "t", 2)
    await new_session(svc, "s1")  # the same id: a new session, new tracks
    assert await svc.list_tracks(key("s1")) == []
    assert (await svc.append_track_event(key("s1"), "t", 3)).seq == 1


@pytest.mark.parametrize("soft_delete", [True, False])
async def test_track_events_expire_with_their_session_and_cleanup_counts_them(make_service, clock, soft_delete):
    svc = await make_service(
        session_ttl=timedelta(minutes=10), soft_delete=soft_delete, tombstone_retention=timedelta(minutes=1)
    )
    s = await new_session(svc, "s1")
    keep = await new_session(svc, "s2")
    for i in range(3):
        await svc.append_track_event(s, "t", i)
    clock.advance(minutes=6)
    await svc.append_track_event(keep, "t", "kept")
    await svc.update_session_state(key("s2"), {"touch": 1})  # s2 lives on
    clock.advance(minutes=5)
    assert await svc.get_track_events(key("s1"), "t") == []
    assert await svc.list_tracks(key("s1")) == []
    dry = await svc.cleanup(dry_run=True)
    first = await svc.cleanup()
    assert dry.track_events_removed == first.track_events_removed == (0 if soft_delete else 3)
    clock.advance(minutes=2)
    second = await svc.cleanup()
    assert second.track_events_removed == (3 if soft_delete else 0)
    assert first.total + second.total == sum(
        r.sessions_expired + r.events_removed + r.tombstones_purged + r.track_events_removed for r in (first, second)
    )
    assert [t.payload for t in await svc.get_track_events(key("s2"), "t")] == ["kept"]


async def test_bad_track_input_is_refused_and_stores_nothing(make_service):
    svc = await make_service(max_event_bytes=100)
    s = await new_session(svc, "s1")
    for bad_track in ("", None, "x" * 200, "a\x00b", 5):
        with pytest.raises(ss.InvalidArgumentError):
            await svc.append_track_event(s, bad_track, 1)
        with pytest.raises(ss.InvalidArgumentError):
            await svc.get_track_events(s, bad_track)
    with pytest.raises(ss.InvalidEventError):
        await svc.append_track_event(s, "t", {"not json": {1, 2}})
    with pytest.raises(ss.EventTooLargeError):
        await svc.append_track_event(s, "t", "x" * 200)
    with pytest.raises(ss.InvalidEventError):
        await svc.append_track_event(s, "t", 1, timestamp=at(0).replace(tzinfo=None))
    for bad_limit in (0, 1001, 1.0, "5"):
        with pytest.raises(ss.InvalidArgumentError):
            await svc.get_track_events(s, "t", limit=bad_limit)
    for bad_after in (-1, 1.5, "3", at(0).replace(tzinfo=None)):
        with pytest.raises(ss.InvalidArgumentError):
            await svc.get_track_events(s, "t", after=bad_after)
    with pytest.raises(ss.InvalidKeyError):
        await svc.list_tracks("s1")
    with pytest.raises(ss.SessionNotFoundError):
        await svc.append_track_event(key("missing"), "t", 1)
    assert await svc.list_tracks(s) == []
