"""Input validation: non-JSON state values and malformed state keys (StateValueError,
nothing written), malformed events (InvalidEventError / EventTooLargeError,
nothing stored), and out-of-range read arguments (InvalidArgumentError). Each
limit is tested from both sides: the last value accepted is stored and read
back on every backend, the first one beyond is refused before anything is written."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

import sessionstore as ss

from .helpers import APP, event, key, must_get, new_session, snapshot, user_key


def _deep(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def _deep_mixed(levels: int) -> object:
    """`levels` nested containers, lists and dicts taking turns (a dict counts like a list)."""
    value: object = "bottom"
    for i in range(levels):
        value = {"d": value} if i % 2 else [value]
    return value


MAX_DEPTH = 30
"""The documented nesting limit: what MariaDB's JSON columns hold with a value
stored one level down ({"key": value}); JSON_VALID refuses 32 levels."""


NOT_JSON = {
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "object": object(),
    "set": {1, 2},
    "bytes": b"raw",
    "int_key_dict": {1: "x"},
    "int_2**63": 2**63,
    "int_below_-2**63": -(2**63) - 1,
    "nan_inside_list": [1, [2, float("nan")]],
    "inf_inside_dict": {"ok": {"deep": float("inf")}},
    "lone_surrogate": "\ud800",
    "nul_char": "a\x00b",  # PostgreSQL's JSONB cannot hold U+0000, so no backend takes it
    "nul_in_object_key": {"a\x00": 1},
    "nested_31_deep": _deep(MAX_DEPTH + 1),
    "dicts_nested_31_deep": _deep_mixed(MAX_DEPTH + 1),
    "nested_255_deep": _deep(255),
}


async def _prepared(svc) -> ss.Session:
    """A session with state in every scope, so 'nothing written' has something to compare."""
    s = await new_session(svc, "s1", state={"keep": 1, "app:keep": 1, "user:keep": 1})
    await svc.append_event(s, event(content="first"))
    return s


@pytest.mark.parametrize("name", list(NOT_JSON))
async def test_append_with_a_non_json_state_value_writes_nothing(svc, name):
    s = await _prepared(svc)
    before = await snapshot(svc, s.key)
    seen = (dict(s.state), s.version, len(s.events))

    with pytest.raises(ss.StateValueError) as raised:
        await svc.append_event(
            s, event(state_delta={"ok": 1, "app:ok": 1, "user:ok": 1, "bad": NOT_JSON[name]})
        )
    assert raised.value.key == "bad" and "bad" in str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert await snapshot(svc, s.key) == before
    assert (s.state, s.version, len(s.events)) == seen


@pytest.mark.parametrize("name", ["app:bad", "user:bad", "temp:bad"])
async def test_a_non_json_value_is_rejected_in_every_scope(svc, name):
    s = await _prepared(svc)
    before = await snapshot(svc, s.key)
    with pytest.raises(ss.StateValueError) as raised:
        await svc.append_event(s, event(state_delta={"ok": 1, name: float("nan")}))
    assert raised.value.key == name
    assert await snapshot(svc, s.key) == before


@pytest.mark.parametrize("operation", ["create", "update_session", "update_app", "update_user"])
async def test_every_state_write_rejects_non_json_and_writes_nothing(svc, operation):
    s = await _prepared(svc)
    before = await snapshot(svc, s.key)
    bad = {"ok": 1, "app:ok": 1, "user:ok": 1, "bad": {1, 2}}
    calls = {
        "create": lambda: svc.create_session(key("s2"), state=bad),
        "update_session": lambda: svc.update_session_state(s.key, bad),
        "update_app": lambda: svc.update_app_state(APP, {"ok": 1, "bad": {1, 2}}),
        "update_user": lambda: svc.update_user_state(user_key(), {"ok": 1, "bad": {1, 2}}),
    }
    with pytest.raises(ss.StateValueError) as raised:
        await calls[operation]()
    assert raised.value.key == "bad"
    assert await snapshot(svc, s.key) == before
    assert await svc.get_session(key("s2")) is None


async def test_values_nested_30_levels_are_stored_in_every_field(svc):
    deepest = _deep_mixed(MAX_DEPTH)
    s = await new_session(svc, "s1", state={"c": deepest, "app:c": deepest, "user:c": deepest})
    await svc.update_session_state(s.key, {"u": deepest, "app:u": deepest, "user:u": deepest})
    await svc.update_app_state(APP, {"a": deepest})
    await svc.update_user_state(user_key(), {"a": deepest})
    s = await must_get(svc, s.key)
    await svc.append_event(
        s,
        event(
            content=deepest,
            metadata={"m": _deep_mixed(MAX_DEPTH - 1)},  # the dict is a level too
            state_delta={"e": deepest, "app:e": deepest, "user:e": deepest},
        ),
    )
    got = await must_get(svc, key("s1"))
    assert got.state == {
        name: deepest
        for name in ("c", "app:c", "user:c", "u", "app:u", "user:u", "app:a", "user:a", "e", "app:e", "user:e")
    }
    stored = got.events[0]
    assert stored.content == deepest and stored.metadata == {"m": _deep_mixed(MAX_DEPTH - 1)}
    assert stored.state_delta == {"e": deepest, "app:e": deepest, "user:e": deepest}


@pytest.mark.parametrize(
    "operation",
    ["create", "append_delta", "append_app_delta", "update_session", "update_app", "update_user", "content", "metadata"],
)
async def test_values_nested_31_levels_are_refused_in_every_field(svc, operation):
    s = await _prepared(svc)
    before = await snapshot(svc, s.key)
    too_deep = _deep_mixed(MAX_DEPTH + 1)
    calls = {
        "create": lambda: svc.create_session(key("s2"), state={"ok": 1, "bad": too_deep}),
        "append_delta": lambda: svc.append_event(s, event(state_delta={"ok": 1, "bad": too_deep})),
        "append_app_delta": lambda: svc.append_event(s, event(state_delta={"ok": 1, "app:bad": too_deep})),
        "update_session": lambda: svc.update_session_state(s.key, {"ok": 1, "bad": too_deep}),
        "update_app": lambda: svc.update_app_state(APP, {"ok": 1, "bad": too_deep}),
        "update_user": lambda: svc.update_user_state(user_key(), {"ok": 1, "bad": too_deep}),
        "content": lambda: svc.append_event(s, event(content=too_deep, state_delta={"ok": 1})),
        "metadata": lambda: svc.append_event(s, event(metadata={"m": _deep_mixed(MAX_DEPTH)})),
    }
    error = ss.InvalidEventError if operation in ("content", "metadata") else ss.StateValueError
    with pytest.raises(error, match="nested deeper than 30 levels"):
        await calls[operation]()
    assert await snapshot(svc, s.key) == before
    assert await svc.get_session(key("s2")) is None
    assert [e.content for e in s.events] == ["first"]


@pytest.mark.parametrize(
    "bad_key",
    ["", "app:", "user:", "a\nb", "tab\tkey", "x" * 129, "app:" + "x" * 129, "\ud800", 5, None],
    ids=repr,
)
async def test_malformed_state_keys_are_rejected(svc, bad_key):
    s = await _prepared(svc)
    before = await snapshot(svc, s.key)
    with pytest.raises(ss.StateValueError):
        await svc.append_event(s, event(state_delta={"ok": 1, bad_key: 1}))
    with pytest.raises(ss.StateValueError):
        await svc.update_session_state(s.key, {bad_key: 1})
    assert await snapshot(svc, s.key) == before


async def test_bare_keys_of_shared_state_methods_are_checked(svc):
    for bad in ("", "a\x00b", "x" * 129):
        with pytest.raises(ss.StateValueError):
            await svc.update_app_state(APP, {bad: 1})
        with pytest.raises(ss.StateValueError):
            await svc.update_user_state(user_key(), {bad: 1})
        with pytest.raises(ss.StateValueError):
            await svc.delete_app_state(APP, bad)
    assert await svc.list_app_state(APP) == {}


async def test_long_state_keys_up_to_128_code_points_are_accepted(svc):
    s = await new_session(svc, "s1")
    names = ["x" * 128, "app:" + "🙂" * 128, "user:" + "é" * 128]
    await svc.append_event(s, event(state_delta={n: i for i, n in enumerate(names)}))
    assert (await must_get(svc, key("s1"))).state == {n: i for i, n in enumerate(names)}


async def test_a_state_delta_must_be_a_mapping(svc):
    s = await _prepared(svc)
    with pytest.raises(ss.StateValueError):
        await svc.update_session_state(s.key, [("k", 1)])


# ---------------------------------------------------------------- events

PLUS_1 = timezone(timedelta(hours=1))
PLUS_5 = timezone(timedelta(hours=5))
MINUS_5 = timezone(timedelta(hours=-5))
EARLIEST = datetime(1000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)

BAD_EVENTS = {
    "content_nan": dict(content=float("nan")),
    "content_object": dict(content=object()),
    "content_set_inside": dict(content={"a": {1, 2}}),
    "content_bytes": dict(content=b"x"),
    "content_big_int": dict(content=[2**64]),
    "metadata_not_dict": dict(metadata=[1]),
    "metadata_inf": dict(metadata={"a": float("inf")}),
    "metadata_int_key": dict(metadata={1: "x"}),
    "naive_timestamp": dict(timestamp=datetime(2026, 1, 1, 12, 0)),
    "str_timestamp": dict(timestamp="2026-01-01T12:00:00+00:00"),
    "date_timestamp": dict(timestamp=date(2026, 1, 1)),
    # Every backend stores a UTC value from 1000-01-01 to 9999-12-31 23:59:59.999999.
    "timestamp_before_year_1000": dict(timestamp=EARLIEST - timedelta(microseconds=1)),
    "timestamp_before_year_1000_in_utc": dict(timestamp=datetime(1000, 1, 1, 0, 30, tzinfo=PLUS_1)),
    "timestamp_year_1_east_of_utc": dict(timestamp=datetime(1, 1, 1, 1, 0, tzinfo=PLUS_5)),  # no UTC value at all
    "timestamp_after_9999_in_utc": dict(timestamp=datetime(9999, 12, 31, 23, 0, tzinfo=MINUS_5)),  # likewise
    "empty_author": dict(author=""),
    "long_author": dict(author="x" * 256),
    "author_not_str": dict(author=None),
    "empty_id": dict(id=""),
    "long_id": dict(id="x" * 129),
    "id_with_newline": dict(id="a\nb"),
    "empty_invocation_id": dict(invocation_id=""),
    "long_invocation_id": dict(invocation_id="x" * 256),
    "branch_with_nul": dict(branch="a\x00b"),
    "partial_not_bool": dict(partial="yes"),
    "content_31_deep": dict(content=_deep(MAX_DEPTH + 1)),
    "metadata_31_deep": dict(metadata={"m": _deep(MAX_DEPTH)}),
}


@pytest.mark.parametrize("name", list(BAD_EVENTS))
async def test_malformed_events_are_rejected_and_nothing_is_stored(svc, name):
    s = await _prepared(svc)
    before = await snapshot(svc, s.key)
    fields = {"author": "user", "state_delta": {"k": 1, "app:k": 1}} | BAD_EVENTS[name]
    with pytest.raises(ss.InvalidEventError) as raised:
        await svc.append_event(s, ss.Event(**fields))
    assert isinstance(raised.value, ValueError)
    assert await snapshot(svc, s.key) == before
    assert [e.content for e in s.events] == ["first"]


async def test_timestamps_at_both_ends_of_the_range_are_stored_and_read_back(svc):
    s = await new_session(svc, "s1")
    stamps = [
        EARLIEST,
        datetime(1000, 1, 1, 5, 0, tzinfo=PLUS_5),  # the same instant, written east of UTC
        LATEST,
        datetime(9999, 12, 31, 18, 59, 59, 999999, tzinfo=MINUS_5),  # likewise, west of UTC
    ]
    for stamp in stamps:
        await svc.append_event(s, event(timestamp=stamp))
    got = await must_get(svc, key("s1"))
    assert [e.timestamp for e in got.events] == stamps
    assert all(e.timestamp.utcoffset() == timedelta(0) for e in got.events)
    assert [e.seq for e in (await must_get(svc, key("s1"), after=EARLIEST)).events] == [1, 2, 3, 4]
    assert [e.seq for e in (await must_get(svc, key("s1"), after=LATEST)).events] == [3, 4]
    assert [e.seq for e in (await must_get(svc, key("s1"), after=datetime(1000, 1, 1, 5, tzinfo=PLUS_5))).events] == [
        1, 2, 3, 4,
    ]


async def test_an_event_with_state_delta_none_has_no_delta(svc):
    s = await _prepared(svc)
    stored = await svc.append_event(s, event(content="second", state_delta=None))
    assert stored.state_delta == {} and stored.seq == 2
    got = await must_get(svc, key("s1"))
    assert got.state == {"keep": 1, "app:keep": 1, "user:keep": 1} and got.version == 2
    assert [(e.content, e.state_delta) for e in got.events] == [("first", {}), ("second", {})]
    assert s.state == got.state and s.version == 2


@pytest.mark.parametrize("delta", [[("k", 1)], "k", 5], ids=repr)
async def test_an_event_whose_state_delta_is_not_a_mapping_is_refused(svc, delta):
    s = await _prepared(svc)
    before = await snapshot(svc, s.key)
    with pytest.raises(ss.StateValueError):
        await svc.append_event(s, event(state_delta=delta))
    assert await snapshot(svc, s.key) == before
    assert [e.content for e in s.events] == ["first"]


async def test_append_needs_an_event(svc):
    s = await _prepared(svc)
    with pytest.raises(ss.InvalidEventError):
        await svc.append_event(s, {"author": "user"})


async def test_labels_up_to_255_code_points_are_accepted(svc):
    s = await new_session(svc, "s1")
    await svc.append_event(
        s, event(author="a" * 255, invocation_id="🙂" * 255, branch="b" * 255, id="i" * 128)
    )
    got = (await must_get(svc, key("s1"))).events[0]
    assert (got.author, got.invocation_id, got.branch, got.id) == (
        "a" * 255,
        "🙂" * 255,
        "b" * 255,
        "i" * 128,
    )


async def test_event_too_large(make_service):
    svc = await make_service(max_event_bytes=300)
    s = await new_session(svc, "s1")
    before = await snapshot(svc, s.key)
    with pytest.raises(ss.EventTooLargeError) as raised:
        await svc.append_event(s, event(content="x" * 500))
    assert isinstance(raised.value, ss.InvalidEventError)
    with pytest.raises(ss.EventTooLargeError):
        await svc.append_event(s, event(state_delta={"k": "x" * 500}))
    with pytest.raises(ss.EventTooLargeError):
        await svc.append_event(s, event(metadata={"m": "x" * 500}))
    assert await snapshot(svc, s.key) == before
    assert s.events == []

    assert (await svc.append_event(s, event(content="x" * 100))).seq == 1


# ---------------------------------------------------------------- read and write arguments


@pytest.mark.parametrize("event_num", [-1, "3", 1.5, True], ids=repr)
async def test_bad_event_num(svc, event_num):
    await new_session(svc, "s1")
    with pytest.raises(ss.InvalidArgumentError):
        await svc.get_session(key("s1"), event_num=event_num)


@pytest.mark.parametrize(
    "after",
    [
        datetime(2026, 1, 1),
        "2026-01-01T00:00:00+00:00",
        date(2026, 1, 1),
        EARLIEST - timedelta(microseconds=1),
        datetime(1, 1, 1, tzinfo=PLUS_5),  # no UTC value at all
        datetime(9999, 12, 31, 23, 0, tzinfo=MINUS_5),  # likewise
    ],
    ids=repr,
)
async def test_bad_after(svc, after):
    await new_session(svc, "s1")
    with pytest.raises(ss.InvalidArgumentError):
        await svc.get_session(key("s1"), after=after)


@pytest.mark.parametrize("expected_version", [-1, "0", 0.0], ids=repr)
async def test_bad_expected_version(svc, expected_version):
    s = await new_session(svc, "s1")
    with pytest.raises(ss.InvalidArgumentError):
        await svc.append_event(s, event(), expected_version=expected_version)
    assert (await must_get(svc, key("s1"))).events == []


async def test_after_in_any_timezone_is_accepted(svc):
    await new_session(svc, "s1")
    got = await svc.get_session(key("s1"), after=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=9))))
    assert got is not None and got.events == []
