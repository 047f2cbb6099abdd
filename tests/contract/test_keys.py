"""Keys and ids: what Key/UserKey accept and reject (InvalidKeyError, also a ValueError),
the 128-code-point limit, and ids or state keys full of Unicode and SQL
metacharacters that must be stored and read back literally, never matched as
patterns, never folded by case, padding or normalisation."""

from __future__ import annotations

import pytest

import sessionstore as ss

from .helpers import APP, USER, event, key, must_get, new_session, user_key

INVALID_IDS = {
    "empty": "",
    "129_chars": "x" * 129,
    "nul": "a\x00b",
    "newline": "a\nb",
    "del": "a\x7fb",
    "nel": "a\x85b",
    "lone_surrogate": "a\ud800b",
    "int": 5,
    "none": None,
    "bytes": b"abc",
}


@pytest.mark.parametrize(
    ("field", "name"),
    [
        (field, name)
        for field in ("app_name", "user_id", "session_id")
        for name in INVALID_IDS
        if (field, name) != ("session_id", "empty")  # an empty session id means "generate one"
    ],
)
def test_invalid_ids_raise_invalid_key_error(field, name):
    value = INVALID_IDS[name]
    parts = {"app_name": APP, "user_id": USER, "session_id": "s1", field: value}
    with pytest.raises(ss.InvalidKeyError) as raised:
        ss.Key(**parts)
    assert isinstance(raised.value, ValueError)
    if field != "session_id":
        with pytest.raises(ss.InvalidKeyError):
            ss.UserKey(parts["app_name"], parts["user_id"])


def test_keys_are_frozen_values():
    k = ss.Key(APP, USER, "s1")
    assert k == ss.Key(APP, USER, "s1") and hash(k) == hash(ss.Key(APP, USER, "s1"))
    assert k.user_key == ss.UserKey(APP, USER)
    with pytest.raises(AttributeError):
        k.user_id = "other"  # type: ignore[misc]


async def test_methods_reject_wrong_argument_types(svc):
    with pytest.raises(ss.InvalidKeyError):
        await svc.get_session("s1")
    with pytest.raises(ss.InvalidKeyError):
        await svc.create_session((APP, USER, "s1"))
    with pytest.raises(ss.InvalidKeyError):
        await svc.list_sessions("u1")
    with pytest.raises(ss.InvalidKeyError):
        await svc.update_app_state("", {"a": 1})
    with pytest.raises(ss.InvalidKeyError):
        await svc.list_app_state("bad\napp")
    with pytest.raises(ss.InvalidKeyError):
        await svc.list_user_state((APP, USER))


@pytest.mark.parametrize("char", ["x", "é", "日", "🙂"])
async def test_128_code_points_are_accepted(svc, char):
    long_id = char * 128
    k = ss.Key(long_id, long_id, long_id)
    s = await svc.create_session(k, state={"user:" + long_id: long_id})
    await svc.append_event(s, event(id=long_id))
    got = await must_get(svc, k)
    assert (got.app_name, got.user_id, got.id) == (long_id, long_id, long_id)
    assert got.state == {"user:" + long_id: long_id}
    assert [e.id for e in got.events] == [long_id]
    assert [x.id for x in (await svc.list_sessions(k.user_key)).sessions] == [long_id]


LITERAL_IDS = [
    "'; DROP TABLE x; --",
    "100%",
    "%",
    "_",
    "a_c",
    "back\\slash",
    "\\",
    'dou"ble',
    "it's",
    "ünïcødé",
    "日本語",
    "🙂🚀",
    "a%_\\'\"`",
    " spaced ",
    "\u200b zero width \u2028",
]


@pytest.mark.parametrize("text", LITERAL_IDS, ids=repr)
async def test_ids_and_state_keys_are_stored_literally(svc, text):
    k = ss.Key(text, text, text)
    state = {text: text, "app:" + text: text, "user:" + text: text}
    s = await svc.create_session(k, state=state)
    await svc.append_event(
        s,
        event(author=text, id=text, invocation_id=text, branch=text, content={text: text}, metadata={text: text}),
    )
    got = await must_get(svc, k)
    assert (got.app_name, got.user_id, got.id) == (text, text, text)
    assert got.state == state
    (e,) = got.events
    assert (e.id, e.author, e.invocation_id, e.branch) == (text, text, text, text)
    assert e.content == {text: text} and e.metadata == {text: text}
    assert [x.id for x in (await svc.list_sessions(k.user_key)).sessions] == [text]
    assert await svc.list_app_state(text) == {text: text}
    assert await svc.list_user_state(k.user_key) == {text: text}

    await svc.delete_app_state(text, text)
    await svc.delete_user_state(k.user_key, text)
    await svc.delete_session(k)
    assert await svc.get_session(k) is None
    assert await svc.list_app_state(text) == {} and await svc.list_user_state(k.user_key) == {}


async def test_pattern_characters_never_match_other_ids(svc):
    for user in ("a%", "ab", "a_", "aXb", "a\\b", "a\\\\b"):
        await new_session(svc, "s-" + user, user=user, state={"user:who": user})
    for user in ("a%", "a_", "a\\b"):
        page = await svc.list_sessions(user_key(user))
        assert [s.id for s in page.sessions] == ["s-" + user]
        assert await svc.list_user_state(user_key(user)) == {"who": user}
    assert await svc.get_session(key("s-ab", user="a_")) is None
    assert await svc.get_session(key("s-ab", user="a%")) is None

    await svc.update_app_state("app%", {"k": 1})
    assert await svc.list_app_state("app_") == {}
    assert await svc.list_app_state("appX") == {}


@pytest.mark.parametrize(
    "pair",
    [("a", "a "), ("a", " a"), ("\u00e9", "e\u0301"), ("\u00df", "ss"), ("\uff41", "a"), ("K", "\u212a")],
    ids=["trailing_space", "leading_space", "nfc_vs_nfd", "sharp_s", "fullwidth", "kelvin_sign"],
)
async def test_ids_differing_in_padding_normalisation_or_width_are_distinct(svc, pair):
    first, second = pair
    await new_session(svc, first, user=first, state={"which": first, "user:which": first})
    await new_session(svc, second, user=second, state={"which": second, "user:which": second})
    for text in pair:
        got = await must_get(svc, key(text, user=text))
        assert got.state == {"which": text, "user:which": text}
        assert [s.id for s in (await svc.list_sessions(user_key(text))).sessions] == [text]
    await new_session(svc, first, user=second)  # same session id text under the other user
    await new_session(svc, second, user=first)
    assert await svc.get_session(key(first, user=first)) is not None
