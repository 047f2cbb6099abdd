"""list_sessions: most recently updated first, metadata and merged state without
events, keyset pagination that covers every session exactly once (also with
equal timestamps and with inserts between pages), cursor and limit checks."""

from __future__ import annotations

import base64
import json

import pytest

import sessionstore as ss

from .helpers import APP, USER, all_pages, event, key, new_session, user_key


async def _sessions_one_minute_apart(svc, clock, count: int, prefix: str = "s") -> list[str]:
    ids = []
    for i in range(count):
        await new_session(svc, f"{prefix}{i:02d}")
        ids.append(f"{prefix}{i:02d}")
        clock.advance(minutes=1)
    return ids


async def test_most_recently_created_first(svc, clock):
    ids = await _sessions_one_minute_apart(svc, clock, 3)
    page = await svc.list_sessions(user_key())
    assert [s.id for s in page.sessions] == ids[::-1]
    assert page.next_cursor is None


async def test_appends_and_state_updates_count_as_updates(svc, clock):
    await _sessions_one_minute_apart(svc, clock, 3)  # s00, s01, s02
    s00 = await svc.get_session(key("s00"))
    await svc.append_event(s00, event())
    assert [s.id for s in (await svc.list_sessions(user_key())).sessions] == ["s00", "s02", "s01"]

    clock.advance(minutes=1)
    await svc.update_session_state(key("s01"), {"k": 1})
    assert [s.id for s in (await svc.list_sessions(user_key())).sessions] == ["s01", "s00", "s02"]


async def test_listed_sessions_carry_metadata_and_merged_state_but_no_events(svc, clock):
    created = clock.now
    s = await new_session(svc, "s1", state={"k": 1, "app:a": 2, "user:u": 3})
    clock.advance(minutes=2)
    await svc.append_event(s, event(content="hi", state_delta={"temp:t": 1, "k2": 2}))
    (listed,) = (await svc.list_sessions(user_key())).sessions
    assert (listed.id, listed.app_name, listed.user_id) == ("s1", APP, USER)
    assert listed.state == {"k": 1, "k2": 2, "app:a": 2, "user:u": 3}
    assert listed.events == []
    assert listed.version == 1
    assert listed.created_at == created and listed.updated_at == clock.now


async def test_only_the_users_active_sessions_are_listed(svc):
    await new_session(svc, "mine")
    await new_session(svc, "gone")
    await new_session(svc, "theirs", user="someone-else")
    await new_session(svc, "other-app", app="other-app")
    await svc.delete_session(key("gone"))
    assert [s.id for s in (await svc.list_sessions(user_key())).sessions] == ["mine"]
    assert (await svc.list_sessions(user_key("nobody"))).sessions == []


async def test_a_session_key_addresses_its_user(svc):
    await new_session(svc, "s1")
    page = await svc.list_sessions(key("any-session-id"))
    assert [s.id for s in page.sessions] == ["s1"]


@pytest.mark.parametrize(("count", "limit"), [(7, 3), (6, 3), (5, 1), (3, 50), (0, 5)])
async def test_pages_cover_every_session_once(svc, clock, count, limit):
    ids = await _sessions_one_minute_apart(svc, clock, count)
    sessions, pages = await all_pages(svc, user_key(), limit)
    assert [s.id for s in sessions] == ids[::-1]
    assert all(len(p.sessions) == limit for p in pages[:-1])
    assert 0 < len(pages[-1].sessions) <= limit or count == 0
    assert all(p.next_cursor is not None for p in pages[:-1])
    assert pages[-1].next_cursor is None
    assert all(s.events == [] for s in sessions)


async def test_pages_with_equal_timestamps_cover_every_session_once(svc):
    ids = {(await new_session(svc)).id for _ in range(10)}  # generated ids, one instant
    ids |= {(await new_session(svc, name)).id for name in ("a", "B", "a ", "é", "🙂")}
    for limit in (1, 3, 4):
        sessions, _ = await all_pages(svc, user_key(), limit)
        listed = [s.id for s in sessions]
        assert sorted(listed) == sorted(ids), f"limit={limit}"


async def test_pagination_is_stable_when_sessions_are_created_between_pages(svc, clock):
    original = await _sessions_one_minute_apart(svc, clock, 6)
    first = await svc.list_sessions(user_key(), limit=2)
    seen = [s.id for s in first.sessions]
    cursor = first.next_cursor
    n = 0
    while cursor is not None:
        for _ in range(2):  # newer sessions arrive while the client pages
            await new_session(svc, f"new{n}")
            n += 1
            clock.advance(seconds=30)
        page = await svc.list_sessions(user_key(), limit=2, cursor=cursor)
        seen.extend(s.id for s in page.sessions)
        cursor = page.next_cursor
    assert seen == original[::-1]


async def test_next_cursor_is_none_on_the_last_page(svc, clock):
    await _sessions_one_minute_apart(svc, clock, 2)
    page = await svc.list_sessions(user_key(), limit=2)
    assert len(page.sessions) == 2 and page.next_cursor is None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _forged(stamp: str, session_id: object) -> str:
    """A cursor in list_sessions' format that it would never have produced."""
    return _b64(json.dumps([stamp, session_id]).encode())


BAD_CURSORS = {
    "garbage": "garbage",
    "empty": "",
    "not_base64": "!!!",
    "non_ascii": "é",
    "an_object": _b64(b'{"a": 1}'),
    "three_items": _b64(b"[1, 2, 3]"),
    "not_a_time": _b64(b'["not a time", "s1"]'),
    "not_a_str": 42,
    "naive_time": _forged("2026-01-01T12:00:00", "s1"),
    "time_year_1_east_of_utc": _forged("0001-01-01T00:00:00+05:00", "s1"),  # no UTC value at all
    "time_after_9999_in_utc": _forged("9999-12-31T23:00:00-05:00", "s1"),  # likewise
    "time_before_year_1000": _forged("0999-12-31T23:59:59.999999+00:00", "s1"),  # no backend stores it
    "id_with_nul": _forged("2026-01-01T12:00:00+00:00", "s\x00"),  # ids never hold control characters
    "id_with_newline": _forged("2026-01-01T12:00:00+00:00", "s\n"),
    "empty_id": _forged("2026-01-01T12:00:00+00:00", ""),
    "long_id": _forged("2026-01-01T12:00:00+00:00", "x" * 129),
    "id_not_a_str": _forged("2026-01-01T12:00:00+00:00", 7),
}


@pytest.mark.parametrize("name", list(BAD_CURSORS))
async def test_bad_cursor_raises(svc, name):
    await new_session(svc, "s1")
    with pytest.raises(ss.InvalidCursorError) as raised:
        await svc.list_sessions(user_key(), cursor=BAD_CURSORS[name])
    assert isinstance(raised.value, ss.InvalidArgumentError) and isinstance(raised.value, ValueError)


async def test_a_well_formed_cursor_at_either_end_of_the_time_range_is_accepted(svc):
    await new_session(svc, "s1")
    oldest = await svc.list_sessions(user_key(), cursor=_forged("1000-01-01T00:00:00+00:00", "z"))
    assert oldest.sessions == [] and oldest.next_cursor is None  # s1 is newer than that
    newest = await svc.list_sessions(user_key(), cursor=_forged("9999-12-31T23:59:59.999999+00:00", "s1"))
    assert [s.id for s in newest.sessions] == ["s1"]


@pytest.mark.parametrize("limit", [0, -1, 1001, "10", 2.5, True, None], ids=repr)
async def test_bad_limit_raises(svc, limit):
    with pytest.raises(ss.InvalidArgumentError):
        await svc.list_sessions(user_key(), limit=limit)


async def test_largest_page_size_is_accepted(svc):
    await new_session(svc, "s1")
    assert len((await svc.list_sessions(user_key(), limit=1000)).sessions) == 1
