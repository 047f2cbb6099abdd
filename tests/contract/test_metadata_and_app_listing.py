"""Session title and metadata (set_session_metadata, returned by get and both
listings) and list_app_sessions (every user of an app, list_sessions' order
and cursor rules), on every backend."""

from __future__ import annotations

import pytest

import sessionstore as ss

from .helpers import APP, event, key, must_get, new_session, snapshot, user_key


async def test_new_sessions_have_no_title_and_empty_metadata(svc):
    s = await new_session(svc, "m")
    assert s.title is None and s.metadata == {}
    got = await must_get(svc, key("m"))
    assert got.title is None and got.metadata == {}


async def test_metadata_is_a_delta_and_title_is_replaced_or_kept(svc, clock):
    await new_session(svc, "m", state={"k": 1})
    before = await must_get(svc, key("m"))
    clock.advance(minutes=1)
    await svc.set_session_metadata(key("m"), title="Trip to Beijing", metadata={"a": 1, "nested": {"x": [1, 2]}})
    await svc.set_session_metadata(key("m"), metadata={"a": ss.DELETE, "b": "two", "missing": ss.DELETE})
    got = await must_get(svc, key("m"))
    assert got.title == "Trip to Beijing"  # not given: kept
    assert got.metadata == {"nested": {"x": [1, 2]}, "b": "two"}
    # Metadata is not state, and not a write of the conversation.
    assert got.state == {"k": 1} and got.version == before.version and got.updated_at == before.updated_at
    listed = (await svc.list_sessions(user_key())).sessions[0]
    assert (listed.title, listed.metadata) == ("Trip to Beijing", {"nested": {"x": [1, 2]}, "b": "two"})
    await svc.set_session_metadata(key("m"), title=None)
    got = await must_get(svc, key("m"))
    assert got.title is None and got.metadata == {"nested": {"x": [1, 2]}, "b": "two"}
    await svc.set_session_metadata(key("m"), title="ünïcode ✓")
    assert (await must_get(svc, key("m"))).title == "ünïcode ✓"


async def test_metadata_survives_appends_and_a_new_incarnation_starts_empty(svc):
    s = await new_session(svc, "m")
    await svc.set_session_metadata(key("m"), title="t", metadata={"k": 1})
    await svc.append_events(s, [event(), event()])
    await svc.append_event(s, event(state_delta={"x": 1}))
    got = await must_get(svc, key("m"))
    assert (got.title, got.metadata) == ("t", {"k": 1})
    await svc.delete_session(key("m"))
    again = await new_session(svc, "m")
    assert again.title is None and again.metadata == {}


async def test_bad_metadata_is_rejected_and_changes_nothing(svc):
    await new_session(svc, "m")
    await svc.set_session_metadata(key("m"), title="kept", metadata={"k": 1})
    before = await snapshot(svc, key("m"))
    for bad in (
        {"title": ""}, {"title": "a\x00b"}, {"title": "x" * 501}, {"title": 5},
        {"metadata": {"k": {1, 2}}}, {"metadata": {"": 1}}, {"metadata": ["k"]}, {"metadata": {"k": float("nan")}},
        {"metadata": {"big": "x" * (svc.options.max_event_bytes + 1)}},
    ):
        with pytest.raises(ss.InvalidArgumentError):
            await svc.set_session_metadata(key("m"), **bad)
    got = await must_get(svc, key("m"))
    assert (got.title, got.metadata) == ("kept", {"k": 1}) and await snapshot(svc, key("m")) == before
    with pytest.raises(ss.SessionNotFoundError):
        await svc.set_session_metadata(key("nope"), title="x")
    with pytest.raises(ss.InvalidKeyError):
        await svc.set_session_metadata(key(""), title="x")


# --------------------------------------------------------------------------- list_app_sessions


async def test_app_listing_covers_every_user_newest_first_once_each(svc, clock):
    made = []
    for i in range(7):
        user = f"u{i % 3}"
        await new_session(svc, f"s{i % 2}" if i < 4 else f"t{i}", user=user)  # ids shared across users
        made.append((f"s{i % 2}" if i < 4 else f"t{i}", user))
        if i % 2:
            clock.advance(minutes=1)  # pairs share a timestamp: ties break by id, then user
    await new_session(svc, "other-app", app="another")
    await svc.update_user_state(user_key("u1"), {"name": "Ann"})
    seen, cursor = [], None
    while True:
        page = await svc.list_app_sessions(APP, limit=2, cursor=cursor)
        assert len(page.sessions) <= 2
        seen += [(s.updated_at, s.id, s.user_id, s) for s in page.sessions]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted((sid, uid) for _, sid, uid, _ in seen) == sorted(made)
    keys = [(t, sid, uid) for t, sid, uid, _ in seen]
    assert keys == sorted(keys, reverse=True)
    for _, _, uid, s in seen:  # each session carries its own user's state
        assert s.app_name == APP and s.events == []
        assert s.state == ({"user:name": "Ann"} if uid == "u1" else {})


async def test_app_listing_shows_metadata_and_skips_deleted(svc):
    await new_session(svc, "a", user="x")
    await new_session(svc, "b", user="y")
    await svc.set_session_metadata(key("a", user="x"), title="A")
    await svc.delete_session(key("b", user="y"))
    page = await svc.list_app_sessions(APP)
    assert [(s.id, s.user_id, s.title) for s in page.sessions] == [("a", "x", "A")]
    assert page.next_cursor is None


async def test_app_listing_checks_limit_and_cursor(svc):
    await new_session(svc, "a")
    await new_session(svc, "b")
    user_cursor = (await svc.list_sessions(user_key(), limit=1)).next_cursor
    app_cursor = (await svc.list_app_sessions(APP, limit=1)).next_cursor
    assert user_cursor and app_cursor
    with pytest.raises(ss.InvalidCursorError):
        await svc.list_app_sessions(APP, cursor=user_cursor)
    with pytest.raises(ss.InvalidCursorError):
        await svc.list_sessions(user_key(), cursor=app_cursor)
    for bad in ({"limit": 0}, {"limit": 1001}, {"cursor": "garbage"}):
        with pytest.raises(ss.InvalidArgumentError):
            await svc.list_app_sessions(APP, **bad)
    with pytest.raises(ss.InvalidKeyError):
        await svc.list_app_sessions("")
