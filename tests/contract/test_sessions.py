"""Session lifecycle: create, get, delete, generated ids, duplicate ids, re-creation,
timestamps, the initial state given to create, and copies handed to callers."""

from __future__ import annotations

import uuid

import pytest

import sessionstore as ss

from .helpers import APP, USER, event, key, must_get, new_session, user_key


async def test_create_then_get(svc, clock):
    created = await svc.create_session(key("s1"), state={"lang": "en"})
    assert (created.id, created.app_name, created.user_id) == ("s1", APP, USER)
    assert created.state == {"lang": "en"}
    assert created.events == []
    assert created.version == 0
    assert created.created_at == clock.now and created.updated_at == clock.now

    got = await must_get(svc, key("s1"))
    assert (got.id, got.app_name, got.user_id) == ("s1", APP, USER)
    assert got.state == {"lang": "en"}
    assert got.events == []
    assert got.version == 0
    assert got.created_at == clock.now and got.updated_at == clock.now
    assert got.key == key("s1")


async def test_get_missing_returns_none(svc):
    await new_session(svc, "s1")
    assert await svc.get_session(key("nope")) is None
    assert await svc.get_session(key("s1", user="someone-else")) is None
    assert await svc.get_session(key("s1", app="other-app")) is None


async def test_delete_missing_is_a_noop(svc):
    await svc.delete_session(key("never-created"))
    assert await svc.get_session(key("never-created")) is None


async def test_delete_removes_session_and_events(svc):
    s = await new_session(svc, "s1", state={"k": 1})
    await new_session(svc, "s2")
    await svc.append_event(s, event(content="hi"))
    await svc.delete_session(key("s1"))

    assert await svc.get_session(key("s1")) is None
    page = await svc.list_sessions(user_key())
    assert [x.id for x in page.sessions] == ["s2"]
    await svc.delete_session(key("s1"))  # deleting again is a no-op
    assert await svc.get_session(key("s2")) is not None


async def test_delete_keeps_app_and_user_state(svc):
    s = await new_session(svc, "s1", state={"app:theme": "dark", "user:city": "Paris", "k": 1})
    await svc.delete_session(s.key)
    assert await svc.list_app_state(APP) == {"theme": "dark"}
    assert await svc.list_user_state(user_key()) == {"city": "Paris"}


async def test_duplicate_create_raises_and_changes_nothing(svc):
    s = await new_session(svc, "s1", state={"k": 1})
    await svc.append_event(s, event(content="first"))
    with pytest.raises(ss.SessionExistsError):
        await svc.create_session(key("s1"), state={"k": 2, "app:a": 1})
    got = await must_get(svc, key("s1"))
    assert got.state == {"k": 1}
    assert got.version == 1
    assert [e.content for e in got.events] == ["first"]
    assert await svc.list_app_state(APP) == {}


async def test_generated_ids_are_uuid4_hex(svc):
    first = await svc.create_session(key())
    second = await svc.create_session(key())
    for s in (first, second):
        parsed = uuid.UUID(hex=s.id)
        assert parsed.version == 4
        assert s.id == parsed.hex  # 32 lowercase hex digits, no dashes
        assert await svc.get_session(key(s.id)) is not None
    assert first.id != second.id


async def test_recreate_after_delete_is_fresh(svc):
    old = await new_session(svc, "s1", state={"old": 1})
    await svc.append_event(old, event(id="e1", content="old", state_delta={"more": 2}))
    await svc.update_session_state(key("s1"), {"x": 1})
    await svc.delete_session(key("s1"))

    new = await svc.create_session(key("s1"), state={"new": 2})
    assert new.version == 0 and new.events == [] and new.state == {"new": 2}
    got = await must_get(svc, key("s1"))
    assert got.version == 0 and got.events == [] and got.state == {"new": 2}

    # the old incarnation's event ids and sequence numbers are gone with it
    stored = await svc.append_event(new, event(id="e1", content="new"))
    assert stored.seq == 1 and stored.content == "new"
    got = await must_get(svc, key("s1"))
    assert [(e.id, e.seq, e.content) for e in got.events] == [("e1", 1, "new")]
    assert got.version == 1


async def test_created_at_stays_and_updated_at_follows_writes(svc, clock):
    s = await new_session(svc, "s1")
    created = clock.now
    clock.advance(minutes=5)
    await svc.append_event(s, event())
    assert s.updated_at == clock.now
    got = await must_get(svc, key("s1"))
    assert got.created_at == created and got.updated_at == clock.now

    clock.advance(minutes=5)
    await svc.update_session_state(key("s1"), {"k": 1})
    got = await must_get(svc, key("s1"))
    assert got.created_at == created and got.updated_at == clock.now


async def test_create_state_routes_scopes_and_drops_temp(svc):
    s = await svc.create_session(
        key("s1"), state={"s": 1, "app:a": 2, "user:u": 3, "temp:t": 4}
    )
    assert s.state == {"s": 1, "app:a": 2, "user:u": 3}
    assert await svc.list_app_state(APP) == {"a": 2}
    assert await svc.list_user_state(user_key()) == {"u": 3}
    assert (await must_get(svc, key("s1"))).state == {"s": 1, "app:a": 2, "user:u": 3}


async def test_create_state_delete_removes_shared_keys(svc):
    await svc.update_app_state(APP, {"a": 1, "keep": 1})
    await svc.update_user_state(user_key(), {"u": 1})
    s = await svc.create_session(
        key("s1"), state={"app:a": ss.DELETE, "user:u": ss.DELETE, "s": ss.DELETE, "k": 1}
    )
    assert s.state == {"app:keep": 1, "k": 1}
    assert await svc.list_app_state(APP) == {"keep": 1}
    assert await svc.list_user_state(user_key()) == {}


async def test_new_session_sees_existing_shared_state(svc):
    await svc.update_app_state(APP, {"theme": "dark"})
    await svc.update_user_state(user_key(), {"city": "Paris"})
    s = await new_session(svc, "s1", state={"k": 1})
    assert s.state == {"k": 1, "app:theme": "dark", "user:city": "Paris"}


async def test_returned_session_is_a_copy(svc):
    s = await new_session(svc, "s1", state={"items": [1]})
    s.state["items"].append(2)
    s.state["extra"] = True

    got = await must_get(svc, key("s1"))
    assert got.state == {"items": [1]}
    got.state["items"].append(3)
    got.events.append(event())
    again = await must_get(svc, key("s1"))
    assert again.state == {"items": [1]} and again.events == []


async def test_state_passed_to_create_is_copied(svc):
    initial = {"items": [1], "app:cfg": {"a": 1}}
    await svc.create_session(key("s1"), state=initial)
    initial["items"].append(2)
    initial["app:cfg"]["a"] = 2
    initial["later"] = 1
    assert (await must_get(svc, key("s1"))).state == {"items": [1], "app:cfg": {"a": 1}}
    assert await svc.list_app_state(APP) == {"cfg": {"a": 1}}


@pytest.mark.parametrize("operation", ["get", "delete", "update_state"])
async def test_operations_on_one_session_need_a_session_id(svc, operation):
    calls = {
        "get": lambda: svc.get_session(key()),
        "delete": lambda: svc.delete_session(key()),
        "update_state": lambda: svc.update_session_state(key(), {"k": 1}),
    }
    with pytest.raises(ss.InvalidKeyError):
        await calls[operation]()
