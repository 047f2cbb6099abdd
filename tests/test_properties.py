"""Property-based tests (hypothesis) of the pure rules and of the in-memory service.

- state: split_delta + apply_delta agree with a plain dict model for random
  deltas (including None and DELETE), and merged_view prefixes app/user keys;
- keys: Key/UserKey accept every string of 1..128 code points without control
  characters (or lone surrogates) and reject everything else; state keys follow
  the same rule;
- jsonvalue: check_json accepts every JSON value and whatever it accepts can be
  serialised and copied; NaN or infinity anywhere inside is rejected; every
  float is written without a positive exponent and reads back as that float;
- cursor: list_sessions cursors round-trip;
- the in-memory service: random sequences of appends, partial appends and state
  updates end in the state, version and seq numbers a model predicts, and
  pagination covers every session exactly once whatever the page size.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sessionstore as ss
from sessionstore import jsonvalue
from sessionstore.cursor import Cursor
from sessionstore.keys import MAX_ID_LENGTH
from sessionstore.state import (
    DELETE,
    apply_delta,
    check_state_key,
    merged_view,
    split_delta,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERVICE_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- strategies

# JSON strings as every backend stores them: no U+0000 (and, by default, no lone surrogates).
json_chars = st.characters(codec="utf-8", exclude_characters="\x00")

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=jsonvalue.INT_MIN, max_value=jsonvalue.INT_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=json_chars, max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.tuples(children, children)
    | st.dictionaries(st.text(alphabet=json_chars, max_size=8), children, max_size=4),
    max_leaves=25,
)

valid_chars = st.characters(exclude_categories=("Cc", "Cs"))
valid_ids = st.text(alphabet=valid_chars, min_size=1, max_size=MAX_ID_LENGTH)
control_chars = st.characters(categories=("Cc",))
unencodable_chars = st.characters(categories=("Cs",))  # lone surrogates
# every code point, the awkward ones often (.map keeps hypothesis from merging the
# three into one alphabet where surrogates would be one code point in 500)
any_chars = valid_chars | control_chars.map(str) | unencodable_chars.map(str)

bare_names = st.sampled_from(["a", "b", "c", "ü", "k 1"])
prefixes = st.sampled_from(["", "app:", "user:", "temp:"])
delta_values = st.one_of(st.just(DELETE), st.none(), st.integers(-5, 5), st.lists(st.integers(0, 3), max_size=2))
deltas = st.dictionaries(st.builds(lambda p, n: p + n, prefixes, bare_names), delta_values, max_size=6)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _model_apply(model: dict[str, Any], delta: dict[str, Any]) -> None:
    for k, v in delta.items():
        if v is DELETE:
            model.pop(k, None)
        else:
            model[k] = v


def _split_model(delta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The obvious routing, written independently of sessionstore.state."""
    scopes: dict[str, dict[str, Any]] = {"app": {}, "user": {}, "session": {}, "temp": {}}
    for k, v in delta.items():
        if k.startswith("temp:"):
            scopes["temp"][k] = v
        elif k.startswith("app:"):
            scopes["app"][k[4:]] = v
        elif k.startswith("user:"):
            scopes["user"][k[5:]] = v
        else:
            scopes["session"][k] = v
    return scopes


def _json_equal(a: Any, b: Any) -> bool:
    """Equality after tuples become lists (what a JSON round trip does)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------- state rules


@SETTINGS
@given(st.lists(deltas, max_size=6))
def test_split_and_apply_agree_with_a_dict_model(sequence):
    stored = {"session": {}, "app": {}, "user": {}}
    model = {"session": {}, "app": {}, "user": {}}
    for delta in sequence:
        scoped = split_delta(delta)
        expected = _split_model(delta)
        assert (scoped.app, scoped.user, scoped.session, scoped.temp) == (
            expected["app"],
            expected["user"],
            expected["session"],
            expected["temp"],
        )
        apply_delta(stored["session"], scoped.session)
        apply_delta(stored["app"], scoped.app)
        apply_delta(stored["user"], scoped.user)
        for scope in ("session", "app", "user"):
            _model_apply(model[scope], expected[scope])
    assert stored == model
    assert all(DELETE not in scope.values() for scope in stored.values())


@SETTINGS
@given(
    st.dictionaries(bare_names, json_scalars, max_size=4),
    st.dictionaries(bare_names, json_scalars, max_size=4),
    st.dictionaries(bare_names, json_scalars, max_size=4),
)
def test_merged_view_prefixes_app_and_user_keys(session_state, app_state, user_state):
    merged = merged_view(session_state, app_state, user_state)
    expected_keys = set(session_state) | {"app:" + k for k in app_state} | {"user:" + k for k in user_state}
    assert set(merged) == expected_keys
    assert all(merged[k] is v for k, v in session_state.items())
    assert all(merged["app:" + k] is v for k, v in app_state.items())
    assert all(merged["user:" + k] is v for k, v in user_state.items())
    # a merged view split again routes every key back to its scope
    again = split_delta(merged)
    assert (again.session, again.app, again.user) == (session_state, app_state, user_state)


# ---------------------------------------------------------------- keys


@SETTINGS
@given(valid_ids, valid_ids, valid_ids)
def test_key_accepts_every_valid_id(app, user, session_id):
    k = ss.Key(app, user, session_id)
    assert (k.app_name, k.user_id, k.session_id) == (app, user, session_id)
    assert ss.UserKey(app, user) == k.user_key
    assert check_state_key(session_id) == session_id


@SETTINGS
@given(
    st.text(alphabet=valid_chars, max_size=60),
    control_chars | unencodable_chars,
    st.text(alphabet=valid_chars, max_size=60),
)
def test_key_rejects_control_characters_and_lone_surrogates(head, control, tail):
    bad = head + control + tail
    for parts in ((bad, "u", "s"), ("a", bad, "s"), ("a", "u", bad)):
        with pytest.raises(ss.InvalidKeyError):
            ss.Key(*parts)
    with pytest.raises(ss.StateValueError):
        check_state_key(bad)


@SETTINGS
@given(st.text(alphabet=valid_chars, min_size=MAX_ID_LENGTH + 1, max_size=3 * MAX_ID_LENGTH))
def test_key_rejects_more_than_128_code_points(too_long):
    for parts in ((too_long, "u", "s"), ("a", too_long, "s"), ("a", "u", too_long)):
        with pytest.raises(ss.InvalidKeyError):
            ss.Key(*parts)
    with pytest.raises(ss.StateValueError):
        check_state_key(too_long)


@SETTINGS
@given(st.text(alphabet=any_chars, max_size=200))
def test_state_keys_and_ids_follow_one_rule(text):
    """Any str at all: a state key is valid exactly when it would be a valid id."""
    try:
        ss.Key(text, "u", "s")
        id_ok = True
    except ss.InvalidKeyError:
        id_ok = False
    try:
        check_state_key(text)
        state_ok = True
    except ss.StateValueError:
        state_ok = False
    assert id_ok == state_ok


# ---------------------------------------------------------------- JSON values


@SETTINGS
@given(json_values)
def test_check_json_accepts_json_and_what_it_accepts_serialises(value):
    jsonvalue.check_json(value)
    blob = jsonvalue.dumps({"wrapped": [value]})  # never raises for an accepted value
    assert _json_equal(jsonvalue.loads(blob)["wrapped"][0], value)
    assert _json_equal(jsonvalue.copy_json(value), value)


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False), st.text(alphabet=json_chars, max_size=8))
def test_every_float_is_written_in_a_form_that_reads_back_as_a_float(number, text):
    """No positive exponent ("1e+16") in what dumps writes: PostgreSQL's NUMERIC prints that
    back without a fraction, as an int. Strings holding "e+" are left as they are."""
    blob = jsonvalue.dumps({"f": [number], "s": text + "1e+16"})
    assert b"e+" not in blob.replace(jsonvalue.dumps(text + "1e+16"), b"")
    got = jsonvalue.loads(blob)
    assert _json_equal(got, {"f": [number], "s": text + "1e+16"})
    assert math.copysign(1.0, got["f"][0]) == math.copysign(1.0, number)


@SETTINGS
@given(st.text(alphabet=any_chars, max_size=30))
def test_check_json_accepts_exactly_the_strings_every_backend_can_store(text):
    """Accepted iff it serialises (no lone surrogates) and has no U+0000 (PostgreSQL's JSONB can't hold it)."""
    try:
        jsonvalue.dumps({text: [text]})
        storable = "\x00" not in text
    except TypeError:  # orjson.JSONEncodeError
        storable = False
    try:
        jsonvalue.check_json({text: [text]})
        accepted = True
    except jsonvalue.NotJSONError:
        accepted = False
    assert accepted == storable


@st.composite
def _with_bad_number(draw: st.DrawFn) -> Any:
    """A JSON value with NaN or an infinity planted somewhere inside it."""
    bad = draw(st.sampled_from([math.nan, math.inf, -math.inf]))

    def plant(value: Any) -> Any:
        if isinstance(value, (list, tuple)) and value and draw(st.booleans()):
            i = draw(st.integers(0, len(value) - 1))
            items = list(value)
            items[i] = plant(items[i])
            return items
        if isinstance(value, dict) and value and draw(st.booleans()):
            k = draw(st.sampled_from(sorted(value)))
            return {**value, k: plant(value[k])}
        if isinstance(value, dict):
            return {**value, draw(st.text(max_size=4)): bad}
        if isinstance(value, (list, tuple)):
            return [*value, bad]
        return bad

    return plant(draw(json_values))


@SETTINGS
@given(_with_bad_number())
def test_check_json_rejects_nan_and_infinity_anywhere(value):
    with pytest.raises(jsonvalue.NotJSONError):
        jsonvalue.check_json(value)


@SETTINGS
@given(
    st.integers(max_value=jsonvalue.INT_MIN - 1) | st.integers(min_value=jsonvalue.INT_MAX + 1),
    json_values,
)
def test_check_json_rejects_integers_beyond_64_bits(big, around):
    with pytest.raises(jsonvalue.NotJSONError):
        jsonvalue.check_json([around, {"n": big}])


class _StrSubclass(str):
    pass


_awkward_leaves = (
    json_scalars
    | st.sampled_from([math.nan, math.inf, jsonvalue.INT_MAX + 1, jsonvalue.INT_MIN - 1, "a\x00", "\ud800", {1: 2},
                       {"\x00": 1}, {"\udfff": 1}, b"bytes", {1, 2}, _StrSubclass("s"), 1j, datetime(2026, 1, 1)])
)
_awkward_values = st.recursive(
    _awkward_leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(alphabet=any_chars, max_size=3), children, max_size=3),
    max_leaves=12,
)


@SETTINGS
@given(_awkward_values, st.integers(0, jsonvalue.MAX_DEPTH + 1))
def test_the_quick_json_check_and_the_one_that_explains_agree(value, depth):
    """check_json walks without building paths and, only on a failure, again with them:
    both walks must accept exactly the same values, at every depth."""
    try:
        jsonvalue._explain(value, "$", depth)
        explained_ok = True
    except jsonvalue.NotJSONError:
        explained_ok = False
    assert jsonvalue._is_json(value, depth) == explained_ok


def test_check_json_depth_limit_stays_serialisable():
    """The deepest value check_json accepts has MAX_DEPTH levels and still serialises inside an
    envelope; one level more is refused."""
    depth = 0
    value: Any = 1
    while True:
        try:
            jsonvalue.check_json([value])
        except jsonvalue.NotJSONError:
            break
        value = [value]
        depth += 1
        assert depth < 1000
    jsonvalue.dumps({"state": {"key": {"envelope": value}}})
    assert depth == jsonvalue.MAX_DEPTH
    assert depth + 1 <= 31  # stored as {"key": value}; MariaDB's JSON_VALID refuses 32 levels


# ---------------------------------------------------------------- cursors


@SETTINGS
@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
    ),
    valid_ids,
)
def test_cursor_round_trips(updated_at, session_id):
    decoded = Cursor.decode(Cursor(updated_at, session_id).encode())
    assert decoded.updated_at == updated_at and decoded.session_id == session_id
    assert decoded.updated_at.utcoffset() == timedelta(0)


# ---------------------------------------------------------------- the in-memory service

operations = st.lists(
    st.tuples(st.sampled_from(["append", "partial", "update"]), deltas),
    max_size=15,
)


@SERVICE_SETTINGS
@given(st.dictionaries(bare_names, st.integers(0, 9), max_size=3), operations)
def test_memory_service_follows_the_model(initial, ops):
    async def scenario() -> None:
        svc = ss.InMemorySessionService()
        s = await svc.create_session(ss.Key("app", "u", "s"), state=initial)
        model = {"session": dict(initial), "app": {}, "user": {}}
        caller = dict(initial)  # what the caller's Session object should hold
        stored_ops = 0
        appended = 0
        caller_version = 0
        for op, delta in ops:
            if op == "partial":
                returned = await svc.append_event(s, ss.Event(author="a", partial=True, state_delta=delta))
                assert returned.seq is None
                continue
            if op == "append":
                returned = await svc.append_event(s, ss.Event(author="a", state_delta=delta))
                appended += 1
                assert returned.seq == appended
                _model_apply(caller, delta)
                caller_version = stored_ops + 1
            else:
                await svc.update_session_state(s.key, delta)
            stored_ops += 1
            for scope, part in _split_model(delta).items():
                if scope != "temp":
                    _model_apply(model[scope], part)

        got = await svc.get_session(s.key)
        assert got is not None
        assert got.state == merged_view(model["session"], model["app"], model["user"])
        assert got.version == stored_ops
        assert [e.seq for e in got.events] == list(range(1, appended + 1))
        assert all(not k.startswith("temp:") for e in got.events for k in e.state_delta)
        assert await svc.list_app_state("app") == model["app"]
        assert await svc.list_user_state(ss.UserKey("app", "u")) == model["user"]
        assert s.version == caller_version  # the caller's object saw its own appends
        assert [e.seq for e in s.events] == list(range(1, appended + 1))
        if all(op != "update" for op, _ in ops):
            assert s.state == caller

    _run(scenario())


@SERVICE_SETTINGS
@given(
    st.lists(st.sampled_from([0, 0, 1, 2]), min_size=0, max_size=25),  # seconds between creates: ties too
    st.integers(min_value=1, max_value=6),
)
def test_memory_pagination_covers_everything_once(gaps, limit):
    async def scenario() -> None:
        now = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
        svc = ss.InMemorySessionService(ss.ServiceOptions(clock=lambda: now[0], cleanup_interval=None))
        ids = []
        for gap in gaps:
            now[0] += timedelta(seconds=gap)
            ids.append((await svc.create_session(ss.Key("app", "u"))).id)
        listed: list[ss.Session] = []
        cursor = None
        while True:
            page = await svc.list_sessions(ss.UserKey("app", "u"), limit=limit, cursor=cursor)
            assert len(page.sessions) <= limit
            listed.extend(page.sessions)
            if page.next_cursor is None:
                break
            assert len(page.sessions) == limit
            cursor = page.next_cursor
        assert sorted(s.id for s in listed) == sorted(ids)
        stamps = [s.updated_at for s in listed]
        assert stamps == sorted(stamps, reverse=True)

    _run(scenario())
