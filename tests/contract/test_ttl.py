"""TTL with the fake clock: expired sessions are invisible at once (get, list, append,
state update), expiry slides forward on writes but not on reads (unless
refresh_on_read), expired ids can be created again, and app/user state keys
expire one by one. Nothing here runs the cleanup job: visibility alone counts."""

from __future__ import annotations

from datetime import timedelta

import pytest

import sessionstore as ss

from .helpers import APP, event, key, must_get, new_session, user_key

TEN_MINUTES = timedelta(minutes=10)


async def test_session_is_visible_until_its_ttl_passes(make_service, clock):
    svc = await make_service(session_ttl=TEN_MINUTES)
    s = await new_session(svc, "s1")
    clock.advance(minutes=9, seconds=59)
    assert await svc.get_session(key("s1")) is not None
    assert [x.id for x in (await svc.list_sessions(user_key())).sessions] == ["s1"]

    clock.advance(seconds=2)
    assert await svc.get_session(key("s1")) is None
    assert (await svc.list_sessions(user_key())).sessions == []
    with pytest.raises(ss.SessionNotFoundError):
        await svc.append_event(s, event())
    with pytest.raises(ss.SessionNotFoundError):
        await svc.update_session_state(key("s1"), {"k": 1})
    await svc.delete_session(key("s1"))  # no-op
    assert s.events == [] and s.version == 0


@pytest.mark.parametrize("write", ["append", "update_state"])
async def test_expiry_slides_forward_on_writes(make_service, clock, write):
    svc = await make_service(session_ttl=TEN_MINUTES)
    s = await new_session(svc, "s1")
    clock.advance(minutes=8)
    if write == "append":
        await svc.append_event(s, event())
    else:
        await svc.update_session_state(key("s1"), {"k": 1})
    clock.advance(minutes=8)  # 16 minutes after create, 8 after the write
    assert await svc.get_session(key("s1")) is not None
    clock.advance(minutes=3)
    assert await svc.get_session(key("s1")) is None


async def test_reads_do_not_extend_expiry_by_default(make_service, clock):
    svc = await make_service(session_ttl=TEN_MINUTES)
    await new_session(svc, "s1")
    for _ in range(3):
        clock.advance(minutes=4)
        await svc.get_session(key("s1"))
        await svc.list_sessions(user_key())
    assert await svc.get_session(key("s1")) is None


async def test_refresh_on_read_extends_expiry(make_service, clock):
    svc = await make_service(session_ttl=TEN_MINUTES, refresh_on_read=True)
    await new_session(svc, "s1")
    for _ in range(3):
        clock.advance(minutes=8)
        assert await svc.get_session(key("s1")) is not None
    clock.advance(minutes=11)
    assert await svc.get_session(key("s1")) is None


async def test_an_expired_id_can_be_created_again(make_service, clock):
    svc = await make_service(session_ttl=TEN_MINUTES)
    old = await new_session(svc, "s1", state={"old": 1})
    await svc.append_event(old, event(id="e1"))
    clock.advance(minutes=11)

    new = await svc.create_session(key("s1"), state={"new": 1})
    assert new.state == {"new": 1} and new.events == [] and new.version == 0
    got = await must_get(svc, key("s1"))
    assert got.state == {"new": 1} and got.events == [] and got.version == 0
    assert (await svc.append_event(new, event(id="e1"))).seq == 1


async def test_without_ttl_nothing_expires(svc, clock):
    s = await new_session(svc, "s1", state={"app:a": 1, "user:u": 1})
    clock.advance(days=3650)
    assert (await must_get(svc, s.key)).state == {"app:a": 1, "user:u": 1}


async def test_session_ttl_does_not_touch_shared_state(make_service, clock):
    svc = await make_service(session_ttl=TEN_MINUTES)
    await new_session(svc, "s1", state={"app:a": 1, "user:u": 1})
    clock.advance(minutes=11)
    assert await svc.list_app_state(APP) == {"a": 1}
    assert await svc.list_user_state(user_key()) == {"u": 1}


async def test_app_state_keys_expire_one_by_one(make_service, clock):
    svc = await make_service(app_state_ttl=TEN_MINUTES)
    s = await new_session(svc, "s1", state={"k": 1})
    await svc.update_app_state(APP, {"a": 1, "b": 1})
    clock.advance(minutes=5)
    await svc.append_event(s, event(state_delta={"app:c": 1}))
    await svc.update_app_state(APP, {"b": 2})  # rewriting a key refreshes it

    clock.advance(minutes=6)  # "a" is 11 minutes old, "b" and "c" 6
    assert await svc.list_app_state(APP) == {"b": 2, "c": 1}
    assert (await must_get(svc, key("s1"))).state == {"k": 1, "app:b": 2, "app:c": 1}

    clock.advance(minutes=5)
    assert await svc.list_app_state(APP) == {}
    assert (await must_get(svc, key("s1"))).state == {"k": 1}


async def test_user_state_keys_expire_one_by_one(make_service, clock):
    svc = await make_service(user_state_ttl=TEN_MINUTES)
    s = await new_session(svc, "s1")
    await svc.update_user_state(user_key(), {"a": 1})
    clock.advance(minutes=5)
    await svc.update_session_state(key("s1"), {"user:b": 1})
    clock.advance(minutes=6)
    assert await svc.list_user_state(user_key()) == {"b": 1}
    assert [x.state for x in (await svc.list_sessions(user_key())).sessions] == [{"user:b": 1}]
    clock.advance(minutes=5)
    assert await svc.list_user_state(user_key()) == {}
    assert (await must_get(svc, s.key)).state == {}


async def test_an_expired_shared_key_can_be_written_again(make_service, clock):
    svc = await make_service(app_state_ttl=TEN_MINUTES, user_state_ttl=TEN_MINUTES)
    await svc.update_app_state(APP, {"a": 1})
    await svc.update_user_state(user_key(), {"u": 1})
    clock.advance(minutes=11)
    await svc.update_app_state(APP, {"a": 2})
    await svc.update_user_state(user_key(), {"u": 2})
    assert await svc.list_app_state(APP) == {"a": 2}
    assert await svc.list_user_state(user_key()) == {"u": 2}
