"""State: app:/user:/session scopes and the merged view, isolation between apps and
users, temp: keys, None versus DELETE, update_session_state, the app- and
user-state methods, and JSON values that round-trip exactly."""

from __future__ import annotations

import pytest

import sessionstore as ss

from .helpers import APP, USER, event, key, must_get, new_session, same_json, user_key

# ---------------------------------------------------------------- scopes


async def test_scopes_route_by_prefix(svc):
    s = await new_session(svc, "s1")
    await svc.append_event(s, event(state_delta={"s": 1, "app:a": 2, "user:u": 3}))
    assert await svc.list_app_state(APP) == {"a": 2}
    assert await svc.list_user_state(user_key()) == {"u": 3}
    assert (await must_get(svc, key("s1"))).state == {"s": 1, "app:a": 2, "user:u": 3}


async def test_same_name_in_three_scopes_coexists(svc):
    s = await new_session(svc, "s1")
    await svc.append_event(s, event(state_delta={"x": 1, "app:x": 2, "user:x": 3}))
    assert (await must_get(svc, key("s1"))).state == {"x": 1, "app:x": 2, "user:x": 3}


async def test_app_state_is_shared_by_every_user_of_the_app(svc):
    alice = await new_session(svc, "a", user="alice")
    bob = await new_session(svc, "b", user="bob")
    await svc.append_event(alice, event(state_delta={"app:theme": "dark", "user:city": "Paris", "k": 1}))
    assert (await must_get(svc, bob.key)).state == {"app:theme": "dark"}


async def test_user_state_is_shared_by_the_users_sessions(svc):
    s1 = await new_session(svc, "s1")
    await new_session(svc, "s2")
    await svc.update_session_state(s1.key, {"user:city": "Paris", "k": 1})
    assert (await must_get(svc, key("s2"))).state == {"user:city": "Paris"}
    listed = {s.id: s.state for s in (await svc.list_sessions(user_key())).sessions}
    assert listed == {"s1": {"user:city": "Paris", "k": 1}, "s2": {"user:city": "Paris"}}


async def test_apps_are_isolated(svc):
    a = await new_session(svc, "s1", app="app-a", state={"k": 1, "app:a": 1, "user:u": 1})
    assert await svc.get_session(key("s1", app="app-b")) is None
    assert (await svc.list_sessions(ss.UserKey("app-b", USER))).sessions == []
    assert await svc.list_app_state("app-b") == {}
    assert await svc.list_user_state(ss.UserKey("app-b", USER)) == {}

    b = await new_session(svc, "s1", app="app-b")  # same user and session id, other app
    assert b.state == {}
    await svc.delete_session(b.key)
    assert (await must_get(svc, a.key)).state == {"k": 1, "app:a": 1, "user:u": 1}


async def test_users_are_isolated_and_compared_case_sensitively(svc):
    upper = await new_session(svc, "s1", user="Alice", state={"who": "Alice", "user:name": "A"})
    assert await svc.get_session(key("s1", user="alice")) is None

    lower = await new_session(svc, "s1", user="alice", state={"who": "alice"})  # no SessionExistsError
    assert lower.state == {"who": "alice"}
    assert (await must_get(svc, upper.key)).state == {"who": "Alice", "user:name": "A"}
    assert await svc.list_user_state(ss.UserKey(APP, "alice")) == {}
    assert [s.id for s in (await svc.list_sessions(ss.UserKey(APP, "alice"))).sessions] == ["s1"]

    await svc.delete_session(lower.key)
    assert await svc.get_session(upper.key) is not None

    ghost = ss.Session(id="s1", app_name=APP, user_id="ALICE")
    with pytest.raises(ss.SessionNotFoundError):
        await svc.append_event(ghost, event())


async def test_session_ids_are_case_sensitive(svc):
    await new_session(svc, "Sess", state={"which": "upper"})
    await new_session(svc, "sess", state={"which": "lower"})
    assert (await must_get(svc, key("Sess"))).state == {"which": "upper"}
    assert (await must_get(svc, key("sess"))).state == {"which": "lower"}
    assert await svc.get_session(key("SESS")) is None


# ---------------------------------------------------------------- temp: keys


async def test_temp_keys_are_never_persisted(svc):
    s = await new_session(svc, "s1")
    other = await must_get(svc, key("s1"))
    stored = await svc.append_event(s, event(state_delta={"temp:scratch": [1], "k": 2}))

    assert s.state == {"temp:scratch": [1], "k": 2}  # the caller's object keeps it
    assert (await must_get(svc, key("s1"))).state == {"k": 2}
    assert (await svc.list_sessions(user_key())).sessions[0].state == {"k": 2}
    assert other.state == {}
    assert "temp:scratch" not in stored.state_delta
    assert await svc.list_app_state(APP) == {} and await svc.list_user_state(user_key()) == {}


async def test_temp_keys_in_session_state_updates_are_dropped(svc):
    await new_session(svc, "s1")
    await svc.update_session_state(key("s1"), {"temp:x": 1, "k": 1})
    assert (await must_get(svc, key("s1"))).state == {"k": 1}


# ---------------------------------------------------------------- None versus DELETE


@pytest.mark.parametrize("prefix", ["", "app:", "user:"])
async def test_none_stores_null_and_delete_removes(svc, prefix):
    s = await new_session(svc, "s1")
    name = prefix + "k"
    await svc.append_event(s, event(state_delta={name: 1}))
    await svc.append_event(s, event(state_delta={name: None}))
    got = await must_get(svc, key("s1"))
    assert name in got.state and got.state[name] is None
    assert name in s.state and s.state[name] is None

    await svc.append_event(s, event(state_delta={name: ss.DELETE}))
    assert name not in (await must_get(svc, key("s1"))).state
    assert name not in s.state
    await svc.append_event(s, event(state_delta={name: ss.DELETE}))  # deleting again: no-op
    assert (await must_get(svc, key("s1"))).state == {}


async def test_none_and_delete_in_shared_state_methods(svc):
    await svc.update_app_state(APP, {"a": None, "b": 1})
    await svc.update_user_state(user_key(), {"u": None, "v": 1})
    assert await svc.list_app_state(APP) == {"a": None, "b": 1}
    assert await svc.list_user_state(user_key()) == {"u": None, "v": 1}
    await svc.update_app_state(APP, {"a": ss.DELETE})
    await svc.update_user_state(user_key(), {"u": ss.DELETE})
    assert await svc.list_app_state(APP) == {"b": 1}
    assert await svc.list_user_state(user_key()) == {"v": 1}


# ---------------------------------------------------------------- update_session_state


async def test_update_session_state_applies_and_bumps_version(svc, clock):
    await new_session(svc, "s1", state={"a": 1, "b": 2})
    clock.advance(minutes=1)
    await svc.update_session_state(
        key("s1"), {"a": 10, "b": ss.DELETE, "c": None, "app:x": 1, "user:y": 2}
    )
    got = await must_get(svc, key("s1"))
    assert got.state == {"a": 10, "c": None, "app:x": 1, "user:y": 2}
    assert got.version == 1 and got.updated_at == clock.now
    assert got.events == []


async def test_update_session_state_on_a_missing_session_raises_and_writes_nothing(svc):
    with pytest.raises(ss.SessionNotFoundError):
        await svc.update_session_state(key("nope"), {"k": 1, "app:a": 1, "user:u": 1})
    assert await svc.get_session(key("nope")) is None
    assert await svc.list_app_state(APP) == {}
    assert await svc.list_user_state(user_key()) == {}


async def test_update_session_state_on_a_deleted_session_raises(svc):
    await new_session(svc, "s1")
    await svc.delete_session(key("s1"))
    with pytest.raises(ss.SessionNotFoundError):
        await svc.update_session_state(key("s1"), {"k": 1})
    assert await svc.get_session(key("s1")) is None


# ---------------------------------------------------------------- app and user state


async def test_update_list_delete_app_state(svc):
    await new_session(svc, "s1")
    await svc.update_app_state(APP, {"a": 1, "b": {"x": [1, 2]}})
    assert await svc.list_app_state(APP) == {"a": 1, "b": {"x": [1, 2]}}
    await svc.update_app_state(APP, {"a": 2, "b": ss.DELETE, "c": None})
    assert await svc.list_app_state(APP) == {"a": 2, "c": None}
    await svc.delete_app_state(APP, "a")
    await svc.delete_app_state(APP, "missing")  # no-op
    assert await svc.list_app_state(APP) == {"c": None}
    assert (await must_get(svc, key("s1"))).state == {"app:c": None}
    assert await svc.list_app_state("unknown-app") == {}


async def test_update_list_delete_user_state(svc):
    await new_session(svc, "s1")
    await svc.update_user_state(user_key(), {"a": 1, "b": [1]})
    await svc.update_user_state(user_key(), {"a": 2})
    assert await svc.list_user_state(user_key()) == {"a": 2, "b": [1]}
    await svc.delete_user_state(user_key(), "b")
    await svc.delete_user_state(user_key(), "missing")  # no-op
    assert await svc.list_user_state(user_key()) == {"a": 2}
    assert (await must_get(svc, key("s1"))).state == {"user:a": 2}
    assert await svc.list_user_state(user_key("other")) == {}


async def test_shared_state_methods_take_bare_keys_and_a_session_key(svc):
    await svc.update_user_state(key("any-session"), {"via_key": 1})  # a Key addresses its user
    assert await svc.list_user_state(user_key()) == {"via_key": 1}
    assert await svc.list_user_state(key("whatever")) == {"via_key": 1}


async def test_listed_state_is_a_copy(svc):
    await svc.update_app_state(APP, {"a": [1]})
    await svc.update_user_state(user_key(), {"u": {"x": 1}})
    listed_app = await svc.list_app_state(APP)
    listed_user = await svc.list_user_state(user_key())
    listed_app["a"].append(2)
    listed_app["new"] = 1
    listed_user["u"]["x"] = 2
    assert await svc.list_app_state(APP) == {"a": [1]}
    assert await svc.list_user_state(user_key()) == {"u": {"x": 1}}


# ---------------------------------------------------------------- JSON values


def _nested(depth: int) -> object:
    value: object = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"d": value}
    return value


JSON_VALUES = {
    "null": None,
    "true": True,
    "false": False,
    "zero": 0,
    "int64_max": 2**63 - 1,
    "int64_min": -(2**63),
    "float": 1.5,
    "tenth": 0.1,
    "tiny": -2.5e-7,
    "big_float": 1e20,
    "huge_float": 1e300,
    # From 1e16 up a float has no fraction digits; PostgreSQL's JSONB once read them back as ints.
    "float_1e16": 1e16,
    "float_-1.5e16": -1.5e16,
    "float_1.5e300": 1.5e300,
    "float_-1e20": -1e20,
    "float_max": 1.7976931348623157e308,
    "float_2**53": 2.0**53,
    "float_1e-7": 1e-7,
    "float_min_subnormal": 5e-324,
    "str_like_a_float": "1e+16",
    "empty_str": "",
    "unicode": "ünïcødé 日本語 🙂",
    "newline": "line1\nline2\ttab",
    "backslash_u": "literal \\u0000 text",
    "sql": "'; DROP TABLE x; -- %_\\",
    "empty_list": [],
    "empty_dict": {},
    "mixed": [1, "a", None, {"x": [True, 2.5]}],
    "odd_object_keys": {"": "empty key", "a.b": 1, "app:x": 2, "ü🙂": 3},
    "nested_20": _nested(20),
}


@pytest.mark.parametrize("name", list(JSON_VALUES))
async def test_json_values_round_trip_exactly(svc, name):
    value = JSON_VALUES[name]
    s = await new_session(svc, "s1")
    await svc.append_event(s, event(state_delta={"v": value, "app:v": value, "user:v": value}))
    got = await must_get(svc, key("s1"))
    for scoped in ("v", "app:v", "user:v"):
        assert got.state[scoped] == value
        assert type(got.state[scoped]) is type(value)
    assert (await svc.list_app_state(APP))["v"] == value


FLOATS = [1e16, 1.5e300, -1e20, 1e-7, 0.1, 5e-324, 2.0**53, -0.0, 1.7976931348623157e308]
INTS = [10**16, -(10**16), 2**53, 2**63 - 1, -(2**63), 0]
NUMBERS = {"floats": FLOATS, "ints": INTS, "nested": {"a": [1e17, {"b": [2e22, 10**17]}], "e+": "1e+16"}}


async def test_floats_stay_floats_and_ints_stay_ints_in_every_field(svc):
    s = await new_session(svc, "s1", state={"c": NUMBERS, "app:c": NUMBERS})
    await svc.update_user_state(user_key(), {"u": NUMBERS})
    await svc.append_event(
        s, event(content=NUMBERS, metadata={"m": NUMBERS}, state_delta={"e": NUMBERS, "user:e": NUMBERS})
    )
    got = await must_get(svc, key("s1"))
    stored = got.events[0]
    for value in (
        got.state["c"], got.state["app:c"], got.state["user:u"], got.state["e"], got.state["user:e"],
        stored.content, stored.metadata["m"], stored.state_delta["e"], stored.state_delta["user:e"],
        (await svc.list_user_state(user_key()))["u"],
    ):
        assert same_json(value, NUMBERS)


async def test_tuples_come_back_as_lists(svc):
    await new_session(svc, "s1", state={"t": (1, (2, 3))})
    assert (await must_get(svc, key("s1"))).state == {"t": [1, [2, 3]]}


# ---------------------------------------------------------------- awkward keys, deltas that set and delete

AWKWARD_KEYS = {
    # characters that mean something in a JSON path, or in SQL
    "path_syntax": ["a.b", "a*b", "$", "$.x", "a b", " lead", "trail ", "a[0]", "[0]", "0", "-1", "a:b", "@#%", "**"],
    # characters that JSON (or some JSON writers) escape
    "escaped": ['a"b', "a\\b", '"', '\\"', "\\u0041", "it's", "a/b", "<&>"],
    "unicode": ["ü日本🙂", "é", "e\u0301", "ß", "\u2028", "Ǆ"],
}

WRITES = {
    "append": lambda svc, s, delta: svc.append_event(s, event(state_delta=delta)),
    # the caller's Session is behind (another writer landed first): no version fast path
    "append_stale": lambda svc, s, delta: _append_after_another_write(svc, s, delta),
    "append_expected_version": lambda svc, s, delta: svc.append_event(s, event(state_delta=delta), expected_version=s.version),
    "update_session_state": lambda svc, s, delta: svc.update_session_state(s.key, delta),
}


async def _append_after_another_write(svc, s, delta):
    other = await must_get(svc, s.key)
    await svc.append_event(other, event(content="in between"))
    await svc.append_event(s, event(state_delta=delta))


@pytest.mark.parametrize("write", list(WRITES))
@pytest.mark.parametrize("keys", list(AWKWARD_KEYS))
async def test_awkward_session_state_keys_are_set_and_deleted_exactly(svc, keys, write):
    names = AWKWARD_KEYS[keys]
    s = await new_session(svc, "s1", state={**{name: f"old {name}" for name in names}, "keep": 1})
    expected = {**{name: f"old {name}" for name in names}, "keep": 1}
    for turn in range(2):
        # each key in turn set (to a value of another kind each time) or deleted
        delta = {
            name: ss.DELETE if (i + turn) % 2 else [None, {"v": name}, 1.5, None][(i + turn) % 4]
            for i, name in enumerate(names)
        }
        await WRITES[write](svc, s, delta)
        for name, value in delta.items():
            if value is ss.DELETE:
                expected.pop(name, None)
            else:
                expected[name] = value
        got = await must_get(svc, key("s1"))
        assert got.state == expected, (turn, delta)
        assert same_json(got.state, expected)
        assert sorted(got.state) == sorted(expected)  # no key stored twice under another spelling


@pytest.mark.parametrize("write", list(WRITES))
async def test_a_delta_that_sets_and_deletes_replaces_values_whole(svc, write):
    s = await new_session(svc, "s1", state={"obj": {"a": 1, "b": 2}, "gone": 1, "n": 1, "list": [1, 2], "keep": "k"})
    delta = {"obj": {"a": 5.0}, "gone": ss.DELETE, "n": None, "list": [3], "new": {"x": [1e16, {"y": "é"}]},
             "never": ss.DELETE, "temp:t": 1, "app:a": {"s": 1}, "user:u": ss.DELETE}
    await WRITES[write](svc, s, delta)
    got = await must_get(svc, key("s1"))
    expected = {"obj": {"a": 5.0}, "n": None, "list": [3], "new": {"x": [1e16, {"y": "é"}]}, "keep": "k", "app:a": {"s": 1}}
    assert same_json(got.state, expected), got.state
    assert await svc.list_app_state(APP) == {"a": {"s": 1}}


async def test_many_session_keys_in_one_delta(svc):
    s = await new_session(svc, "s1", state={f"k{i}": i for i in range(300)})
    delta = {f"k{i}": (ss.DELETE if i % 3 == 0 else {"i": i}) for i in range(300)} | {f"n{i}": i for i in range(300)}
    await svc.append_event(s, event(state_delta=delta))
    got = await must_get(svc, key("s1"))
    assert got.state == {f"k{i}": {"i": i} for i in range(300) if i % 3} | {f"n{i}": i for i in range(300)}
